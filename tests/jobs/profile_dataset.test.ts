import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineDataset, type DatasetCheck } from "../../core/dataset";
import { openDuckDB } from "../../core/db/duckdb";
import { FileStore } from "../../core/storage/file_store";
import { createLogger } from "../../core/log";
import { Metrics } from "../../core/metrics/metrics";
import { prefixInputs } from "../../processors/file_processing/profile/inputs";
import type { ProfileDocument } from "../../processors/file_processing/profile/profile_document";
import { runProfile } from "../../processors/file_processing/profile/run_profile";
import { createBucket, createTestDatabase, getObjectText, listKeys, putObject, runCommand } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { scrape, startPushgateway, valueOf, type PushgatewayServer } from "../harness/pushgateway_server";

let duck: Awaited<ReturnType<typeof DuckDBInstance.create>>;
let gateway: PushgatewayServer;
let lake: string;

beforeAll(async () => {
  duck = await DuckDBInstance.create(":memory:");
  gateway = await startPushgateway();
});
afterAll(async () => {
  duck.closeSync();
  await gateway.stop();
});
beforeEach(() => {
  lake = mkdtempSync(join(tmpdir(), "etl-profile-"));
});
afterEach(() => {
  rmSync(lake, { recursive: true, force: true });
});

// Without a database: the job reads and writes objects only.
const profile = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/profile_dataset.ts"], argv, { DATABASE_URL: "", PUSHGATEWAY_URL: "", ...env });

async function sql(text: string): Promise<Array<Record<string, unknown>>> {
  const connection = await duck.connect();
  try {
    return (await connection.runAndReadAll("set TimeZone = 'UTC'; " + text)).getRowObjectsJson() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
  }
}

type Row = Record<string, string | number | boolean | null>;

/** `rows` as one zstd Parquet file at `path`, with these DuckDB types (the rows go through NDJSON). */
async function writeParquet(path: string, rows: readonly Row[], types: Record<string, string>): Promise<void> {
  mkdirSync(join(path, ".."), { recursive: true });
  const json = `${path}.ndjson`;
  writeFileSync(json, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const columns = Object.entries(types).map(([name, type]) => `"${name}": '${type}'`).join(", ");
  await sql(`copy (select * from read_json('${json}', format = 'newline_delimited', hive_partitioning = false, columns = {${columns}})) to '${path}' (format parquet, compression zstd)`);
  rmSync(json);
}

/** A committed silver partition as bronze_to_silver leaves it: the run's Parquet, then `_manifest.json`. */
async function writePartition(root: string, dataset: string, date: string, rows: readonly Row[], types: Record<string, string>, runId = "run-a"): Promise<void> {
  const prefix = `silver/${dataset}/dt=${date}/`;
  const part = `${prefix}${runId}/part-00000.parquet`;
  await writeParquet(join(root, part), rows, types);
  const manifest = { dataset, partition: date, run_id: runId, committed_at: "2026-11-01T02:00:00Z", fingerprint: "f", files: [{ key: part, rows: rows.length, bytes: 1 }], rejects: null, rows: { in: rows.length, out: rows.length, rejected: 0, duplicates: 0 }, inputs: [], columns: Object.entries(types).map(([name, type]) => ({ name, type })) };
  writeFileSync(join(root, `${prefix}_manifest.json`), JSON.stringify(manifest));
}

const SILVER_TYPES = {
  id: "BIGINT", agency_id: "BIGINT", title: "VARCHAR", status: "VARCHAR", reporter_email: "VARCHAR", priority: "BIGINT",
  created_at: "TIMESTAMPTZ", updated_at: "TIMESTAMPTZ", agency_name: "VARCHAR", agency_active: "BOOLEAN",
};

/** service_requests silver rows: ids 1..n, then a copy of row 5 and another version of row 6. */
function serviceRequests(n: number, change: (i: number, row: Row) => Row = (_, row) => row): Row[] {
  const row = (i: number): Row => {
    const agency = [10, 20, 30][i % 3]!;
    const created = new Date(Date.UTC(2026, 10, 1) + i * 60_000);
    return change(i, {
      id: i,
      agency_id: agency,
      title: i % 60 === 0 ? "   " : `request ${i}`,
      status: i % 25 === 0 ? "maybe" : ["open", "in_progress", "closed"][i % 3]!,
      reporter_email: i % 4 === 0 ? null : `r${i}@example.com`,
      priority: i % 7 === 0 ? null : (i % 6) - 1,
      created_at: created.toISOString(),
      updated_at: new Date(created.getTime() + 3_600_000).toISOString(),
      agency_name: agency === 30 ? null : `Agency ${agency}`,
      agency_active: agency === 30 ? null : agency === 10,
    });
  };
  const rows = Array.from({ length: n }, (_, k) => row(k + 1));
  return [...rows, { ...rows[4]! }, { ...rows[5]!, title: "request 6, edited" }];
}

/** What a correct profile says of one column of `rows`, computed here, apart from the code under test. */
function expectedColumn(rows: readonly Row[], name: string, topValues = 10) {
  const values = rows.map((r) => r[name] ?? null).filter((v) => v !== null);
  // DuckDB's text of a timestamp with time zone, in UTC.
  const text = (v: string | number | boolean) => String(v).replace(/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)\.000Z$/, "$1 $2+00");
  const counts = new Map<string, number>();
  for (const v of values) counts.set(text(v), (counts.get(text(v)) ?? 0) + 1);
  const top = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1)).slice(0, topValues);
  return {
    count: values.length,
    nulls: rows.length - values.length,
    distinct: counts.size,
    distinctExact: true,
    topValues: top.filter(([, c]) => c > 1 || counts.size <= topValues).map(([value, count]) => ({ value, count })),
  };
}

const profileAt = (root: string, key: string): ProfileDocument => JSON.parse(readFileSync(join(root, key), "utf8"));

describe("profile_dataset on a silver partition", () => {
  test("profiles every column with exact known answers, finds duplicates, evaluates the declared checks, writes the failures and pushes gauges", async () => {
    const rows = serviceRequests(300);
    await writePartition(lake, "service_requests", "2026-11-01", rows, SILVER_TYPES);
    const run = await profile(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-01"], { PUSHGATEWAY_URL: gateway.url });

    // unique_id and in_set_status are error checks that fail: partial.
    expect(run.exitCode).toBe(3);
    expect(run.summary!.counts).toEqual({ partitions: 1, rows: 302, columns: 10, checks: 7, checksWarned: 2, failed: 2, diffChanges: 0 });
    const p = profileAt(lake, "silver/service_requests/dt=2026-11-01/_profile/profile.json");
    expect(p).toMatchObject({ version: 1, dataset: "service_requests", partition: "2026-11-01", rows: 302, runId: run.summary!.runId });
    expect(p.source).toMatchObject({ format: "parquet", files: ["silver/service_requests/dt=2026-11-01/run-a/part-00000.parquet"], manifest: { runId: "run-a" } });

    for (const name of Object.keys(SILVER_TYPES)) expect({ name, ...p.columns[name] }).toMatchObject({ name, ...expectedColumn(rows, name) });
    const priorities = rows.map((r) => r.priority).filter((v): v is number => v !== null);
    const mean = priorities.reduce((a, b) => a + b, 0) / priorities.length;
    expect(p.columns.priority).toMatchObject({ type: "BIGINT", declaredType: "integer", min: -1, max: 4, zeros: priorities.filter((v) => v === 0).length, negatives: priorities.filter((v) => v < 0).length });
    expect(p.columns.priority!.mean).toBeCloseTo(mean, 9);
    expect(p.columns.priority!.stddev).toBeCloseTo(Math.sqrt(priorities.reduce((a, v) => a + (v - mean) ** 2, 0) / (priorities.length - 1)), 9);
    expect(p.columns.priority!.nullRatio).toBeCloseTo(p.columns.priority!.nulls / 302, 12);
    expect(p.columns.title).toMatchObject({ empty: 5, length: { min: 3, max: "request 6, edited".length }, min: "   ", max: "request 99" });
    expect(p.columns.created_at).toMatchObject({ min: "2026-11-01 00:01:00+00", max: "2026-11-01 05:00:00+00" });
    expect(p.columns.agency_active).toMatchObject({ min: false, max: true });
    expect(p.duplicates).toEqual({ rows: 1, keys: { columns: ["id"], duplicatedKeys: 2, rowsWithDuplicatedKey: 4, sample: [{ id: "5", rows: 2 }, { id: "6", rows: 2 }] } });

    const checks = Object.fromEntries(p.checks.map((c) => [c.name, c]));
    expect(Object.fromEntries(p.checks.map((c) => [c.name, c.status]))).toEqual({
      schema: "passed", row_count_between: "passed", unique_id: "failed", in_set_status: "failed",
      between_priority: "warned", not_null_agency_name: "warned", freshness_updated_at: "passed",
    });
    expect(checks.unique_id).toMatchObject({ failing: 4, evaluated: 302, sample: [{ id: "5" }, { id: "5" }, { id: "6" }, { id: "6" }] });
    const maybes = rows.filter((r) => r.status === "maybe");
    expect(checks.in_set_status).toMatchObject({ failing: maybes.length, evaluated: 302, failuresKey: "silver/service_requests/dt=2026-11-01/_profile/failures/in_set_status.parquet" });
    expect(checks.in_set_status!.sample).toEqual(maybes.slice(0, 20).map((r) => ({ id: String(r.id), status: "maybe" })));
    expect(checks.between_priority).toMatchObject({ failing: priorities.filter((v) => v < 1).length, evaluated: priorities.length, mostly: 0.99, severity: "warn" });
    // Written whole: every failing row, every column.
    const written = await sql(`select count(*)::int as n, count(distinct id)::int as ids, min(title) as t from '${join(lake, checks.in_set_status!.failuresKey!)}'`);
    expect(written).toEqual([{ n: maybes.length, ids: maybes.length, t: "   " }]);
    expect(readdirSync(join(lake, "silver/service_requests/dt=2026-11-01/_profile/failures")).sort()).toEqual(["between_priority.parquet", "in_set_status.parquet", "not_null_agency_name.parquet", "unique_id.parquet"]);
    expect(run.events.find((e) => e.msg === "check failed" && e.check === "in_set_status")).toMatchObject({ level: "error", failing: maybes.length });

    const html = readFileSync(join(lake, "silver/service_requests/dt=2026-11-01/_profile/profile.html"), "utf8");
    expect(html).toContain(`data-column="reporter_email"`);
    expect(html).toContain("in_set_status");
    expect(html).not.toMatch(/<script|https?:\/\/|\ssrc=|<link/);

    const samples = await scrape(gateway);
    expect(valueOf(samples, "etl_profile_rows", { job: "profile_dataset", dataset: "service_requests" })).toBe(302);
    expect(valueOf(samples, "etl_profile_null_ratio", { job: "profile_dataset", dataset: "service_requests", column: "priority" })).toBeCloseTo(p.columns.priority!.nullRatio, 9);
    expect(valueOf(samples, "etl_profile_check_failed", { job: "profile_dataset", dataset: "service_requests", check: "unique_id", severity: "error" })).toBe(1);
    expect(valueOf(samples, "etl_profile_check_failed", { job: "profile_dataset", dataset: "service_requests", check: "schema", severity: "error" })).toBe(0);
  });

  test("looking back, the days before are profiled again only when their partition was rebuilt since their profile", async () => {
    for (const date of ["2026-11-01", "2026-11-02"]) await writePartition(lake, "service_requests", date, serviceRequests(50), SILVER_TYPES);
    const slot = () => profile(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-02", "--lookback-days", "3"]);
    // 10-31 was never built; 11-01 has no profile yet.
    expect((await slot()).summary!.counts).toMatchObject({ partitions: 2 });
    // Nothing rebuilt: the day itself alone.
    expect((await slot()).summary!.counts).toMatchObject({ partitions: 1 });
    await writePartition(lake, "service_requests", "2026-11-01", serviceRequests(60), SILVER_TYPES, "run-b");
    expect((await slot()).summary!.counts).toMatchObject({ partitions: 2 });
    expect(profileAt(lake, "silver/service_requests/dt=2026-11-01/_profile/profile.json")).toMatchObject({ rows: 62, source: { manifest: { runId: "run-b" } } });
  });

  test("on S3: the parts are downloaded, the profile and failures land beside the partition", async () => {
    const bucket = await createBucket();
    const rows = serviceRequests(50);
    await writePartition(lake, "service_requests", "2026-11-02", rows, SILVER_TYPES);
    const prefix = "silver/service_requests/dt=2026-11-02/";
    for (const key of [`${prefix}run-a/part-00000.parquet`, `${prefix}_manifest.json`]) await putObject(bucket, key, readFileSync(join(lake, key)));
    const run = await profile(["--dataset", "service_requests", "--bucket", bucket, "--date", "2026-11-02"]);
    expect(run.exitCode).toBe(3);
    const p = JSON.parse(await getObjectText(bucket, `${prefix}_profile/profile.json`)) as ProfileDocument;
    expect(p).toMatchObject({ rows: 52, source: { store: `s3://${bucket}` }, columns: { status: expectedColumn(rows, "status") } });
    expect(await listKeys(bucket)).toEqual(
      [`${prefix}_manifest.json`, `${prefix}_profile/failures/between_priority.parquet`, `${prefix}_profile/failures/in_set_status.parquet`, `${prefix}_profile/failures/not_null_agency_name.parquet`,
        `${prefix}_profile/failures/unique_id.parquet`, `${prefix}_profile/profile.html`, `${prefix}_profile/profile.json`, `${prefix}run-a/part-00000.parquet`].sort(),
    );
  });

  test("a partition bronze_to_silver built: profiled, and its _profile/ survives a rebuild", async () => {
    const db = await createTestDatabase();
    try {
      await db.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true)`;
      const bronze = join(lake, "bronze/service_requests/dt=2026-11-04");
      mkdirSync(bronze, { recursive: true });
      const record = (id: number, status: string) => JSON.stringify({ id, agency_id: id % 2 ? 10 : 99, title: `r ${id}`, status, priority: 2, created_at: "2026-11-04T08:00:00Z", updated_at: "2026-11-04T09:00:00Z" });
      writeFileSync(join(bronze, "a.ndjson"), [1, 2, 3, 4].map((id) => record(id, "OPEN")).join("\n") + "\n");
      const build = (extra: string[] = []) => runCommand(["jobs/bronze_to_silver.ts"], ["--dataset", "service_requests", "--bucket", `file:${lake}`, "--date", "2026-11-04", ...extra], { DATABASE_URL: db.url });
      expect((await build()).exitCode).toBe(0);
      const run = await profile(["--dataset", "service_requests", "--bucket", `file:${lake}`, "--logical-date", "2026-11-04T02:00:00Z"]);
      // Agency 99 is unknown: half the rows have no agency_name, over the warn check's 5%.
      expect(run.exitCode).toBe(0);
      expect(run.summary!.counts).toMatchObject({ rows: 4, checksWarned: 1, failed: 0 });
      const profileKey = "silver/service_requests/dt=2026-11-04/_profile/profile.json";
      expect(profileAt(lake, profileKey).columns.status).toMatchObject({ topValues: [{ value: "open", count: 4 }], min: "open" });
      expect(profileAt(lake, profileKey).checks.find((c) => c.name === "schema")).toMatchObject({ status: "passed" });

      const rebuilt = await build(["--rebuild"]);
      expect(rebuilt.exitCode).toBe(0);
      expect(existsSync(join(lake, profileKey))).toBe(true);
      expect(readdirSync(join(lake, "silver/service_requests/dt=2026-11-04")).sort()).toEqual([String(rebuilt.summary!.runId), "_manifest.json", "_profile"].sort());
    } finally {
      await db.drop();
    }
  });
});

describe.each(LAKE_KINDS)("profile_dataset on a %s lake", (kind) => {
  let target: Lake;
  beforeEach(async () => {
    target = await createLake(kind);
  });
  afterEach(() => target.dispose());

  const run = (argv: string[]) => profile(["--bucket", target.arg, ...argv]);
  const profileIn = async (key: string): Promise<ProfileDocument> => JSON.parse(await target.readText(key));
  /** A committed partition, written beside the test (writePartition) and put into the lake. */
  const partition = async (date: string, rows: readonly Row[]) => {
    await writePartition(lake, "service_requests", date, rows, SILVER_TYPES);
    const prefix = `silver/service_requests/dt=${date}/`;
    for (const key of [`${prefix}run-a/part-00000.parquet`, `${prefix}_manifest.json`]) await target.write(key, readFileSync(join(lake, key)));
  };

  test("diffs against the newest earlier partition's profile; a check that passes again loses its failures file", async () => {
    const day = (date: string, nullEvery: number, rows = 1000) => partition(date, serviceRequests(rows, (i, r) => ({ ...r, status: "open", priority: i % nullEvery === 0 ? null : 2 })).slice(0, rows));
    await day("2026-10-30", 2);
    await day("2026-11-01", 500);
    await day("2026-11-05", 2);
    for (const date of ["2026-10-30", "2026-11-01", "2026-11-05"]) await run(["--dataset", "service_requests", "--date", date]);
    // Priority is null on 0.2% of the rows of the 1st, then on 31% on the 3rd (the 5th is later, the 30th older).
    const cut = (i: number, r: Row) => ({ ...r, status: "open", priority: i % 100 < 31 ? null : 2 });
    await partition("2026-11-03", serviceRequests(1300, cut).slice(0, 1300));
    const third = await run(["--dataset", "service_requests", "--date", "2026-11-03"]);
    const p = await profileIn("silver/service_requests/dt=2026-11-03/_profile/profile.json");
    expect(p.diff.against).toMatchObject({ partition: "2026-11-01", key: "silver/service_requests/dt=2026-11-01/_profile/profile.json" });
    // The 3rd's newest update is 49 h before its day's end.
    expect(p.diff.changes.map((c) => c.message)).toEqual(["rows 1000 -> 1300", "null % of priority 0.20% -> 31.0%", "check freshness_updated_at passed -> warned"]);
    expect(third.summary!.counts).toMatchObject({ diffChanges: 3 });
    expect(third.events.find((e) => e.event === "profile.diff")).toMatchObject({ changes: p.diff.changes.map((c) => c.message) });

    // Rebuilt with priorities out of range, then back: the between_priority failures file comes, then goes.
    const failures = "silver/service_requests/dt=2026-11-03/_profile/failures/";
    expect(await target.keys(`${failures}between_priority`)).toEqual([]);
    await partition("2026-11-03", serviceRequests(1300, (i, r) => ({ ...r, status: "open", priority: i % 2 ? 0 : 2 })).slice(0, 1300));
    await run(["--dataset", "service_requests", "--date", "2026-11-03"]);
    expect(await target.keys(`${failures}between_priority`)).toEqual([`${failures}between_priority.parquet`]);
    await partition("2026-11-03", serviceRequests(1300, cut).slice(0, 1300));
    await run(["--dataset", "service_requests", "--date", "2026-11-03"]);
    expect(await target.keys(failures)).toEqual([`${failures}not_null_agency_name.parquet`]);
  });

  test("raw partner CSV under a prefix against its dataset: text read as the declared types, misfits counted, silver-only checks skipped", async () => {
    await target.write("inbox/acme/p.csv", [
      "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at",
      "P-1,ACME,10,12.50,EUR,2026-11-02,,2026-11-03T01:00:00Z",
      "P-2,acme,10,abc,EUR,2026-11-02, ,2026-11-03T01:00:00Z",
      "P-1,acme,ten,-3,JPY,2026-11-31,x@y.org,2026-11-03T02:00:00Z",
    ].join("\n") + "\n");
    await target.write("inbox/acme/_notes.csv", "not,data\n");
    const raw = await run(["--prefix", "inbox/acme/", "--dataset", "partner_payments", "--logical-date", "2026-11-03T12:00:00Z"]);
    expect(raw.exitCode).toBe(3);
    const p = await profileIn("inbox/acme/_profile/profile.json");
    expect(p).toMatchObject({ dataset: "partner_payments", partition: null, rows: 3, source: { store: target.url, format: "csv", files: ["inbox/acme/p.csv"] } });
    expect(p.columns.agency_id).toMatchObject({ type: "VARCHAR read as integer", notFit: 1, min: 10, max: 10 });
    expect(p.columns.amount).toMatchObject({ notFit: 1, min: -3, max: 12.5, negatives: 1 });
    expect(p.columns.paid_on).toMatchObject({ notFit: 1 });
    expect(p.columns.payer_email).toMatchObject({ nulls: 1, empty: 1 });
    expect(Object.fromEntries(p.checks.map((c) => [c.name, c.status]))).toMatchObject({
      schema: "passed", in_set_currency: "failed", between_amount: "warned", not_null_agency_name: "skipped", freshness_reported_at: "passed", unique_partner_payment_id: "passed",
    });
    expect(p.duplicates.keys).toMatchObject({ columns: ["partner", "payment_id"], duplicatedKeys: 0 });
    expect(raw.summary!.counts).toMatchObject({ rows: 3, checks: 7, failed: 1 });
  });
});

describe("profile_dataset on files under a prefix", () => {
  test("NDJSON without a dataset: DuckDB's detected types; a later value that breaks them profiles every column as text", async () => {
    mkdirSync(join(lake, "feed"), { recursive: true });
    // DuckDB detects types from the first 20,480 rows.
    const lines = Array.from({ length: 21_000 }, (_, i) => JSON.stringify({ n: i % 100, s: i % 2 ? "a" : null }));
    writeFileSync(join(lake, "feed/a.ndjson"), lines.join("\n") + "\n");
    const typed = await profile(["--bucket", `file:${lake}`, "--prefix", "feed/", "--out-prefix", "reports/feed/"]);
    expect(typed.exitCode).toBe(0);
    expect(profileAt(lake, "reports/feed/profile.json").columns.n).toMatchObject({ type: "BIGINT", min: 0, max: 99, distinct: 100, zeros: 210, count: 21_000 });
    // n's parity decides s: 100 distinct rows.
    expect(profileAt(lake, "reports/feed/profile.json").duplicates).toEqual({ rows: 21_000 - 100, keys: null });

    writeFileSync(join(lake, "feed/a.ndjson"), [...lines, JSON.stringify({ n: "many", s: "b" })].join("\n") + "\n");
    const text = await profile(["--bucket", `file:${lake}`, "--prefix", "feed/", "--out-prefix", "reports/feed/"]);
    expect(text.exitCode).toBe(0);
    expect(text.events.some((e) => e.level === "warn" && String(e.msg).includes("every column profiled as text"))).toBe(true);
    const p = profileAt(lake, "reports/feed/profile.json");
    expect(p.columns.n).toMatchObject({ type: "VARCHAR", distinct: 101, max: "many" });
    expect(p.diff.changes.map((c) => c.message)).toContain("type of n BIGINT -> VARCHAR");
  });

  test("a wide table: 300 columns profile in batches and the page stays small", async () => {
    const columns = Array.from({ length: 300 }, (_, c) => `(range * ${c + 1}) % 97 as c${c}`).join(", ");
    mkdirSync(join(lake, "wide"), { recursive: true });
    await sql(`copy (select ${columns}, 'value ' || range as label from range(2000)) to '${join(lake, "wide/w.parquet")}' (format parquet)`);
    const run = await profile(["--bucket", `file:${lake}`, "--prefix", "wide/"]);
    expect(run.exitCode).toBe(0);
    const p = profileAt(lake, "wide/_profile/profile.json");
    expect(Object.keys(p.columns)).toHaveLength(301);
    expect(p.columns.c299).toMatchObject({ distinct: 97, distinctExact: true, min: 0, max: 96 });
    expect(p.columns.label).toMatchObject({ distinct: 2000, topValues: [] });
    const html = readFileSync(join(lake, "wide/_profile/profile.html"));
    expect(html.length).toBeLessThan(400_000);
  });

  test("a column of many values: counted exactly up to --exact-distinct-up-to, estimated above; its frequent values still counted exactly", async () => {
    mkdirSync(join(lake, "many"), { recursive: true });
    // 15,000 rows: "common" on 500, "often" on 300, every other value once.
    await sql(`copy (select case when range < 500 then 'common' when range < 800 then 'often' else 'v' || range end as v from range(15000)) to '${join(lake, "many/m.parquet")}' (format parquet)`);
    expect((await profile(["--bucket", `file:${lake}`, "--prefix", "many/"])).exitCode).toBe(0);
    const top = [{ value: "common", count: 500 }, { value: "often", count: 300 }];
    expect(profileAt(lake, "many/_profile/profile.json").columns.v).toMatchObject({ distinct: 14_202, distinctExact: true, topValues: top });
    expect((await profile(["--bucket", `file:${lake}`, "--prefix", "many/", "--exact-distinct-up-to", "1000"])).exitCode).toBe(0);
    const estimated = profileAt(lake, "many/_profile/profile.json").columns.v!;
    expect(estimated).toMatchObject({ distinctExact: false, topValues: top });
    expect(Math.abs(estimated.distinct - 14_202) / 14_202).toBeLessThan(0.35);
  });
});

describe("the declared checks", () => {
  const dir = () => join(lake, "files");
  // ids 1..100; code A on 1-90, B on 91-99, null on 100; amount i - 5; e-mail shape broken on 96-100; ts 00:01..01:40.
  const rows: Row[] = Array.from({ length: 100 }, (_, k) => {
    const i = k + 1;
    return { id: i, code: i <= 90 ? "A" : i < 100 ? "B" : null, amount: i - 5, email: i <= 95 ? `x${i}@e.com` : "bad", ts: new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString() };
  });
  const columns = { id: "BIGINT", code: "VARCHAR", amount: "BIGINT", email: "VARCHAR", ts: "TIMESTAMPTZ" };

  async function evaluate(checks: DatasetCheck[], declared: Record<string, { type: "string" | "integer" | "timestamp" }> = { id: { type: "integer" }, code: { type: "string" }, amount: { type: "integer" }, email: { type: "string" }, ts: { type: "timestamp" } }) {
    const dataset = defineDataset({ name: "checked", description: "test", format: "csv", columns: Object.fromEntries(Object.entries(declared).map(([n, s]) => [n, { ...s, required: n === "id", description: n }])), primaryKey: ["id"], versionColumn: "id", checks });
    await writeParquet(join(dir(), "data/rows.parquet"), rows, columns);
    const store = new FileStore(dir());
    const metrics = new Metrics();
    const counts: Record<string, number> = {};
    await runProfile({
      store, dataset, inputs: await prefixInputs(store, "data/", "out/"), previousProfileKey: undefined, referenceTime: new Date("2026-11-01T03:00:00Z"),
      sampleRows: 3, topValues: 10, exactDistinctUpTo: 1000, runId: "r", dryRun: false, log: createLogger({ format: "json", level: "error", write: () => {} }), metrics, counts,
      openDuckDB: (tempDirectory) => openDuckDB({ tempDirectory, threads: 1 }),
    });
    return { p: profileAt(dir(), "out/profile.json"), counts, gauges: metrics.gauges() };
  }

  test("each kind passes or fails by its count, mostly and severity; a failing row check keeps a sample by key and writes every failing row", async () => {
    const { p, counts, gauges } = await evaluate([
      { name: "code_set", kind: "not_null", column: "code" },
      { name: "code_mostly_set", kind: "not_null", column: "code", mostly: 0.99, severity: "warn" },
      { name: "code_a", kind: "in_set", column: "code", values: ["A"], severity: "warn" },
      { name: "code_a_or_b", kind: "in_set", column: "code", values: ["A", "B"] },
      { name: "code_mostly_a", kind: "in_set", column: "code", values: ["A"], mostly: 0.9 },
      { name: "email_shape", kind: "regex", column: "email", pattern: "^x[0-9]+@e\\.com$" },
      { name: "email_mostly_shaped", kind: "regex", column: "email", pattern: "^x[0-9]+@e\\.com$", mostly: 0.95 },
      { name: "amount_positive", kind: "between", column: "amount", min: 0, severity: "warn" },
      { name: "amount_range", kind: "between", column: "amount", min: -10, max: 200 },
      { name: "ts_in_day", kind: "between", column: "ts", min: "2026-11-01T00:00:00Z", max: "2026-11-01T01:00:00Z", severity: "warn" },
      { name: "code_unique", kind: "unique", column: "code" },
      { name: "id_unique", kind: "unique", column: "id" },
      { name: "id_code_unique", kind: "unique", columns: ["id", "code"] },
      { name: "small", kind: "row_count_between", min: 1, max: 50 },
      { name: "hundred", kind: "row_count_between", min: 100, max: 100 },
      { name: "fresh_hour", kind: "freshness", column: "ts", maxAgeHours: 1, severity: "warn" },
      { name: "fresh_two_hours", kind: "freshness", column: "ts", maxAgeHours: 2 },
      { kind: "schema" },
    ]);
    const outcome = Object.fromEntries(p.checks.map((c) => [c.name, [c.status, c.failing, c.evaluated]]));
    expect(outcome).toEqual({
      code_set: ["failed", 1, 100],
      code_mostly_set: ["passed", 1, 100],
      code_a: ["warned", 9, 99],
      code_a_or_b: ["passed", 0, 99],
      code_mostly_a: ["passed", 9, 99],
      email_shape: ["failed", 5, 100],
      email_mostly_shaped: ["passed", 5, 100],
      amount_positive: ["warned", 4, 100],
      amount_range: ["passed", 0, 100],
      ts_in_day: ["warned", 40, 100],
      code_unique: ["failed", 99, 99],
      id_unique: ["passed", 0, 100],
      id_code_unique: ["passed", 0, 99],
      small: ["failed", 1, 1],
      hundred: ["passed", 0, 1],
      fresh_hour: ["warned", 1, 1],
      fresh_two_hours: ["passed", 0, 1],
      schema: ["passed", 0, 5],
    });
    const byName = Object.fromEntries(p.checks.map((c) => [c.name, c]));
    expect(byName.email_shape!.sample).toEqual([96, 97, 98].map((id) => ({ id: String(id), email: "bad" })));
    expect(byName.amount_positive!.detail).toBe("4 of 100 values are outside [0, ∞]; 96% pass, 100% must");
    expect(byName.fresh_hour!.detail).toContain("newest ts 2026-11-01T01:40:00.000Z, 1.3 h before 2026-11-01T03:00:00.000Z");
    expect(await sql(`select list(id order by id)::varchar as ids from '${join(dir(), byName.amount_positive!.failuresKey!)}'`)).toEqual([{ ids: "[1, 2, 3, 4]" }]);
    // Passing checks and table checks write no failures file.
    expect(readdirSync(join(dir(), "out/failures")).sort()).toEqual(["amount_positive.parquet", "code_a.parquet", "code_set.parquet", "code_unique.parquet", "email_shape.parquet", "ts_in_day.parquet"]);
    expect(counts).toMatchObject({ checks: 18, checksWarned: 4, failed: 4 });
    const gauge = (name: string, check: string) => gauges.find((g) => g.name === name && g.labels.check === check)?.value;
    expect([gauge("etl_profile_check_failed", "code_set"), gauge("etl_profile_check_failed", "code_mostly_set"), gauge("etl_profile_check_passing_ratio", "code_a")]).toEqual([1, 0, 90 / 99]);
  });

  test("schema: a missing column, an undeclared one and a type other than declared", async () => {
    const { p } = await evaluate([{ kind: "schema" }, { kind: "schema", name: "schema_loose", allowExtraColumns: true, severity: "warn" }], {
      id: { type: "integer" }, code: { type: "string" }, amount: { type: "string" }, email: { type: "string" }, gone: { type: "string" },
    });
    expect(p.checks.map((c) => [c.name, c.status, c.detail])).toEqual([
      ["schema", "failed", "missing gone; not declared: ts; amount is BIGINT, declared VARCHAR"],
      ["schema_loose", "warned", "missing gone; amount is BIGINT, declared VARCHAR"],
    ]);
  });

  test("a dataset file with a broken check does not load", () => {
    const base = { name: "broken", description: "d", format: "csv" as const, columns: { id: { type: "integer" as const, required: true, description: "id" } }, primaryKey: ["id"], versionColumn: "id" };
    const problems: Array<[DatasetCheck[], string]> = [
      [[{ kind: "not_null", column: "nope" }], 'check not_null_nope: "nope" is not a column'],
      [[{ kind: "not_null", column: "id" }, { kind: "not_null", column: "id" }], "check not_null_id: another check has this name"],
      [[{ kind: "in_set", column: "id", values: [], mostly: 1.5 }], "check in_set_id: mostly must be above 0 and at most 1; check in_set_id: values is empty"],
      [[{ kind: "regex", column: "id", pattern: "(" }], "check regex_id: pattern does not compile"],
      [[{ kind: "between", column: "id" }, { kind: "row_count_between", min: 5, max: 1 }], "check between_id: give min, max or both; check row_count_between: min is above max"],
      [[{ kind: "freshness", column: "id", maxAgeHours: 0 }], 'check freshness_id: "id" is an integer, not a timestamp or date; check freshness_id: maxAgeHours must be above 0'],
      [[{ kind: "schema", name: "Bad Name", severity: "fatal" as "error" }], "check Bad Name: its name must be snake_case; check Bad Name: severity must be warn or error"],
    ];
    for (const [checks, message] of problems) expect(() => defineDataset({ ...base, checks })).toThrow(message);
  });
});

describe("profile_dataset's flags and failures", () => {
  test("bad flags exit 2 naming the flag; a partition that was never built exits 2 naming its manifest; a dry run writes nothing", async () => {
    const cases: Array<[string[], string]> = [
      [["--bucket", `file:${lake}`], "give --dataset D (its silver partition is profiled) or --prefix P"],
      [["--bucket", `file:${lake}`, "--dataset", "service_requests"], "--date YYYY-MM-DD or --logical-date"],
      [["--bucket", `file:${lake}`, "--prefix", "x/", "--date", "2026-11-01"], "--date names a dataset's partition"],
      [["--bucket", `file:${lake}`, "--dataset", "service_requests", "--date", "2026-11-01", "--out-prefix", "o/"], "--out-prefix applies with --prefix"],
      [["--bucket", `file:${lake}`, "--dataset", "nope", "--date", "2026-11-01"], "known datasets: partner_payments, service_requests"],
      [["--bucket", `file:${lake}`, "--prefix", "x"], "--prefix"],
      [["--bucket", `file:${lake}`, "--dataset", "service_requests", "--date", "2026-02-30"], "--date must be a date YYYY-MM-DD that exists"],
      [["--bucket", `file:${lake}`, "--prefix", "x/", "--top-values", "0"], "--top-values must be at least 1"],
    ];
    const runs = await Promise.all(cases.map(([argv]) => profile(argv)));
    for (const [i, [, message]] of cases.entries()) {
      expect({ argv: cases[i]![0], exitCode: runs[i]!.exitCode }).toEqual({ argv: cases[i]![0], exitCode: 2 });
      expect(runs[i]!.summary!.error).toContain(message);
      expect(runs[i]!.stderr).not.toContain("    at ");
    }

    mkdirSync(join(lake, "mixed"), { recursive: true });
    writeFileSync(join(lake, "mixed/a.csv"), "a\n1\n");
    writeFileSync(join(lake, "mixed/b.ndjson"), '{"a":1}\n');
    const mixed = await profile(["--bucket", `file:${lake}`, "--prefix", "mixed/"]);
    expect([mixed.exitCode, mixed.summary!.error]).toEqual([2, "--prefix mixed/: the files are of several formats (1 csv, 1 ndjson); profile one format at a time with a narrower --prefix"]);

    const missing = await profile(["--bucket", `file:${lake}`, "--dataset", "service_requests", "--date", "2026-11-09"]);
    expect(missing.exitCode).toBe(2);
    expect(missing.summary!.error).toContain(`silver/service_requests/dt=2026-11-09/_manifest.json does not exist`);

    await writePartition(lake, "service_requests", "2026-11-09", serviceRequests(20), SILVER_TYPES);
    const dry = await profile(["--bucket", `file:${lake}`, "--dataset", "service_requests", "--date", "2026-11-09", "--dry-run"]);
    expect(dry.summary!.counts).toMatchObject({ rows: 22, failed: 1 });
    expect(existsSync(join(lake, "silver/service_requests/dt=2026-11-09/_profile"))).toBe(false);
  });
});
