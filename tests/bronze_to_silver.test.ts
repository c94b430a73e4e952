import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFaultProxy, type FaultProxy } from "./harness/fault_proxy";
import { createBucket, createTestDatabase, listKeys, putObject, runCommand, type TestDatabase } from "./harness/fixtures";

let db: TestDatabase;
let lake: string;
let duck: Awaited<ReturnType<typeof DuckDBInstance.create>>;

beforeAll(async () => {
  duck = await DuckDBInstance.create(":memory:");
});
afterAll(() => duck.closeSync());
beforeEach(async () => {
  db = await createTestDatabase();
  await db.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true), (20, 'Closed Agency', false)`;
  lake = mkdtempSync(join(tmpdir(), "etl-silver-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(lake, { recursive: true, force: true });
});

const run = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/bronze_to_silver.ts"], argv, { DATABASE_URL: db.url, ...env });
const silver = (dataset: string, date: string) => join(lake, `silver/${dataset}/dt=${date}`);
const manifestOf = (dataset: string, date: string) => JSON.parse(readFileSync(join(silver(dataset, date), "_manifest.json"), "utf8"));
const query = async (sql: string) => {
  const connection = await duck.connect();
  try {
    return (await connection.runAndReadAll("set TimeZone = 'UTC'; " + sql)).getRowObjectsJson();
  } finally {
    connection.closeSync();
  }
};
const readSilver = (dataset: string, date: string) =>
  query(`select * from read_parquet([${manifestOf(dataset, date).files.map((f: { key: string }) => `'${join(lake, f.key)}'`).join(", ")}], hive_partitioning = false) order by 1`);

function writeBronze(dataset: string, date: string, name: string, content: string): void {
  const dir = join(lake, `bronze/${dataset}/dt=${date}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), name.endsWith(".gz") ? Bun.gzipSync(Buffer.from(content)) : content);
}

const request = (id: number, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ id, agency_id: 10, title: ` request ${id} `, status: "OPEN", reporter_email: ` Someone${id}@Example.com `, priority: 2, created_at: "2026-11-01T08:00:00Z", updated_at: "2026-11-01T08:00:00Z", ...fields });

describe("bronze_to_silver", () => {
  test("validates, normalises, deduplicates by key keeping the latest, enriches, and writes typed zstd Parquet with its manifest last", async () => {
    const good = Array.from({ length: 200 }, (_, i) => request(i + 1, { agency_id: i % 10 === 0 ? 20 : i % 25 === 1 ? 99 : 10 }));
    writeBronze("service_requests", "2026-11-01", "a.ndjson.gz", good.join("\n") + "\n");
    writeBronze("service_requests", "2026-11-01", "b.ndjson", [
      // A later version of request 1 and an older one of request 2: the later wins either way.
      request(1, { title: "request 1, edited", updated_at: "2026-11-01T09:30:00+01:00", status: " Closed " }),
      request(2, { title: "stale", updated_at: "2026-10-31T00:00:00Z" }),
      request(300, { status: "maybe" }),
      request(301, { reporter_email: "not-an-address" }),
      request(302, { title: "   " }),
      request(303, { priority: "3.5" }),
      request(304, { updated_at: "yesterday" }),
    ].join("\n") + "\n");

    const result = await run(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-01"]);
    // 5 rejects of 207 rows: over the default 1%, so partial.
    expect(result.exitCode).toBe(3);
    expect(result.summary!.counts).toMatchObject({ inputs: 2, rowsIn: 207, rejected: 5, duplicates: 2, rowsOut: 200, failed: 5 });

    const manifest = manifestOf("service_requests", "2026-11-01");
    expect(manifest).toMatchObject({ dataset: "service_requests", partition: "2026-11-01", run_id: result.summary!.runId, rows: { in: 207, out: 200, rejected: 5, duplicates: 2 } });
    expect(manifest.inputs.map((i: { key: string }) => i.key)).toEqual(["bronze/service_requests/dt=2026-11-01/a.ndjson.gz", "bronze/service_requests/dt=2026-11-01/b.ndjson"]);
    expect(Object.fromEntries(manifest.columns.map((c: { name: string; type: string }) => [c.name, c.type]))).toEqual({
      id: "BIGINT", agency_id: "BIGINT", title: "VARCHAR", status: "VARCHAR", reporter_email: "VARCHAR", priority: "BIGINT",
      created_at: "TIMESTAMP WITH TIME ZONE", updated_at: "TIMESTAMP WITH TIME ZONE", agency_name: "VARCHAR", agency_active: "BOOLEAN",
    });
    const [parquetCodec] = await query(`select distinct compression from parquet_metadata('${join(lake, manifest.files[0].key)}')`);
    expect(parquetCodec!.compression).toBe("ZSTD");

    const rows = await readSilver("service_requests", "2026-11-01");
    expect(rows).toHaveLength(200);
    expect(rows[0]).toMatchObject({ id: "1", title: "request 1, edited", status: "closed", agency_name: "Harbour Agency", agency_active: true });
    expect(String(rows[0]!.updated_at)).toStartWith("2026-11-01 08:30:00");
    // Request 2's stale version lost; its agency (99) is unknown: no enrichment, not a reject.
    expect(rows[1]).toMatchObject({ id: "2", title: "request 2", reporter_email: "someone2@example.com", agency_id: "99", agency_name: null, agency_active: null });
    expect(rows[10]).toMatchObject({ id: "11", agency_id: "20", agency_name: "Closed Agency", agency_active: false });

    const rejects = readFileSync(join(lake, manifest.rejects.key), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rejects.map((r) => [r.rule, r.column, r.value]).sort()).toEqual([
      ["email", "reporter_email", "not-an-address"],
      ["one of: open, in_progress, closed", "status", "maybe"],
      ["required", "title", "   "],
      ["type: integer", "priority", "3.5"],
      ["type: timestamp", "updated_at", "yesterday"],
    ]);
    expect(rejects[0].row).toHaveProperty("id");
    expect(rejects[0].file).toContain("b.ndjson");

    const ledger = await db.sql`select rows_in, rows_out, rows_rejected, run_id::text from etl_partitions where dataset = 'service_requests'`;
    expect(ledger[0]).toMatchObject({ rows_in: "207", rows_out: "200", rows_rejected: "5", run_id: result.summary!.runId });
  });

  test("a rerun over unchanged inputs does nothing; a changed input rebuilds its partition only, and the old run's files go", async () => {
    for (const date of ["2026-11-01", "2026-11-02"]) writeBronze("service_requests", date, "a.ndjson", [request(1), request(2)].join("\n") + "\n");
    const args = (date: string) => ["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", date];
    const first = [await run(args("2026-11-01")), await run(args("2026-11-02"))];
    expect(first.map((r) => r.exitCode)).toEqual([0, 0]);

    const again = await run(args("2026-11-01"));
    expect(again.summary!.counts).toMatchObject({ inputs: 1, unchanged: 1 });
    expect(readdirSync(silver("service_requests", "2026-11-01")).sort()).toEqual([String(first[0]!.summary!.runId), "_manifest.json"].sort());

    writeBronze("service_requests", "2026-11-01", "b.ndjson", request(3) + "\n");
    const changed = await run(args("2026-11-01"));
    expect(changed.summary!.counts).toMatchObject({ inputs: 2, rowsOut: 3 });
    expect(readdirSync(silver("service_requests", "2026-11-01")).sort()).toEqual([String(changed.summary!.runId), "_manifest.json"].sort());
    expect((await run(args("2026-11-02"))).summary!.counts).toMatchObject({ unchanged: 1 });
    expect(manifestOf("service_requests", "2026-11-02").run_id).toBe(first[1]!.summary!.runId);
  });

  test("a local input rewritten in place with the same size and its old modification time restored still rebuilds (inode times, not mtime alone)", async () => {
    writeBronze("service_requests", "2026-11-03", "a.ndjson", [request(1), request(2)].join("\n") + "\n");
    const file = join(lake, "bronze/service_requests/dt=2026-11-03/a.ndjson");
    // Older than the 2 s within which a changed file is hashed instead (bronze_inputs.ts RACY_MS).
    utimesSync(file, new Date("2026-11-03T01:00:00Z"), new Date("2026-11-03T01:00:00Z"));
    await Bun.sleep(2_100);
    const args = ["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-03"];
    expect((await run(args)).summary!.counts).toMatchObject({ rowsOut: 2 });
    expect((await run(args)).summary!.counts).toMatchObject({ unchanged: 1 });
    const { mtime, atime, size } = statSync(file);
    writeFileSync(file, [request(1), request(3)].join("\n") + "\n");
    expect(statSync(file).size).toBe(size);
    utimesSync(file, atime, mtime);
    await Bun.sleep(2_100);
    const rebuilt = await run(args);
    expect(rebuilt.summary!.counts).not.toHaveProperty("unchanged");
    expect((await readSilver("service_requests", "2026-11-03")).map((r) => Number(r.id))).toEqual([1, 3]);
  });

  test("a CSV partition: a required column missing from every file fails naming it; a type conflict rejects the row naming the column", async () => {
    const header = "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at";
    writeBronze("partner_payments", "2026-11-03", "p1.csv", `${header}\nP-1,ACME,10,12.50,EUR,2026-11-02,,2026-11-03T01:00:00Z\nP-2,acme,10,abc,EUR,2026-11-02,,2026-11-03T01:00:00Z\nP-1,acme,10,13.00,EUR,2026-11-02,x@y.org,2026-11-03T02:00:00Z\n`);
    const ok = await run(["--dataset", "partner_payments", "--bucket", `file:${lake}`, "--date", "2026-11-03", "--max-reject-ratio", "0.5"]);
    expect(ok.exitCode).toBe(0);
    expect(ok.summary!.counts).toMatchObject({ rowsIn: 3, rejected: 1, duplicates: 1, rowsOut: 1 });
    const rows = await readSilver("partner_payments", "2026-11-03");
    expect(rows).toEqual([expect.objectContaining({ payment_id: "P-1", partner: "acme", amount: 13, payer_email: "x@y.org", agency_name: "Harbour Agency" })]);
    const rejects = readFileSync(join(silver("partner_payments", "2026-11-03"), String(ok.summary!.runId), "_rejects.ndjson"), "utf8");
    expect(JSON.parse(rejects)).toMatchObject({ rule: "type: number", column: "amount", value: "abc" });

    writeBronze("partner_payments", "2026-11-04", "p1.csv", "payment_id,partner,amount\nP-1,acme,1\n");
    const broken = await run(["--dataset", "partner_payments", "--bucket", `file:${lake}`, "--date", "2026-11-04"]);
    expect(broken.exitCode).toBe(1);
    expect(broken.summary!.error).toContain("required columns agency_id, currency, paid_on, reported_at missing from every bronze file");
  });

  test("without --date the logical date's day is the partition; without either, exit 2", async () => {
    writeBronze("service_requests", "2026-11-05", "a.ndjson", [request(1), request(1, { updated_at: "2026-11-01T09:00:00Z" })].join("\n") + "\n");
    const dry = await run(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-05", "--dry-run"]);
    expect(dry.summary!.counts).toMatchObject({ rowsIn: 2, rowsOut: 1, duplicates: 1 });
    expect(existsSync(silver("service_requests", "2026-11-05"))).toBe(false);
    const byLogicalDate = await run(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--logical-date", "2026-11-05T01:30:00Z"]);
    expect(byLogicalDate.summary!.counts).toMatchObject({ rowsOut: 1 });
    const neither = await run(["--dataset", "service_requests", "--bucket", `file:${lake}`]);
    expect(neither.exitCode).toBe(2);
    expect(neither.summary!.error).toContain("--date");
    for (const date of ["2026-13-01", "2026-02-30", "26-1-1"]) {
      const bad = await run(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", date]);
      expect(bad.exitCode).toBe(2);
      expect(bad.summary!.error).toContain(`--date must be a date YYYY-MM-DD`);
    }
    const unknown = await run(["--dataset", "nope", "--bucket", `file:${lake}`, "--date", "2026-11-05"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.summary!.error).toContain("known datasets: partner_payments, service_requests");
  });
});

describe("bronze_to_silver on S3, with the manifest's write failing", () => {
  let proxy: FaultProxy;
  beforeEach(async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
  });
  afterEach(async () => {
    await proxy.stop();
  });

  test("a crash between the files and the manifest leaves the committed partition readable and intact; the next run cleans up", async () => {
    const bucket = await createBucket();
    const key = "bronze/service_requests/dt=2026-11-06/a.ndjson";
    await putObject(bucket, key, [request(1), request(2)].join("\n") + "\n");
    const env = { S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "2" };
    const args = ["--dataset", "service_requests", "--bucket", bucket, "--date", "2026-11-06"];
    const first = await run(args, env);
    expect(first.exitCode).toBe(0);
    const committed = (await listKeys(bucket)).filter((k) => k.startsWith("silver/"));

    await putObject(bucket, key, [request(1), request(2), request(3)].join("\n") + "\n");
    proxy.failNext(100, 503, { when: (r) => r.method === "PUT" && r.path.includes("_manifest.json") });
    const crashed = await run(args, env);
    expect(crashed.exitCode).toBe(75);
    const after = (await listKeys(bucket)).filter((k) => k.startsWith("silver/"));
    // The new run's files are there, unreferenced; the manifest and the files it names are untouched.
    expect(after.filter((k) => committed.includes(k))).toEqual(committed);
    expect(after.some((k) => k.includes(String(crashed.summary!.runId)))).toBe(true);

    const next = await run(args, { S3_ENDPOINT: process.env.S3_ENDPOINT! });
    expect(next.exitCode).toBe(0);
    const final = (await listKeys(bucket)).filter((k) => k.startsWith("silver/"));
    expect(final.every((k) => k.endsWith("_manifest.json") || k.includes(String(next.summary!.runId)))).toBe(true);
    expect(existsSync(lake)).toBe(true);
  });
});
