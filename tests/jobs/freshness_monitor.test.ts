import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createLogger } from "../../core/log";
import { Metrics } from "../../core/metrics/metrics";
import { loadMigrations, migrate } from "../../core/db/migrate";
import { parseLocation } from "../../core/storage/object_store";
import { ObjectStores } from "../../core/storage/object_stores";
import { discoverJobs } from "../../core/runtime/registry";
import { datasetNames } from "../../processors/datasets/index";
import { checkFreshness } from "../../processors/observability/freshness/check";
import { declaredBucketOpener } from "../../processors/observability/freshness/probe";
import { FRESHNESS_SOURCES, declarationProblems, type FreshnessSource } from "../../processors/observability/freshness/sources";
import { freshnessStatus, parseThreshold } from "../../processors/observability/freshness/status";
import { FreshnessRepository } from "../../repositories/freshness";
import { createBucket, createTestDatabase, putObject, runCommand, type TestDatabase } from "../harness/fixtures";
import { createLake } from "../harness/lakes";
import { scrape, startPushgateway, valueOf, type PushgatewayServer } from "../harness/pushgateway_server";

const HOUR = 3600;
let db: TestDatabase;
let dir: string;
let gateway: PushgatewayServer;

beforeAll(async () => {
  gateway = await startPushgateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
  await db.sql`insert into agency (id, name) values (10, 'Harbour Agency')`;
  dir = mkdtempSync(join(tmpdir(), "etl-freshness-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

const hoursAgo = (hours: number) => new Date(Date.now() - hours * HOUR * 1000);

function writeFile(root: string, key: string, content: string, modifiedHoursAgo = 0): void {
  const path = join(root, key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  const at = hoursAgo(modifiedHoursAgo);
  utimesSync(path, at, at);
}

async function seedPartition(dataset: string, date: string, committedHoursAgo: number): Promise<void> {
  await db.sql`
    insert into etl_partitions (dataset, partition_date, fingerprint, inputs, rows_in, rows_out, rows_rejected, run_id, manifest_key, committed_at)
    values (${dataset}, ${date}, 'f', '[]', 1, 1, 0, ${crypto.randomUUID()}, ${`silver/${dataset}/dt=${date}/_manifest.json`}, ${hoursAgo(committedHoursAgo)})`;
}

async function seedRun(job: string, status: string, finishedHoursAgo: number, dryRun = false, slot: { logicalDate?: string; shard?: string } = {}): Promise<string> {
  const runId = crypto.randomUUID();
  const finished = hoursAgo(finishedHoursAgo);
  await db.sql`
    insert into etl_job_runs (run_id, job, lane, status, exit_code, args_hash, dry_run, host, version, started_at, heartbeat_at, finished_at, logical_date, shard)
    values (${runId}, ${job}, 'data_pipeline', ${status}, 0, 'h', ${dryRun}, 'test', 'test', ${finished}, ${finished}, ${finished}, ${slot.logicalDate ?? null}, ${slot.shard ?? null})`;
  return runId;
}

async function seedUpload(id: number, createdHoursAgo: number): Promise<void> {
  await db.sql`insert into attachment (id, agency_id, s3_key, file_name, created_at) values (${id}, 10, ${`k${id}`}, 'f', ${hoursAgo(createdHoursAgo)})`;
}

/** Runs the processor over `sources`, as the job wires it, with a log and metrics of its own. */
async function check(sources: FreshnessSource[], options: { now?: () => Date } = {}) {
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "debug", write: (line) => lines.push(line) });
  const metrics = new Metrics();
  const stores = new ObjectStores({ s3Endpoint: process.env.S3_ENDPOINT, awsRegion: "us-east-1" });
  const signal = new AbortController().signal;
  try {
    const freshness = new FreshnessRepository(db.sql, sources.flatMap((s) => (s.kind === "table" ? [{ table: s.table, column: s.column }] : [])));
    const counts = await checkFreshness({ sources, probe: { freshness, openStore: declaredBucketOpener(new Map(), (l) => stores.open(l)), signal }, log, metrics, signal, now: options.now });
    const events = lines.map((l) => JSON.parse(l) as Record<string, any>);
    const byName = Object.fromEntries(events.filter((e) => e.event === "freshness.source").map((e) => [e.name, e]));
    return { counts, events, byName, result: events.find((e) => e.event === "freshness.result")!, gauges: metrics.gauges() };
  } finally {
    await stores.close();
  }
}

const thresholds = { warnAfter: "2h", errorAfter: "6h" };

test("thresholds are dbt's criteria; a lag strictly over one is stale; never loaded is a status of its own", () => {
  expect(parseThreshold("26h")).toEqual({ count: 26, period: "hour" });
  expect(parseThreshold("90m")).toEqual({ count: 90, period: "minute" });
  expect(parseThreshold("2d")).toEqual({ count: 2, period: "day" });
  for (const bad of ["0h", "26", "1w", "h", " 2h", "1.5h"]) expect(() => parseThreshold(bad)).toThrow(`"${bad}" is not a duration`);
  const criteria = { warn_after: parseThreshold("2h"), error_after: parseThreshold("6h") };
  expect(freshnessStatus(2 * HOUR, criteria)).toBe("pass");
  expect(freshnessStatus(2 * HOUR + 1, criteria)).toBe("warn");
  expect(freshnessStatus(6 * HOUR + 1, criteria)).toBe("error");
  expect(freshnessStatus(null, criteria)).toBe("never delivered");
});

test("the declared sources are well formed and name datasets and jobs that exist", () => {
  expect(declarationProblems(FRESHNESS_SOURCES)).toEqual([]);
  const jobs = discoverJobs().map((job) => job.name);
  for (const source of FRESHNESS_SOURCES) {
    if (source.kind === "job_success") expect(jobs).toContain(source.job);
    if (source.kind === "silver_partition") expect(datasetNames()).toContain(source.dataset);
  }
  // The check itself catches what a careless edit would ship.
  const broken = [
    { name: "Bad-Name", description: "", kind: "job_success", job: "ingest_api", warnAfter: "2h", errorAfter: "1h" },
    { name: "twice", description: "", kind: "table", table: "attachment; drop table agency", column: "created_at", warnAfter: "1h", errorAfter: "2x" },
    { name: "twice", description: "", kind: "s3_prefix", bucket: "Not A Bucket", prefix: "../x/", warnAfter: "1h", errorAfter: "2h" },
  ] as FreshnessSource[];
  expect(declarationProblems(broken)).toEqual([
    "source Bad-Name: name must be snake_case",
    "source Bad-Name: warnAfter 2h is longer than errorAfter 1h",
    'source twice: "2x" is not a duration such as 90m, 26h or 2d',
    "source twice: table must be [schema.]name in lower case",
    "source twice: name is declared twice",
    "source twice: prefix has a \"..\" segment",
    expect.stringContaining("source twice: bucket"),
  ]);
});

describe("each kind at each level, by backdating its data", () => {
  test("job_success: the last succeeded run's finished_at, every shard of a logical date; failed and dry runs do not count", async () => {
    await seedRun("fresh_job", "succeeded", 1);
    await seedRun("late_job", "succeeded", 3);
    await seedRun("late_job", "failed", 0.1);
    await seedRun("late_job", "succeeded", 0.1, true);
    const stale = await seedRun("stale_job", "succeeded", 7);
    await seedRun("never_job", "partial", 0.5);
    // A sharded job is fresh when every shard of a logical date succeeded, as of the last of them:
    // tonight's two shards of three do not count, last night's three (the last 7 h ago) do.
    for (const shard of ["0/3", "2/3"]) await seedRun("half_job", "succeeded", 1, false, { logicalDate: "2026-11-23T02:00:00Z", shard });
    const lastNight = [];
    for (const [i, hours] of [[0, 9], [1, 7], [2, 8]] as const) lastNight.push(await seedRun("half_job", "succeeded", hours, false, { logicalDate: "2026-11-22T02:00:00Z", shard: `${i}/3` }));
    const lastShard = lastNight[1];
    const source = (name: string): FreshnessSource => ({ name, description: "", kind: "job_success", job: name, ...thresholds });
    const { byName, counts } = await check([source("fresh_job"), source("late_job"), source("stale_job"), source("never_job"), source("half_job")]);
    expect(byName.half_job).toMatchObject({ status: "error", detail: { runId: lastShard } });
    // A job that never succeeded has delivered nothing yet: a status of its own, which fails nothing.
    expect(byName.half_job.max_loaded_at_time_ago_in_s).toBeGreaterThan(7 * HOUR - 60);
    expect(byName.half_job.max_loaded_at_time_ago_in_s).toBeLessThan(7 * HOUR + 60);
    expect(byName.fresh_job.status).toBe("pass");
    expect(byName.late_job.status).toBe("warn");
    expect(byName.late_job.max_loaded_at_time_ago_in_s).toBeGreaterThan(3 * HOUR - 60);
    expect(byName.late_job.max_loaded_at_time_ago_in_s).toBeLessThan(3 * HOUR + 60);
    expect(byName.stale_job).toMatchObject({ status: "error", detail: { runId: stale } });
    expect(byName.never_job).toMatchObject({ status: "never delivered", max_loaded_at: null, max_loaded_at_time_ago_in_s: null, detail: { reason: "never_job never succeeded (etl_job_runs)" } });
    expect(counts).toEqual({ sources: 5, ok: 1, warn: 1, neverDelivered: 1, error: 2, runtimeError: 0, failed: 2 });
  });

  test("table: max(column) of a timestamptz column; a column of another type or a missing one is a runtime error", async () => {
    const uploads: FreshnessSource = { name: "uploads", description: "", kind: "table", table: "attachment", column: "created_at", ...thresholds };
    const sizes: FreshnessSource = { name: "sizes", description: "", kind: "table", table: "public.attachment", column: "size_bytes", ...thresholds };
    const nowhere: FreshnessSource = { name: "nowhere", description: "", kind: "table", table: "no_such_table", column: "created_at", ...thresholds };
    let { byName } = await check([uploads, sizes, nowhere]);
    expect(byName.uploads).toMatchObject({ status: "never delivered", max_loaded_at: null, detail: { reason: "attachment has no row" } });
    expect(byName.sizes).toMatchObject({ status: "runtime error", error: "public.attachment.size_bytes is bigint, not timestamp with time zone" });
    expect(byName.nowhere).toMatchObject({ status: "runtime error", error: "no column no_such_table.created_at in the database" });
    for (const [hours, status] of [[8, "error"], [4, "warn"], [0.5, "pass"]] as const) {
      await seedUpload(Math.round(hours * 10), hours);
      ({ byName } = await check([uploads]));
      expect(byName.uploads.status).toBe(status);
      expect(Date.parse(byName.uploads.max_loaded_at)).toBeCloseTo(hoursAgo(hours).getTime(), -4);
    }
  });

  test("the repository reads only declared columns, whatever it is asked", async () => {
    const repository = new FreshnessRepository(db.sql, [{ table: "attachment", column: "created_at" }]);
    await expect(repository.maxOfColumn("agency", "created_at")).rejects.toThrow("agency.created_at is not a declared freshness column");
    await expect(repository.maxOfColumn("attachment", 'created_at") from agency; --')).rejects.toThrow("is not a declared freshness column");
    expect(await repository.maxOfColumn("attachment", "created_at")).toBeNull();
  });

  test("silver_partition: etl_partitions' newest partition by date; without rows, the lake's newest _manifest.json", async () => {
    const lake = `file://${dir}`;
    const source = (dataset: string): FreshnessSource => ({ name: dataset, description: "", kind: "silver_partition", dataset, bucket: lake, ...thresholds });
    // The newest date decides, not the latest commit: a backfill rebuilding an old day is not fresh data.
    await seedPartition("from_db", "2026-11-02", 7);
    await seedPartition("from_db", "2026-10-01", 0.1);
    await seedPartition("warn_db", "2026-11-02", 3);
    const manifest = (dataset: string, date: string, hours: number) =>
      writeFile(dir, `silver/${dataset}/dt=${date}/_manifest.json`, JSON.stringify({ dataset, partition: date, committed_at: hoursAgo(hours).toISOString() }));
    manifest("from_lake", "2026-11-01", 0.5);
    manifest("from_lake", "2026-10-31", 0.1);
    writeFile(dir, "silver/from_lake/dt=2026-11-02/run/part-00000.parquet", "not committed: no manifest yet");
    manifest("stale_lake", "2026-11-01", 30);
    writeFile(dir, "silver/empty_lake/dt=2026-11-01/run/part-00000.parquet", "x");
    writeFile(dir, "silver/broken_lake/dt=2026-11-01/_manifest.json", "{}");
    const { byName, counts } = await check(["from_db", "warn_db", "from_lake", "stale_lake", "empty_lake", "broken_lake"].map(source));
    expect(byName.from_db).toMatchObject({ status: "error", detail: { partition: "2026-11-02", from: "etl_partitions" } });
    expect(byName.warn_db).toMatchObject({ status: "warn" });
    expect(byName.from_lake).toMatchObject({ status: "pass", detail: { partition: "2026-11-01", from: "_manifest.json", manifest: `${lake}/silver/from_lake/dt=2026-11-01/_manifest.json` } });
    expect(Math.abs(byName.from_lake.max_loaded_at_time_ago_in_s - 0.5 * HOUR)).toBeLessThan(60);
    expect(byName.stale_lake.status).toBe("error");
    expect(byName.empty_lake).toMatchObject({ status: "never delivered", max_loaded_at: null });
    expect(byName.broken_lake).toMatchObject({ status: "runtime error", error: `${lake}/silver/broken_lake/dt=2026-11-01/_manifest.json has no valid committed_at` });
    expect(counts).toMatchObject({ sources: 6, ok: 1, warn: 1, neverDelivered: 1, error: 2, runtimeError: 1, failed: 3 });
  });

  test("silver_partition is stale while bronze of the last days waits to be built: late files, and a day never built", async () => {
    const lake = `file://${dir}`;
    const source: FreshnessSource = { name: "ds", description: "", kind: "silver_partition", dataset: "ds", bucket: lake, ...thresholds };
    const day = (back: number) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10);
    const commit = (date: string, inputs: Array<{ key: string; size: number }>) =>
      writeFile(dir, `silver/ds/dt=${date}/_manifest.json`, JSON.stringify({ committed_at: hoursAgo(1).toISOString(), inputs: inputs.map((i) => ({ ...i, etag: "local" })) }));
    // Two days ago: built from both its files. Yesterday: one more file came after the build, 3 hours ago.
    writeFile(dir, `bronze/ds/dt=${day(2)}/a.ndjson`, "{}\n", 30);
    writeFile(dir, `bronze/ds/dt=${day(2)}/b.ndjson`, "{}\n", 29);
    writeFile(dir, `bronze/ds/dt=${day(2)}/_archive.x.json`, "{}", 29);
    commit(day(2), [{ key: `bronze/ds/dt=${day(2)}/a.ndjson`, size: 3 }, { key: `bronze/ds/dt=${day(2)}/b.ndjson`, size: 3 }]);
    writeFile(dir, `bronze/ds/dt=${day(1)}/a.ndjson`, "{}\n", 20);
    commit(day(1), [{ key: `bronze/ds/dt=${day(1)}/a.ndjson`, size: 3 }]);
    expect((await check([source])).byName.ds).toMatchObject({ status: "pass" });
    expect((await check([source])).byName.ds.unbuilt).toBeUndefined();
    writeFile(dir, `bronze/ds/dt=${day(1)}/late.ndjson`, "{}\n", 3);
    // The last commit is an hour old, yet silver lags its bronze by 3 hours: warn (2h), naming the partition.
    const late = await check([source]);
    expect(late.byName.ds).toMatchObject({ status: "warn", unbuilt: { partition: day(1), files: 1 } });
    expect(Math.abs(late.byName.ds.unbuilt.waiting_in_s - 3 * HOUR)).toBeLessThan(60);
    expect(late.gauges.find((g) => g.name === "etl_freshness_unbuilt_seconds")!.value).toBe(late.byName.ds.unbuilt.waiting_in_s);
    // A day with bronze and no partition at all, its first file 7 hours old: error.
    writeFile(dir, `bronze/ds/dt=${day(0)}/a.ndjson`, "{}\n", 7);
    expect((await check([source])).byName.ds).toMatchObject({ status: "error", unbuilt: { partition: day(0), files: 1 } });
  });

  test("an empty prefix is never delivered while its producer never succeeded, and an error once it has", async () => {
    const source: FreshnessSource = { name: "inbound", description: "", kind: "s3_prefix", bucket: `file://${dir}`, prefix: "in/", producedBy: "producer", ...thresholds };
    const before = await check([source]);
    expect(before.byName.inbound).toMatchObject({ status: "never delivered", detail: { objects: 0, reason: "producer never succeeded (etl_job_runs) and nothing is under the prefix yet" } });
    expect(before.counts).toMatchObject({ neverDelivered: 1, failed: 0 });
    await seedRun("producer", "succeeded", 1);
    expect((await check([source])).byName.inbound).toMatchObject({ status: "error", detail: { objects: 0 } });
  });

  test("silver_partition on S3 reads the manifest's committed_at (moto cannot backdate LastModified)", async () => {
    const bucket = await createBucket();
    await putObject(bucket, "silver/ds/dt=2026-11-01/_manifest.json", JSON.stringify({ committed_at: hoursAgo(4).toISOString() }));
    const { byName } = await check([{ name: "ds", description: "", kind: "silver_partition", dataset: "ds", bucket, ...thresholds }]);
    expect(byName.ds).toMatchObject({ status: "warn", detail: { partition: "2026-11-01", from: "_manifest.json" } });
  });

  test("s3_prefix on a directory: the newest file's mtime under the prefix, and nothing outside it", async () => {
    writeFile(dir, "in/a/old.csv", "x", 30);
    writeFile(dir, "in/b/c/newer.csv", "x", 3);
    writeFile(dir, "out/newest.csv", "x", 0);
    writeFile(dir, "fresh/x.csv", "x", 0.2);
    writeFile(dir, "in/_manifest.csv", "x", 8);
    const source = (name: string, prefix: string, bucket = `file://${dir}`): FreshnessSource => ({ name, description: "", kind: "s3_prefix", bucket, prefix, ...thresholds });
    const { byName } = await check([source("inbound", "in/"), source("manifests", "in/_manifest"), source("fresh", "fresh/"), source("empty", "none/"), source("gone", "", `file://${dir}/missing`)]);
    // A key-name prefix lists only the keys that start with it.
    expect(byName.manifests).toMatchObject({ status: "error", detail: { objects: 1 } });
    expect(byName.inbound).toMatchObject({ status: "warn", detail: { objects: 3 } });
    expect(Math.abs(byName.inbound.max_loaded_at_time_ago_in_s - 3 * HOUR)).toBeLessThan(60);
    expect(byName.fresh.status).toBe("pass");
    expect(byName.empty).toMatchObject({ status: "error", max_loaded_at: null, detail: { objects: 0 } });
    expect(byName.gone).toMatchObject({ status: "runtime error", error: `file://${dir}/missing does not exist` });
  });

  test("s3_prefix on S3 (moto): LastModified of the newest object, judged against a clock moved forward", async () => {
    const bucket = await createBucket();
    for (let i = 0; i < 5; i++) await putObject(bucket, `in/${i % 2}/f${i}.csv`, "x");
    await putObject(bucket, "other/late.csv", "x");
    const source: FreshnessSource = { name: "inbound", description: "", kind: "s3_prefix", bucket: `s3://${bucket}`, prefix: "in/", ...thresholds };
    const at = (hours: number) => () => new Date(Date.now() + hours * HOUR * 1000);
    expect((await check([source])).byName.inbound).toMatchObject({ status: "pass", detail: { objects: 5 } });
    expect((await check([source], { now: at(3) })).byName.inbound.status).toBe("warn");
    expect((await check([source], { now: at(7) })).byName.inbound.status).toBe("error");
    const missing = await check([{ ...source, bucket: "no-such-bucket-here" }]);
    expect(missing.byName.inbound).toMatchObject({ status: "runtime error", error: "s3://no-such-bucket-here does not exist" });
  });
});

test("on a terminal: one short line per source, and no result document repeating them", async () => {
  await seedRun("fresh_job", "succeeded", 1);
  const sources: FreshnessSource[] = [
    { name: "fresh_job", description: "", kind: "job_success", job: "fresh_job", warnAfter: "90m", errorAfter: "1d" },
    { name: "never", description: "", kind: "job_success", job: "never", ...thresholds },
    { name: "stale_job", description: "", kind: "job_success", job: "fresh_job", warnAfter: "10m", errorAfter: "30m" },
  ];
  const written: string[] = [];
  const log = createLogger({ format: "pretty", level: "info", write: (line) => written.push(line) });
  const signal = new AbortController().signal;
  const probe = { freshness: new FreshnessRepository(db.sql, []), openStore: declaredBucketOpener(new Map(), () => Promise.reject(new Error("no bucket here"))), signal };
  await checkFreshness({ sources, probe, log, metrics: new Metrics(), signal });
  // After the time: the level, no [job] tag (none is bound here), the line.
  const lines = written.map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").slice(13));
  expect(lines).toEqual([
    expect.stringMatching(/^INFO   fresh_job ok: last loaded (59m59s|1h0m) ago \(warn after 90m, error after 1d\)\n$/),
    "WARN   never never delivered: never never succeeded (etl_job_runs) (warn after 2h, error after 6h)\n",
    expect.stringMatching(/^ERROR  stale_job error: last loaded (59m59s|1h0m) ago \(warn after 10m, error after 30m\)\n$/),
  ]);
});

test("the result mirrors dbt's sources.json, and each source has its three gauges", async () => {
  await seedRun("fresh_job", "succeeded", 1);
  const sources: FreshnessSource[] = [
    { name: "fresh_job", description: "", kind: "job_success", job: "fresh_job", warnAfter: "90m", errorAfter: "1d" },
    { name: "never", description: "", kind: "job_success", job: "never", ...thresholds },
    { name: "broken", description: "", kind: "table", table: "attachment", column: "size_bytes", ...thresholds },
  ];
  const { result, gauges, events } = await check(sources);
  expect(result.elapsed_time).toBeGreaterThan(0);
  const [fresh, never, broken] = result.results;
  expect(Object.keys(fresh).sort()).toEqual(["criteria", "detail", "execution_time", "kind", "max_loaded_at", "max_loaded_at_time_ago_in_s", "name", "snapshotted_at", "status", "unique_id"]);
  expect(fresh).toMatchObject({
    unique_id: "source.etl.job_success.fresh_job",
    status: "pass",
    criteria: { warn_after: { count: 90, period: "minute" }, error_after: { count: 1, period: "day" } },
  });
  expect(Date.parse(fresh.snapshotted_at) - Date.parse(fresh.max_loaded_at)).toBeCloseTo(fresh.max_loaded_at_time_ago_in_s * 1000, -1);
  expect(never).toMatchObject({ status: "never delivered", max_loaded_at: null });
  expect(broken).toMatchObject({ status: "runtime error", error: expect.stringContaining("not timestamp with time zone") });
  // Levels: info when it passes, warn for a source that never delivered, error when it cannot be measured.
  expect(events.filter((e) => e.event === "freshness.source").map((e) => `${e.name} ${e.level}`)).toEqual(["fresh_job info", "never warn", "broken error"]);
  const gauge = (name: string, source: string) => gauges.find((g) => g.name === name && g.labels.source === source)!.value;
  expect(gauge("etl_freshness_status", "fresh_job")).toBe(0);
  expect(gauge("etl_freshness_lag_seconds", "fresh_job")).toBe(fresh.max_loaded_at_time_ago_in_s);
  expect(gauge("etl_freshness_max_loaded_at_timestamp_seconds", "fresh_job")).toBe(Date.parse(fresh.max_loaded_at) / 1000);
  expect([gauge("etl_freshness_status", "never"), gauge("etl_freshness_lag_seconds", "never"), gauge("etl_freshness_max_loaded_at_timestamp_seconds", "never")]).toEqual([3, Infinity, 0]);
  expect(gauge("etl_freshness_status", "broken")).toBe(2);
  expect(gauge("etl_freshness_lag_seconds", "broken")).toBeNaN();
});

describe("the job, with the declared sources", () => {
  const lake = () => join(dir, "lake");
  const archive = () => join(dir, "archive");
  const bucketMap = () => `etl-lake=file://${lake()},etl-attachments-archive=file://${archive()}`;
  const job = (argv: string[]) =>
    runCommand(["jobs/freshness_monitor.ts"], [`--bucket-map=${bucketMap()}`, ...argv], {
      DATABASE_URL: db.url,
      PUSHGATEWAY_URL: gateway.url,
    });

  /** What a healthy deployment leaves behind, every source fresh. */
  async function seedHealthy(): Promise<void> {
    await seedPartition("service_requests", "2026-11-02", 1);
    await seedPartition("partner_payments", "2026-11-02", 1);
    writeFile(lake(), "bronze/service_requests/dt=2026-11-02/run-1.ndjson.gz", "x", 0.5);
    writeFile(archive(), "agency_id=10/_manifest.csv", "x", 1);
    await seedUpload(1, 2);
    await seedRun("ingest_api", "succeeded", 0.5);
    await seedRun("get_s3_files", "succeeded", 1);
  }

  test("all fresh exits 0; one source at error exits 3 with failed counted; warnings alone exit 0; gauges in the Pushgateway", async () => {
    await seedHealthy();
    const ok = await job([]);
    expect(ok.exitCode).toBe(0);
    expect(ok.summary).toMatchObject({ status: "succeeded", counts: { sources: FRESHNESS_SOURCES.length, ok: FRESHNESS_SOURCES.length, warn: 0, error: 0, runtimeError: 0, failed: 0 } });
    const result = ok.events.find((e) => e.event === "freshness.result") as { results: Array<{ name: string }> };
    expect(result.results.map((r) => r.name)).toEqual(FRESHNESS_SOURCES.map((s) => s.name));
    let samples = await scrape(gateway);
    for (const source of FRESHNESS_SOURCES) expect(valueOf(samples, "etl_freshness_status", { job: "freshness_monitor", bucket_map: bucketMap(), source: source.name })).toBe(0);

    // ingest_api stops: its success is 3 hours old (warn), bronze's newest file 7 hours (error).
    await db.sql`update etl_job_runs set finished_at = now() - interval '3 hours' where job = 'ingest_api'`;
    utimesSync(join(lake(), "bronze/service_requests/dt=2026-11-02/run-1.ndjson.gz"), hoursAgo(7), hoursAgo(7));
    const stale = await job([]);
    expect(stale.exitCode).toBe(3);
    expect(stale.summary).toMatchObject({ status: "partial", counts: { ok: FRESHNESS_SOURCES.length - 2, warn: 1, error: 1, failed: 1 } });
    const line = stale.events.find((e) => e.event === "freshness.source" && e.name === "bronze_service_requests")!;
    expect(line).toMatchObject({ level: "error", status: "error", unique_id: "source.etl.s3_prefix.bronze_service_requests", description: "ingest_api pulls service_requests hourly at :15", criteria: { warn_after: { count: 2, period: "hour" }, error_after: { count: 6, period: "hour" } } });
    samples = await scrape(gateway);
    // A run reading the buckets from elsewhere (--bucket-map) pushes to a group of its own.
    const group = { job: "freshness_monitor", bucket_map: bucketMap() };
    expect(valueOf(samples, "etl_freshness_status", { ...group, source: "bronze_service_requests" })).toBe(2);
    expect(valueOf(samples, "etl_freshness_status", { ...group, source: "ingest_api_success" })).toBe(1);
    expect(Math.abs(valueOf(samples, "etl_freshness_lag_seconds", { ...group, source: "ingest_api_success" })! - 3 * HOUR)).toBeLessThan(60);
    expect(valueOf(samples, "etl_freshness_max_loaded_at_timestamp_seconds", { ...group, source: "bronze_service_requests" })).toBeCloseTo(hoursAgo(7).getTime() / 1000, -2);
    expect(valueOf(samples, "etl_job_exit_code", group)).toBe(3);

    // Warnings alone: exit 0.
    utimesSync(join(lake(), "bronze/service_requests/dt=2026-11-02/run-1.ndjson.gz"), new Date(), new Date());
    expect((await job([])).exitCode).toBe(0);
  });

  test("the declared buckets on S3 (moto): objects and manifests there are read; a prefix emptied out is an error, exit 3", async () => {
    const [lakeBucket, archiveBucket] = await Promise.all([createLake("s3"), createLake("s3")]);
    try {
      // partner_payments has no etl_partitions row: its freshness is the S3 lake's newest manifest.
      await seedPartition("service_requests", "2026-11-02", 1);
      await lakeBucket.write("silver/partner_payments/dt=2026-11-02/_manifest.json", JSON.stringify({ committed_at: hoursAgo(1).toISOString() }));
      await lakeBucket.write("bronze/service_requests/dt=2026-11-02/run-1.ndjson.gz", "x");
      await archiveBucket.write("agency_id=10/_manifest.csv", "x");
      await seedUpload(1, 2);
      await seedRun("ingest_api", "succeeded", 0.5);
      await seedRun("get_s3_files", "succeeded", 1);
      const onS3 = () => runCommand(["jobs/freshness_monitor.ts"], [`--bucket-map=etl-lake=${lakeBucket.arg},etl-attachments-archive=s3://${archiveBucket.arg}`], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });
      const ok = await onS3();
      expect(ok.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { ok: FRESHNESS_SOURCES.length, failed: 0 } });
      const source = (run: typeof ok, name: string) => run.events.find((e) => e.event === "freshness.source" && e.name === name);
      expect(source(ok, "silver_partner_payments")).toMatchObject({ status: "pass", detail: { from: "_manifest.json", manifest: `${lakeBucket.url}/silver/partner_payments/dt=2026-11-02/_manifest.json` } });

      await lakeBucket.remove("bronze/service_requests/dt=2026-11-02/run-1.ndjson.gz");
      const empty = await onS3();
      expect(empty.summary).toMatchObject({ status: "partial", exitCode: 3, counts: { error: 1, failed: 1 } });
      expect(source(empty, "bronze_service_requests")).toMatchObject({ status: "error", max_loaded_at: null, detail: { objects: 0 } });
    } finally {
      await Promise.all([lakeBucket.dispose(), archiveBucket.dispose()]);
    }
  });

  test("--source checks a subset, pushed to a group of its own that leaves the full check's gauges alone", async () => {
    await seedHealthy();
    expect((await job([])).exitCode).toBe(0);
    await db.sql`update etl_job_runs set finished_at = now() - interval '3 hours' where job = 'ingest_api'`;
    const subset = await job(["--source", "get_s3_files_success,ingest_api_success"]);
    expect(subset.exitCode).toBe(0);
    expect(subset.summary!.counts).toMatchObject({ sources: 2, ok: 1, warn: 1 });
    const samples = await scrape(gateway);
    const subsetGroup = { job: "freshness_monitor", bucket_map: bucketMap(), sources: "get_s3_files_success,ingest_api_success" };
    expect(valueOf(samples, "etl_freshness_status", { ...subsetGroup, source: "ingest_api_success" })).toBe(1);
    expect(valueOf(samples, "etl_freshness_status", { ...subsetGroup, source: "silver_service_requests" })).toBeUndefined();
    const fullGroup = (source: string) => samples.find((s) => s.name === "etl_freshness_status" && s.labels.source === source && s.labels.bucket_map === bucketMap() && s.labels.sources === undefined)?.value;
    expect(fullGroup("ingest_api_success")).toBe(0);
    expect(fullGroup("silver_service_requests")).toBe(0);
  });

  test("bad flags exit 2 naming the flag", async () => {
    const cases: Array<[string[], string]> = [
      [["--source", "nope"], "--source nope: no such source; declared: silver_service_requests"],
      [["--source", "Bad Name"], "--source must be source names separated by commas"],
      [["--bucket-map", "elsewhere=file:/tmp"], "--bucket-map elsewhere: no declared bucket of that name; they are etl-attachments-archive, etl-lake"],
      [["--bucket-map", "etl-lake"], '--bucket-map "etl-lake" must be <bucket>=<bucket or file:dir>'],
      [["--bucket-map", "etl-lake=file://host/x"], "--bucket-map etl-lake:"],
      [["--grace", "26h"], "--grace belongs to a completeness check"],
      [["--report-to", "file:/tmp"], "--report-to belongs to a completeness check"],
      [["--agency-id", "10"], "a completeness check needs --destination-bucket and one of --agency-id N or --all-agencies"],
      [["--agency-id", "10", "--destination-bucket", `file://${dir}`, "--source", "ingest_api_success"], "--source belongs to a freshness check of the sources"],
      [["--agency-id", "0"], "--agency-id must be at least 1"],
      [["--min-ratio", "1.5"], "--min-ratio must be at most 1"],
      [["--grace", "1 day"], "--grace must be a duration such as 90m, 26h or 2d"],
      [["--grace", "0h"], "--grace must be a duration such as 90m, 26h or 2d"],
      [["--grace", "99999999999999999999d"], "--grace must be a duration such as 90m, 26h or 2d"],
    ];
    for (const [argv, message] of cases) {
      const run = await runCommand(["jobs/freshness_monitor.ts"], argv, { DATABASE_URL: db.url });
      expect({ argv, exitCode: run.exitCode }).toEqual({ argv, exitCode: 2 });
      expect(run.summary!.error as string).toContain(message);
    }
  });
});
