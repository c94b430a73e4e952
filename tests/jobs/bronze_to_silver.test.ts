import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { makeWorkDirectory } from "../../core/runtime/work_directory";
import { startFaultProxy, type FaultProxy } from "../harness/fault_proxy";
import { ROOT, createTestDatabase, insertLease, runCommand, type CliResult, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { track } from "../harness/processes";

let db: TestDatabase;
let lake: Lake;
let duck: Awaited<ReturnType<typeof DuckDBInstance.create>>;

beforeAll(async () => {
  duck = await DuckDBInstance.create(":memory:");
});
afterAll(() => duck.closeSync());
beforeEach(async () => {
  db = await createTestDatabase();
  await db.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true), (20, 'Closed Agency', false)`;
});
afterEach(async () => {
  await db.drop();
  await lake?.dispose();
});

const run = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/bronze_to_silver.ts"], argv, { DATABASE_URL: db.url, ...env });
const args = (dataset: string, date: string, ...extra: string[]) => ["--dataset", dataset, "--bucket", lake.arg, "--date", date, ...extra];
const silver = (dataset: string, date: string) => `silver/${dataset}/dt=${date}/`;
const manifestOf = async (dataset: string, date: string) => JSON.parse((await lake.read(`${silver(dataset, date)}_manifest.json`)).toString());
const query = async (sql: string) => {
  const connection = await duck.connect();
  try {
    return (await connection.runAndReadAll("set TimeZone = 'UTC'; " + sql)).getRowObjectsJson();
  } finally {
    connection.closeSync();
  }
};
const readSilver = async (dataset: string, date: string) => {
  const paths = await Promise.all((await manifestOf(dataset, date)).files.map((f: { key: string }) => lake.localCopy(f.key)));
  return query(`select * from read_parquet([${paths.map((p) => `'${p}'`).join(", ")}], hive_partitioning = false) order by 1`);
};
const readRejects = async (key: string) => (await lake.read(key)).toString().trim().split("\n").map((l) => JSON.parse(l));
/** The run folders and files directly in a partition: the run ids, `_manifest.json`. */
const partitionEntries = async (dataset: string, date: string) => [...new Set((await lake.keys(silver(dataset, date))).map((k) => k.slice(silver(dataset, date).length).split("/")[0]!))].sort();

function writeBronze(dataset: string, date: string, name: string, content: string | Uint8Array): Promise<void> {
  return lake.write(`bronze/${dataset}/dt=${date}/${name}`, name.endsWith(".gz") ? Bun.gzipSync(typeof content === "string" ? Buffer.from(content) : Buffer.from(content)) : content);
}

const request = (id: number, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ id, agency_id: 10, title: ` request ${id} `, status: "OPEN", reporter_email: ` Someone${id}@Example.com `, priority: 2, created_at: "2026-11-01T08:00:00Z", updated_at: "2026-11-01T08:00:00Z", ...fields });
const REQUEST_HEADER = "id,agency_id,title,status,reporter_email,priority,created_at,updated_at";
const requestCsv = (id: number, updatedAt = "2026-11-01T08:00:00Z") => `${id},10,request ${id},open,,3,2026-11-01T08:00:00Z,${updatedAt}`;

for (const kind of LAKE_KINDS) {
  describe(`bronze_to_silver on a ${kind === "s3" ? "bucket" : "directory"}`, () => {
    beforeEach(async () => {
      lake = await createLake(kind);
    });

    test("validates, normalises, deduplicates by key keeping the latest, enriches, and writes typed zstd Parquet with its manifest last", async () => {
      const good = Array.from({ length: 200 }, (_, i) => request(i + 1, { agency_id: i % 10 === 0 ? 20 : i % 25 === 1 ? 99 : 10 }));
      await writeBronze("service_requests", "2026-11-01", "a.ndjson.gz", good.join("\n") + "\n");
      await writeBronze("service_requests", "2026-11-01", "b.ndjson", [
        // A later version of request 1 and an older one of request 2: the later wins either way.
        request(1, { title: "request 1, edited", updated_at: "2026-11-01T09:30:00+01:00", status: " Closed " }),
        request(2, { title: "stale", updated_at: "2026-10-31T00:00:00Z" }),
        request(300, { status: "maybe" }),
        request(301, { reporter_email: "not-an-address" }),
        request(302, { title: "   " }),
        request(303, { priority: "3.5" }),
        request(304, { updated_at: "yesterday" }),
      ].join("\n") + "\n");

      const result = await run(args("service_requests", "2026-11-01"));
      // 5 rejects of 207 rows: over the default 1%, so partial.
      expect(result.exitCode).toBe(3);
      expect(result.summary!.counts).toMatchObject({ inputs: 2, rowsIn: 207, rejected: 5, duplicates: 2, rowsOut: 200, failed: 5, rejectedInputs: 0 });

      const manifest = await manifestOf("service_requests", "2026-11-01");
      expect(manifest).toMatchObject({ dataset: "service_requests", partition: "2026-11-01", run_id: result.summary!.runId, rows: { in: 207, out: 200, rejected: 5, duplicates: 2 }, rejected_inputs: [] });
      expect(manifest.inputs.map((i: { key: string }) => i.key)).toEqual(["bronze/service_requests/dt=2026-11-01/a.ndjson.gz", "bronze/service_requests/dt=2026-11-01/b.ndjson"]);
      expect(Object.fromEntries(manifest.columns.map((c: { name: string; type: string }) => [c.name, c.type]))).toEqual({
        id: "BIGINT", agency_id: "BIGINT", title: "VARCHAR", status: "VARCHAR", reporter_email: "VARCHAR", priority: "BIGINT",
        created_at: "TIMESTAMP WITH TIME ZONE", updated_at: "TIMESTAMP WITH TIME ZONE", agency_name: "VARCHAR", agency_active: "BOOLEAN",
      });
      const [parquetCodec] = await query(`select distinct compression from parquet_metadata('${await lake.localCopy(manifest.files[0].key)}')`);
      expect(parquetCodec!.compression).toBe("ZSTD");

      const rows = await readSilver("service_requests", "2026-11-01");
      expect(rows).toHaveLength(200);
      expect(rows[0]).toMatchObject({ id: "1", title: "request 1, edited", status: "closed", agency_name: "Harbour Agency", agency_active: true });
      expect(String(rows[0]!.updated_at)).toStartWith("2026-11-01 08:30:00");
      // Request 2's stale version lost; its agency (99) is unknown: no enrichment, not a reject.
      expect(rows[1]).toMatchObject({ id: "2", title: "request 2", reporter_email: "someone2@example.com", agency_id: "99", agency_name: null, agency_active: null });
      expect(rows[10]).toMatchObject({ id: "11", agency_id: "20", agency_name: "Closed Agency", agency_active: false });

      const rejects = await readRejects(manifest.rejects.key);
      expect(rejects.map((r) => [r.rule, r.column, r.value]).sort()).toEqual([
        ["email", "reporter_email", "not-an-address"],
        ["one of: open, in_progress, closed", "status", "maybe"],
        ["required", "title", "   "],
        ["type: integer", "priority", "3.5"],
        ["type: timestamp", "updated_at", "yesterday"],
      ]);
      expect(rejects[0].row).toHaveProperty("id");
      // The bronze key, not the path DuckDB read (a staged copy, for a bucket).
      expect(rejects[0].file).toBe("bronze/service_requests/dt=2026-11-01/b.ndjson");

      const ledger = await db.sql`select rows_in, rows_out, rows_rejected, run_id::text from etl_partitions where dataset = 'service_requests'`;
      expect(ledger[0]).toMatchObject({ rows_in: "207", rows_out: "200", rows_rejected: "5", run_id: result.summary!.runId });
    });

    test("a scheduled slot builds the day its data interval covers, and looking back rebuilds only the earlier days whose bronze changed", async () => {
      for (const date of ["2026-11-01", "2026-11-02"]) await writeBronze("service_requests", date, "a.ndjson", [request(1), request(2)].join("\n") + "\n");
      // Airflow's way of giving the interval; a CronJob's pod gets the same one from its schedule's cron.
      const slot = (end: string, start: string) => run(["--dataset", "service_requests", "--bucket", lake.arg, "--lookback-days", "3", "--logical-date", end], { ETL_DATA_INTERVAL_START: start });
      const first = await slot("2026-11-03T01:30:00Z", "2026-11-02T01:30:00Z");
      expect(first.exitCode).toBe(0);
      // 10-31 has no bronze; 11-01 and 11-02 are built; 11-03, the day that is starting, is not.
      expect(first.summary!.counts).toMatchObject({ partitions: 3, inputs: 2, rowsOut: 4 });
      expect((await manifestOf("service_requests", "2026-11-02")).run_id).toBe(first.summary!.runId);
      expect(await lake.keys("silver/service_requests/dt=2026-11-03/")).toEqual([]);

      // A late record for 11-01, then the next day's slot: 11-01 is rebuilt, 11-02 is left as it is.
      await writeBronze("service_requests", "2026-11-01", "late.ndjson", request(3) + "\n");
      const second = await slot("2026-11-04T01:30:00Z", "2026-11-03T01:30:00Z");
      expect(second.exitCode).toBe(0);
      expect(second.summary!.counts).toMatchObject({ partitions: 3, unchanged: 1 });
      expect((await manifestOf("service_requests", "2026-11-01")).run_id).toBe(second.summary!.runId);
      expect((await manifestOf("service_requests", "2026-11-02")).run_id).toBe(first.summary!.runId);
      expect((await readSilver("service_requests", "2026-11-01")).map((r) => r.id)).toEqual(["1", "2", "3"]);
    });

    test("a rerun over unchanged inputs does nothing; a changed input rebuilds its partition only, and the old run's files go", async () => {
      for (const date of ["2026-11-01", "2026-11-02"]) await writeBronze("service_requests", date, "a.ndjson", [request(1), request(2)].join("\n") + "\n");
      const first = [await run(args("service_requests", "2026-11-01")), await run(args("service_requests", "2026-11-02"))];
      expect(first.map((r) => r.exitCode)).toEqual([0, 0]);

      const again = await run(args("service_requests", "2026-11-01"));
      expect(again.summary!.counts).toMatchObject({ inputs: 1, unchanged: 1 });
      expect(await partitionEntries("service_requests", "2026-11-01")).toEqual([String(first[0]!.summary!.runId), "_manifest.json"].sort());

      await writeBronze("service_requests", "2026-11-01", "b.ndjson", request(3) + "\n");
      const changed = await run(args("service_requests", "2026-11-01"));
      expect(changed.summary!.counts).toMatchObject({ inputs: 2, rowsOut: 3 });
      expect(await partitionEntries("service_requests", "2026-11-01")).toEqual([String(changed.summary!.runId), "_manifest.json"].sort());
      expect((await run(args("service_requests", "2026-11-02"))).summary!.counts).toMatchObject({ unchanged: 1 });
      expect((await manifestOf("service_requests", "2026-11-02")).run_id).toBe(first[1]!.summary!.runId);
    });

    test("a CSV partition: a required column missing from every file fails naming it; a type conflict rejects the row naming the column; a column named file_index is refused", async () => {
      const header = "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at";
      await writeBronze("partner_payments", "2026-11-03", "p1.csv", `${header}\nP-1,ACME,10,12.50,EUR,2026-11-02,,2026-11-03T01:00:00Z\nP-2,acme,10,abc,EUR,2026-11-02,,2026-11-03T01:00:00Z\nP-1,acme,10,13.00,EUR,2026-11-02,x@y.org,2026-11-03T02:00:00Z\n`);
      const ok = await run(args("partner_payments", "2026-11-03", "--max-reject-ratio", "0.5"));
      expect(ok.exitCode).toBe(0);
      expect(ok.summary!.counts).toMatchObject({ rowsIn: 3, rejected: 1, duplicates: 1, rowsOut: 1 });
      const rows = await readSilver("partner_payments", "2026-11-03");
      expect(rows).toEqual([expect.objectContaining({ payment_id: "P-1", partner: "acme", amount: 13, payer_email: "x@y.org", agency_name: "Harbour Agency" })]);
      const [reject] = await readRejects(`${silver("partner_payments", "2026-11-03")}${ok.summary!.runId}/_rejects.ndjson`);
      expect(reject).toMatchObject({ file: "bronze/partner_payments/dt=2026-11-03/p1.csv", rule: "type: number", column: "amount", value: "abc" });

      await writeBronze("partner_payments", "2026-11-04", "p1.csv", "payment_id,partner,amount\nP-1,acme,1\n");
      const broken = await run(args("partner_payments", "2026-11-04"));
      expect(broken.exitCode).toBe(1);
      expect(broken.summary!.error).toContain("required columns agency_id, currency, paid_on, reported_at missing from every bronze file");

      await writeBronze("partner_payments", "2026-11-05", "p1.csv", `${header},file_index\nP-1,acme,10,1,EUR,2026-11-02,,2026-11-03T01:00:00Z,7\n`);
      const reserved = await run(args("partner_payments", "2026-11-05"));
      expect(reserved.exitCode).toBe(1);
      expect(reserved.summary!.error).toContain("a bronze file has a column named file_index, a name this job reserves");
    });

    test("a partition of CSV, NDJSON, JSON Lines and a JSON array, gzipped or not, is one silver partition of all their rows", async () => {
      const date = "2026-11-08";
      await writeBronze("service_requests", date, "a.csv", [REQUEST_HEADER, requestCsv(1), requestCsv(2), requestCsv(3)].join("\n") + "\n");
      // Columns in another order, and one of them missing (priority is optional).
      await writeBronze("service_requests", date, "b.csv.gz", "updated_at,created_at,status,title,agency_id,id\n2026-11-01T08:00:00Z,2026-11-01T08:00:00Z,closed,request 4,10,4\n");
      await writeBronze("service_requests", date, "c.ndjson", [request(5), request(6)].join("\n") + "\n");
      // A later version of request 1, from a JSON file: the latest wins across formats.
      await writeBronze("service_requests", date, "d.jsonl.gz", [request(7), request(1, { title: "request 1, edited", updated_at: "2026-11-01T10:00:00Z" })].join("\n") + "\n");
      await writeBronze("service_requests", date, "e.json", `[${request(8)}, ${request(9, { priority: null })}]`);
      await writeBronze("service_requests", date, "f.json.gz", request(10) + "\n");

      const result = await run(args("service_requests", date));
      expect(result.summary).toMatchObject({ exitCode: 0, counts: { inputs: 6, rowsIn: 11, rejected: 0, duplicates: 1, rowsOut: 10, rejectedInputs: 0, failed: 0 } });
      const rows = await readSilver("service_requests", date);
      expect(rows.map((r) => Number(r.id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(rows[0]).toMatchObject({ title: "request 1, edited", agency_name: "Harbour Agency" });
      expect(rows[3]).toMatchObject({ title: "request 4", status: "closed", priority: null });
      expect(rows[8]).toMatchObject({ title: "request 9", priority: null });

      // A CSV dataset takes a JSON file beside its CSV ones.
      await writeBronze("partner_payments", date, "p1.csv", "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at\nP-1,acme,10,1.50,EUR,2026-11-02,,2026-11-03T01:00:00Z\n");
      await writeBronze("partner_payments", date, "p2.ndjson", JSON.stringify({ payment_id: "P-2", partner: "acme", agency_id: 10, amount: 2.5, currency: "EUR", paid_on: "2026-11-02", reported_at: "2026-11-03T01:00:00Z" }) + "\n");
      const payments = await run(args("partner_payments", date));
      expect(payments.summary).toMatchObject({ exitCode: 0, counts: { inputs: 2, rowsOut: 2 } });
      expect((await readSilver("partner_payments", date)).map((r) => [r.payment_id, r.amount])).toEqual([["P-1", 1.5], ["P-2", 2.5]]);
    });

    test("a file that cannot be read is a rejected input with its reason: the others are published, the run is partial, and a replaced file rebuilds", async () => {
      const date = "2026-11-09";
      const prefix = `bronze/service_requests/dt=${date}/`;
      await writeBronze("service_requests", date, "good.ndjson", [request(1), request(2)].join("\n") + "\n");
      await writeBronze("service_requests", date, "utf16.csv", Buffer.from(`\ufeff${REQUEST_HEADER}\n${requestCsv(3)}\n`, "utf16le"));
      await lake.write(`${prefix}plain.ndjson.gz`, request(4) + "\n");
      await writeBronze("service_requests", date, "cut.json", `[${request(5)}, {"id": 6, "title"`);

      const result = await run(args("service_requests", date));
      expect(result.summary).toMatchObject({ exitCode: 3, status: "partial", counts: { inputs: 4, rejectedInputs: 3, failed: 3, rowsIn: 2, rejected: 0, rowsOut: 2 } });
      expect((await readSilver("service_requests", date)).map((r) => Number(r.id))).toEqual([1, 2]);
      const manifest = await manifestOf("service_requests", date);
      expect(manifest.inputs.map((i: { key: string }) => i.key)).toEqual(["cut.json", "good.ndjson", "plain.ndjson.gz", "utf16.csv"].map((n) => prefix + n));
      const reasons = Object.fromEntries(manifest.rejected_inputs.map((r: { key: string; rule: string; reason: string }) => [r.key.slice(prefix.length), [r.rule, r.reason]]));
      expect(reasons).toEqual({
        "cut.json": ["unreadable_file", expect.stringContaining(`Malformed JSON in file "${prefix}cut.json"`)],
        "plain.ndjson.gz": ["unreadable_file", expect.stringContaining(`Input is not a GZIP stream: ${prefix}plain.ndjson.gz`)],
        "utf16.csv": ["unreadable_file", expect.stringContaining("This file is not utf-8 encoded")],
      });
      // DuckDB's advice and the SQL it points at are left out.
      for (const [, reason] of Object.values(reasons) as string[][]) expect(reason).not.toMatch(/Possible|LINE 1|\n/);
      const rejects = await readRejects(manifest.rejects.key);
      expect(rejects).toEqual(manifest.rejected_inputs.map((r: { key: string; reason: string }) => ({ file: r.key, rule: "unreadable_file", column: null, value: null, row: null, detail: r.reason })));
      expect(result.events.some((e) => e.msg === "bronze files that cannot be read were left out of the partition")).toBe(true);

      // The rejected files are inputs: unchanged, a rerun does nothing; replaced, the partition is rebuilt with them.
      expect((await run(args("service_requests", date))).summary).toMatchObject({ exitCode: 0, counts: { unchanged: 1 } });
      await writeBronze("service_requests", date, "plain.ndjson.gz", request(4) + "\n");
      await writeBronze("service_requests", date, "utf16.csv", `${REQUEST_HEADER}\n${requestCsv(3)}\n`);
      const rebuilt = await run(args("service_requests", date));
      expect(rebuilt.summary).toMatchObject({ exitCode: 3, counts: { rejectedInputs: 1, rowsOut: 4 } });
      expect((await manifestOf("service_requests", date)).rejected_inputs.map((r: { key: string }) => r.key)).toEqual([`${prefix}cut.json`]);

      // Nothing readable and nothing committed: no partition at all, the reject logged, exit 3; never a failed run.
      await lake.write(`bronze/service_requests/dt=2026-11-10/only.ndjson.gz`, "not gzip\n");
      const empty = await run(args("service_requests", "2026-11-10"));
      expect(empty.summary).toMatchObject({ exitCode: 3, counts: { inputs: 1, rejectedInputs: 1, failed: 1, rowsIn: 0, rowsOut: 0 } });
      expect(await lake.keys(silver("service_requests", "2026-11-10"))).toEqual([]);
      expect(empty.events.filter((e) => e.event === "silver.rejected_input")).toEqual([
        expect.objectContaining({ file: "bronze/service_requests/dt=2026-11-10/only.ndjson.gz", rule: "unreadable_file", reason: expect.stringContaining("Input is not a GZIP stream") }),
      ]);
    });

    test("a re-delivery whose only file cannot be read keeps the committed partition as it was, exit 3; fixed, the partition is rebuilt", async () => {
      const date = "2026-11-12";
      await writeBronze("service_requests", date, "a.ndjson", [request(1), request(2)].join("\n") + "\n");
      const first = await run(args("service_requests", date));
      expect(first.exitCode).toBe(0);
      const committedKeys = await lake.keys(silver("service_requests", date));
      const manifestBefore = (await lake.read(`${silver("service_requests", date)}_manifest.json`)).toString();
      const [ledgerBefore] = await db.sql`select fingerprint, run_id::text from etl_partitions where dataset = 'service_requests'`;

      await writeBronze("service_requests", date, "a.ndjson", `{"id": 1, "title": "cut`);
      for (let attempt = 0; attempt < 2; attempt++) {
        // Run again with the same bad file: the same outcome, the fingerprint never recorded.
        const bad = await run(args("service_requests", date));
        expect(bad.summary).toMatchObject({ exitCode: 3, status: "partial", counts: { inputs: 1, rejectedInputs: 1, failed: 1, rowsOut: 0 } });
        expect((await lake.read(`${silver("service_requests", date)}_manifest.json`)).toString()).toBe(manifestBefore);
        expect(await lake.keys(silver("service_requests", date))).toEqual(committedKeys);
        expect((await readSilver("service_requests", date)).map((r) => Number(r.id))).toEqual([1, 2]);
        expect([...(await db.sql`select fingerprint, run_id::text from etl_partitions where dataset = 'service_requests'`)]).toEqual([ledgerBefore!]);
        expect(bad.events.filter((e) => e.event === "silver.rejected_input")).toEqual([
          expect.objectContaining({ file: `bronze/service_requests/dt=${date}/a.ndjson`, rule: "unreadable_file", reason: expect.stringContaining("Malformed JSON") }),
        ]);
      }

      await writeBronze("service_requests", date, "a.ndjson", [request(1), request(3)].join("\n") + "\n");
      const fixed = await run(args("service_requests", date));
      expect(fixed.summary).toMatchObject({ exitCode: 0, counts: { rowsOut: 2, rejectedInputs: 0 } });
      expect((await readSilver("service_requests", date)).map((r) => Number(r.id))).toEqual([1, 3]);
      expect(await partitionEntries("service_requests", date)).toEqual([String(fixed.summary!.runId), "_manifest.json"].sort());
    });

    test("a dry run transforms and counts and writes nothing; without --date the logical date's day is the partition", async () => {
      await writeBronze("service_requests", "2026-11-05", "a.ndjson", [request(1), request(1, { updated_at: "2026-11-01T09:00:00Z" })].join("\n") + "\n");
      const dry = await run([...args("service_requests", "2026-11-05"), "--dry-run"]);
      expect(dry.summary!.counts).toMatchObject({ rowsIn: 2, rowsOut: 1, duplicates: 1 });
      expect(await lake.keys("silver/")).toEqual([]);
      const byLogicalDate = await run(["--dataset", "service_requests", "--bucket", lake.arg, "--logical-date", "2026-11-05T01:30:00Z"]);
      expect(byLogicalDate.summary!.counts).toMatchObject({ rowsOut: 1 });
    });

    test("a run killed mid-rebuild leaves nothing the next run keeps, though that run finds the inputs unchanged; a live run's files and work directory stay", async () => {
      const date = "2026-11-07";
      const prefix = silver("service_requests", date);
      // The children's $TMPDIR, to see their work directories.
      const temp = mkdtempSync(join(tmpdir(), "etl-silver-tmpdir-"));
      try {
        const env = { TMPDIR: temp, ETL_LEASE_TTL_SECONDS: "2" };
        await writeBronze("service_requests", date, "a.ndjson", [request(1), request(2, { status: "maybe" })].join("\n") + "\n");
        const first = await run(args("service_requests", date, "--max-reject-ratio", "1"), env);
        expect(first.exitCode).toBe(0);
        const committed = await lake.keys(prefix);

        // Another run, alive: it holds a lease; its work directory is this process's.
        const live = await insertLease(db.sql, "bronze_to_silver:elsewhere", "pod-2", { expiresInSeconds: 60 });
        const liveFile = kind === "file" ? `${prefix}${live}/part-00000.parquet.etl-partial-${live}.def456` : `${prefix}${live}/part-00000.parquet`;
        await lake.write(liveFile, "in flight");
        const liveDirectory = await makeWorkDirectory("silver", temp);

        const killedRun = crypto.randomUUID();
        await killRebuild(lake, args("service_requests", date, "--rebuild", "--max-reject-ratio", "1"), { ...env, ETL_RUN_ID: killedRun });
        const othersThanLive = () => readdirSync(temp).filter((name) => name !== basename(liveDirectory));
        expect(othersThanLive()).toEqual([expect.stringMatching(/^etl-silver-/)]);
        if (kind === "file") {
          // Killed before it wrote to the lake: what a kill in its writes leaves, a temp file, is put there.
          await lake.write(`${prefix}${killedRun}/part-00000.parquet.etl-partial-${killedRun}.abc123`, "half");
          await lake.write(`${prefix}_manifest.json.etl-partial-${killedRun}.abc123`, "{");
        }
        expect((await lake.keys(`${prefix}${killedRun}/`)).length).toBeGreaterThan(0);

        const rerun = await run(args("service_requests", date, "--max-reject-ratio", "1"), env);
        expect(rerun.summary).toMatchObject({ exitCode: 0, counts: { unchanged: 1 } });
        expect(await lake.keys(prefix)).toEqual([...committed, liveFile].sort());
        expect(othersThanLive()).toEqual([]);
        expect(readdirSync(temp)).toEqual([basename(liveDirectory)]);
        expect(rerun.events.some((e) => e.msg === "removed what killed runs left in the partition")).toBe(true);
      } finally {
        rmSync(temp, { recursive: true, force: true });
      }
    });
  });
}

/**
 * Starts a `--rebuild` and SIGKILLs it where it leaves the most behind: on a bucket while its
 * manifest's PUT is held by the proxy (its run folder is written); on a directory while its
 * enrichment lookup waits for a lock on agency (its work directory is there).
 */
async function killRebuild(lake: Lake, argv: string[], env: Record<string, string>): Promise<void> {
  let proxy: FaultProxy | undefined;
  let held = () => Promise.resolve(false);
  let release = async () => {};
  if (lake.kind === "s3") {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    let seen = false;
    proxy.stall(true, (r) => {
      const manifest = r.method === "PUT" && r.path.includes("_manifest.json");
      seen ||= manifest;
      return manifest;
    });
    held = async () => seen;
    env = { ...env, S3_ENDPOINT: proxy.url };
  } else {
    const locked = Promise.withResolvers<void>();
    const done = Promise.withResolvers<void>();
    const transaction = db.sql.begin(async (tx) => {
      await tx`lock table agency in access exclusive mode`;
      locked.resolve();
      await done.promise;
    });
    await locked.promise;
    held = async () => (await db.sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)[0]!.n > 0;
    release = async () => {
      done.resolve();
      await transaction;
    };
  }
  const child = track(Bun.spawn(["bun", "jobs/bronze_to_silver.ts", ...argv], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: "json", DATABASE_URL: db.url, ...env }, stdout: "ignore", stderr: "ignore" }));
  try {
    const deadline = Date.now() + 50_000;
    while (!(await held())) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the run ${child.exitCode === null ? "never got there" : `exited with ${child.exitCode}`}`);
      await Bun.sleep(20);
    }
    child.kill("SIGKILL");
    await child.exited;
  } finally {
    await release();
    await proxy?.stop();
  }
}

describe("bronze_to_silver on a directory's files", () => {
  let dir: string;
  beforeEach(async () => {
    lake = await createLake("file");
    dir = lake.dir!;
  });

  test("a local input rewritten in place with the same size and its old modification time restored still rebuilds (inode times, not mtime alone)", async () => {
    await writeBronze("service_requests", "2026-11-03", "a.ndjson", [request(1), request(2)].join("\n") + "\n");
    const file = join(dir, "bronze/service_requests/dt=2026-11-03/a.ndjson");
    // Older than the 2 s within which a changed file is hashed instead (bronze_inputs.ts RACY_MS).
    utimesSync(file, new Date("2026-11-03T01:00:00Z"), new Date("2026-11-03T01:00:00Z"));
    await Bun.sleep(2_100);
    const argv = args("service_requests", "2026-11-03");
    expect((await run(argv)).summary!.counts).toMatchObject({ rowsOut: 2 });
    expect((await run(argv)).summary!.counts).toMatchObject({ unchanged: 1 });
    const { mtime, atime, size } = statSync(file);
    writeFileSync(file, [request(1), request(3)].join("\n") + "\n");
    expect(statSync(file).size).toBe(size);
    utimesSync(file, atime, mtime);
    await Bun.sleep(2_100);
    const rebuilt = await run(argv);
    expect(rebuilt.summary!.counts).not.toHaveProperty("unchanged");
    expect((await readSilver("service_requests", "2026-11-03")).map((r) => Number(r.id))).toEqual([1, 3]);
  });

  test("a run that loses its lease on the partition writes no manifest: the committed partition stays, exit 75", async () => {
    const date = "2026-11-11";
    await writeBronze("service_requests", date, "a.ndjson", request(1) + "\n");
    const env = { ETL_LEASE_TTL_SECONDS: "2" };
    const first = await run(args("service_requests", date), env);
    expect(first.exitCode).toBe(0);
    const committed = await lake.keys(silver("service_requests", date));

    // Held at its enrichment lookup (a lock on agency) while another run takes its lease over.
    const transaction = db.sql.begin(async (tx) => {
      await tx`lock table agency in access exclusive mode`;
      const child = track(Bun.spawn(["bun", "jobs/bronze_to_silver.ts", ...args("service_requests", date, "--rebuild")], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: "json", DATABASE_URL: db.url, ...env }, stdout: "pipe", stderr: "ignore" }));
      while ((await db.sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)[0]!.n === 0) {
        if (child.exitCode !== null) throw new Error(`the run exited with ${child.exitCode} before its lookup`);
        await Bun.sleep(20);
      }
      await db.sql`update etl_leases set run_id = gen_random_uuid() where name like 'bronze_to_silver:%'`;
      // Its next renewal (every ttl/6) finds the lease taken.
      let printed = "";
      const reader = child.stdout.getReader();
      while (!printed.includes("lease lost")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the run ended without losing its lease: ${printed}`);
        printed += new TextDecoder().decode(value);
      }
      return { child, reader, printed };
    });
    const { child, reader } = await transaction;
    let { printed } = await transaction;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) printed += new TextDecoder().decode(chunk.value);
    expect(await child.exited).toBe(75);
    expect(printed).toContain('"error":"lost the lease on bronze_to_silver:');
    expect((await manifestOf("service_requests", date)).run_id).toBe(first.summary!.runId);
    const left = (await lake.keys(silver("service_requests", date))).filter((k) => !committed.includes(k));
    expect(left.every((k) => !k.endsWith("_manifest.json"))).toBe(true);
  });

  test("without --date or --logical-date, a bad date or an unknown dataset: exit 2 naming it", async () => {
    const neither = await run(["--dataset", "service_requests", "--bucket", lake.arg]);
    expect(neither.exitCode).toBe(2);
    expect(neither.summary!.error).toContain("--date");
    for (const date of ["2026-13-01", "2026-02-30", "26-1-1"]) {
      const bad: CliResult = await run(args("service_requests", date));
      expect(bad.exitCode).toBe(2);
      expect(bad.summary!.error).toContain(`--date must be a date YYYY-MM-DD`);
    }
    const unknown = await run(args("nope", "2026-11-05"));
    expect(unknown.exitCode).toBe(2);
    expect(unknown.summary!.error).toContain("known datasets: partner_payments, service_requests");
  });
});

describe("bronze_to_silver on a bucket, with the manifest's write failing", () => {
  let proxy: FaultProxy;
  beforeEach(async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    lake = await createLake("s3");
  });
  afterEach(async () => {
    await proxy.stop();
  });

  test("a crash between the files and the manifest leaves the committed partition readable and intact; the next run cleans up", async () => {
    const key = "bronze/service_requests/dt=2026-11-06/a.ndjson";
    await lake.write(key, [request(1), request(2)].join("\n") + "\n");
    const env = { S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "2" };
    const argv = args("service_requests", "2026-11-06");
    const first = await run(argv, env);
    expect(first.exitCode).toBe(0);
    const committed = await lake.keys("silver/");

    await lake.write(key, [request(1), request(2), request(3)].join("\n") + "\n");
    proxy.failNext(100, 503, { when: (r) => r.method === "PUT" && r.path.includes("_manifest.json") });
    const crashed = await run(argv, env);
    expect(crashed.exitCode).toBe(75);
    const after = await lake.keys("silver/");
    // The new run's files are there, unreferenced; the manifest and the files it names are untouched.
    expect(after.filter((k) => committed.includes(k))).toEqual(committed);
    expect(after.some((k) => k.includes(String(crashed.summary!.runId)))).toBe(true);

    const next = await run(argv);
    expect(next.exitCode).toBe(0);
    const final = await lake.keys("silver/");
    expect(final.every((k) => k.endsWith("_manifest.json") || k.includes(String(next.summary!.runId)))).toBe(true);
  });
});
