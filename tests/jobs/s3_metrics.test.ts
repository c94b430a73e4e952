import { CreateMultipartUploadCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { FileStore } from "../../core/storage/file_store";
import { createLogger } from "../../core/log";
import { Metrics } from "../../core/metrics/metrics";
import type { ObjectStore } from "../../core/storage/object_store";
import { S3RequestError } from "../../core/storage/s3_request";
import { S3Store } from "../../core/storage/s3_store";
import { groupOf } from "../../processors/observability/s3/groups";
import { measureS3Prefix } from "../../processors/observability/s3/metrics";
import { createBucket, putObject, runCommand, s3 } from "../harness/fixtures";
import { find, scrape, startPushgateway, valueOf, type PushgatewayServer } from "../harness/pushgateway_server";

let gateway: PushgatewayServer;
let dir: string;

beforeAll(async () => {
  gateway = await startPushgateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "etl-s3-metrics-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Without a database: the job reads objects only.
const s3Metrics = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/s3_metrics.ts"], argv, { DATABASE_URL: "", PUSHGATEWAY_URL: gateway.url, ...env });

/** key -> size: a lake with objects at every depth, including directly under the prefixes. */
const LAKE: Record<string, number> = {
  "top.txt": 3,
  "bronze/readme.md": 10,
  "bronze/orders/dt=2026-01-01/a.csv": 100,
  "bronze/orders/dt=2026-01-02/b.csv": 200,
  "bronze/orders/dt=2026-01-02/c.csv": 300,
  "bronze/users/u.ndjson": 50,
  "silver/orders/dt=2026-01-01/_manifest.json": 7,
  "silver/orders/dt=2026-01-01/run/part-0.parquet": 1000,
};

interface Row {
  prefix: string;
  objects: number;
  bytes: number;
  newestObject: string | null;
  oldestObject: string | null;
  incompleteUploads?: number;
  oldestIncompleteUploadAgeSeconds?: number;
}

/** Runs the processor in-process (so a test can force the store's page size) and returns its table event and gauges. */
async function measure(store: ObjectStore, options: { prefix?: string; depth?: number; maxGroups?: number; concurrency?: number; now?: Date } = {}) {
  const metrics = new Metrics();
  const lines: string[] = [];
  const counts = await measureS3Prefix({
    store,
    bucketLabel: "lake",
    prefix: options.prefix ?? "",
    depth: options.depth ?? 1,
    concurrency: options.concurrency ?? 4,
    maxGroups: options.maxGroups ?? 1000,
    signal: new AbortController().signal,
    metrics,
    log: createLogger({ format: "json", level: "info", write: (line) => void lines.push(line) }),
    progress: { setTotal: () => {}, advance: () => {} },
    now: options.now,
  });
  const event = lines.map((l) => JSON.parse(l)).find((e) => e.event === "s3_metrics.groups");
  const rows: Record<string, Row> = Object.fromEntries((event.groups as Row[]).map((row) => [row.prefix, row]));
  const gauge = (name: string, prefix: string) => metrics.gauges().find((g) => g.name === name && g.labels.prefix === prefix)?.value;
  return { counts, event, rows, gauge, metrics, lines };
}

const objectsAndBytes = (rows: Record<string, Row>) => Object.fromEntries(Object.entries(rows).map(([prefix, r]) => [prefix, [r.objects, r.bytes]]));

async function seedBucket(keys: Record<string, number>): Promise<string> {
  const bucket = await createBucket();
  await Promise.all(Object.entries(keys).map(([key, size]) => putObject(bucket, key, "x".repeat(size))));
  return bucket;
}

function seedDirectory(root: string, keys: Record<string, number>, mtimes: Record<string, Date> = {}): void {
  for (const [key, size] of Object.entries(keys)) {
    mkdirSync(dirname(join(root, key)), { recursive: true });
    writeFileSync(join(root, key), "x".repeat(size));
    if (mtimes[key]) utimesSync(join(root, key), mtimes[key], mtimes[key]);
  }
}

test("groupOf: the prefix plus up to depth directory segments; shallower keys count in their own shallower group", () => {
  expect(groupOf("bronze/orders/dt=1/a.csv", "", 2)).toBe("bronze/orders/");
  expect(groupOf("bronze/readme.md", "", 2)).toBe("bronze/");
  expect(groupOf("top.txt", "", 2)).toBe("");
  expect(groupOf("bronze/orders/dt=1/a.csv", "bronze/", 1)).toBe("bronze/orders/");
  expect(groupOf("bronze/readme.md", "bronze/", 1)).toBe("bronze/");
  expect(groupOf("bronze/orders/dt=1/a.csv", "bronze/", 0)).toBe("bronze/");
  expect(groupOf("a//b/c", "", 2)).toBe("a//");
});

describe("on S3 (moto), pages of two keys", () => {
  test("counts objects and bytes per group at each depth, the same whether sub-prefixes are listed in parallel or as one stream", async () => {
    const bucket = await seedBucket(LAKE);
    const store = new S3Store(bucket, s3(), { listPageSize: 2 });

    const depth2 = await measure(store, { depth: 2 });
    expect(objectsAndBytes(depth2.rows)).toEqual({
      "": [1, 3],
      "bronze/": [1, 10],
      "bronze/orders/": [3, 600],
      "bronze/users/": [1, 50],
      "silver/orders/": [2, 1007],
    });
    expect(depth2.counts).toEqual({ objects: 8, bytes: 1670, groups: 5, incompleteUploads: 0 });
    // Walked down two levels, then listed the second level's three prefixes side by side.
    expect(depth2.event.listedPrefixes).toBe(3);

    // One stream (a store without delimiter listings) gives the same table.
    const sequential = Object.assign(Object.create(store), { listLevel: undefined }) as ObjectStore;
    const oneStream = await measure(sequential, { depth: 2 });
    expect(oneStream.event.listedPrefixes).toBe(1);
    expect(oneStream.rows).toEqual(depth2.rows);

    const underBronze = await measure(store, { prefix: "bronze/", depth: 1 });
    expect(objectsAndBytes(underBronze.rows)).toEqual({ "bronze/": [1, 10], "bronze/orders/": [3, 600], "bronze/users/": [1, 50] });
    expect(objectsAndBytes((await measure(store, { prefix: "bronze/", depth: 0 })).rows)).toEqual({ "bronze/": [5, 660] });
    expect(objectsAndBytes((await measure(store, { prefix: "nothing/", depth: 3 })).rows)).toEqual({ "nothing/": [0, 0] });
  });

  test("past --max-groups, objects count in (other) and the totals stay whole", async () => {
    const bucket = await seedBucket(LAKE);
    const store = new S3Store(bucket, s3(), { listPageSize: 2 });
    // One listing at a time, so the groups are met in key order.
    const capped = await measure(store, { depth: 2, maxGroups: 3, concurrency: 1 });
    // The first level's two prefixes fit in three groups, the second level's three do not:
    // bronze/ and silver/ are listed in full.
    expect(capped.event.listedPrefixes).toBe(2);
    expect(objectsAndBytes(capped.rows)).toEqual({ "": [1, 3], "bronze/": [1, 10], "bronze/orders/": [3, 600], "(other)": [3, 1057] });
    expect(capped.counts).toMatchObject({ objects: 8, bytes: 1670, groups: 4 });
    expect(capped.event.note).toContain("--max-groups 3");

    // No level fits in one group: one stream, whose first key is bronze/orders/'s.
    const one = await measure(store, { depth: 2, maxGroups: 1 });
    expect(one.event.listedPrefixes).toBe(1);
    expect(objectsAndBytes(one.rows)).toEqual({ "bronze/orders/": [3, 600], "(other)": [5, 1070] });
  });

  test("newest and oldest LastModified per group, as S3 reports them", async () => {
    const bucket = await createBucket();
    const before = Math.floor(Date.now() / 1000);
    await putObject(bucket, "logs/old.txt", "old");
    await Bun.sleep(1100); // S3's LastModified has whole seconds
    await putObject(bucket, "logs/new.txt", "new");
    const after = Math.ceil(Date.now() / 1000);
    const { rows, gauge } = await measure(new S3Store(bucket, s3(), { listPageSize: 1 }));
    const newest = gauge("etl_s3_newest_object_timestamp_seconds", "logs/")!;
    const oldest = gauge("etl_s3_oldest_object_timestamp_seconds", "logs/")!;
    expect(oldest).toBeGreaterThanOrEqual(before);
    expect(newest).toBeLessThanOrEqual(after);
    expect(newest - oldest).toBeGreaterThanOrEqual(1);
    expect(rows["logs/"]!.newestObject).toBe(new Date(newest * 1000).toISOString());
  });

  test("multipart uploads left open are counted per group with the age of the oldest", async () => {
    const bucket = await seedBucket({ "bronze/orders/a.csv": 5, "bronze/users/u.ndjson": 5 });
    for (const key of ["bronze/orders/big-1.bin", "bronze/orders/big-2.bin", "staging/tmp/upload.bin"]) {
      await s3().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    }
    const listed = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    const initiated = (key: string) => listed.Uploads!.find((u) => u.Key === key)!.Initiated!.getTime();
    const now = new Date();
    const { rows, counts, gauge } = await measure(new S3Store(bucket, s3(), { listPageSize: 1 }), { depth: 2, now });

    expect(counts).toEqual({ objects: 2, bytes: 10, groups: 3, incompleteUploads: 3 });
    expect(rows["bronze/orders/"]).toMatchObject({ objects: 1, incompleteUploads: 2 });
    expect(rows["bronze/users/"]).toMatchObject({ objects: 1, incompleteUploads: 0, oldestIncompleteUploadAgeSeconds: 0 });
    // A prefix holding only an open upload is a group of its own, without objects.
    expect(rows["staging/tmp/"]).toMatchObject({ objects: 0, bytes: 0, newestObject: null, incompleteUploads: 1 });
    const oldestOrders = Math.min(initiated("bronze/orders/big-1.bin"), initiated("bronze/orders/big-2.bin"));
    expect(gauge("etl_s3_oldest_incomplete_multipart_upload_age_seconds", "bronze/orders/")).toBe(Math.round((now.getTime() - oldestOrders) / 1000));
    expect(gauge("etl_s3_incomplete_multipart_uploads", "staging/tmp/")).toBe(1);
    expect(gauge("etl_s3_newest_object_timestamp_seconds", "staging/tmp/")).toBe(0);
  });

  test("a role S3 refuses the upload listing still gets the objects' figures, with a warning and no upload gauges", async () => {
    const bucket = await seedBucket({ "a/1.txt": 5 });
    const store = new S3Store(bucket, s3());
    // What S3 answers a role without s3:ListBucketMultipartUploads.
    const denied = new S3RequestError({ name: "ListMultipartUploads", bucket }, { name: "AccessDenied", Code: "AccessDenied", message: "Access Denied", $metadata: { httpStatusCode: 403 } });
    const refusing = Object.assign(Object.create(store), { listMultipartUploads: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(denied) }) }) }) as ObjectStore;
    const { counts, metrics, event, lines } = await measure(refusing);
    expect(counts).toEqual({ objects: 1, bytes: 5, groups: 1, incompleteUploads: 0 });
    expect(event.groups[0]).not.toHaveProperty("incompleteUploads");
    expect(metrics.gauges().some((g) => g.name.includes("multipart"))).toBe(false);
    expect(lines.some((l) => l.includes('"level":"warn"') && l.includes("s3:ListBucketMultipartUploads"))).toBe(true);
  });
});

describe("on a directory (file:)", () => {
  test("the same groups as S3, with newest and oldest from the files' mtimes, and no upload gauges", async () => {
    const day = (d: number) => new Date(Date.UTC(2026, 0, d, 12));
    seedDirectory(dir, LAKE, { "bronze/orders/dt=2026-01-01/a.csv": day(1), "bronze/orders/dt=2026-01-02/b.csv": day(2), "bronze/orders/dt=2026-01-02/c.csv": day(3) });
    const { rows, counts, gauge, metrics } = await measure(new FileStore(dir), { depth: 2 });
    expect(objectsAndBytes(rows)).toEqual({ "": [1, 3], "bronze/": [1, 10], "bronze/orders/": [3, 600], "bronze/users/": [1, 50], "silver/orders/": [2, 1007] });
    expect(counts).toEqual({ objects: 8, bytes: 1670, groups: 5, incompleteUploads: 0 });
    expect(rows["bronze/orders/"]).toMatchObject({ newestObject: day(3).toISOString(), oldestObject: day(1).toISOString() });
    expect(gauge("etl_s3_oldest_object_timestamp_seconds", "bronze/orders/")).toBe(day(1).getTime() / 1000);
    expect(metrics.gauges().some((g) => g.name.includes("multipart"))).toBe(false);
  });

  test("an empty directory is one group of zeros, so the push still replaces the last values", async () => {
    const { rows, counts } = await measure(new FileStore(dir), { depth: 2 });
    expect(rows).toEqual({ "": { prefix: "", objects: 0, bytes: 0, newestObject: null, oldestObject: null } });
    expect(counts).toEqual({ objects: 0, bytes: 0, groups: 1, incompleteUploads: 0 });
  });
});

describe("the job", () => {
  test("pushes the gauges to the Pushgateway, one group per bucket and prefix, and logs the table and totals", async () => {
    const bucket = await seedBucket(LAKE);
    await s3().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "bronze/orders/open.bin" }));
    const run = await s3Metrics(["--bucket", `s3://${bucket}`, "--depth", "2"]);
    expect(run.exitCode).toBe(0);
    expect(run.summary!.counts).toEqual({ objects: 8, bytes: 1670, groups: 5, incompleteUploads: 1 });
    const table = run.events.find((e) => e.event === "s3_metrics.groups")!;
    expect((table.groups as Row[]).map((g) => g.prefix)).toEqual(["", "bronze/", "bronze/orders/", "bronze/users/", "silver/orders/"]);

    seedDirectory(dir, { "a/1.txt": 4, "a/2.txt": 4, "b/1.txt": 1 });
    const local = await s3Metrics(["--bucket", `file://${dir}`, "--prefix", "a/", "--depth", "1"]);
    expect(local.exitCode).toBe(0);

    const samples = await scrape(gateway);
    const labels = { job: "s3_metrics", bucket };
    expect(valueOf(samples, "etl_s3_objects", { ...labels, prefix: "bronze/orders/" })).toBe(3);
    expect(valueOf(samples, "etl_s3_bytes", { ...labels, prefix: "silver/orders/" })).toBe(1007);
    expect(valueOf(samples, "etl_s3_incomplete_multipart_uploads", { ...labels, prefix: "bronze/orders/" })).toBe(1);
    expect(valueOf(samples, "etl_s3_oldest_incomplete_multipart_upload_age_seconds", { ...labels, prefix: "bronze/orders/" })).toBeGreaterThan(0);
    expect(valueOf(samples, "etl_s3_newest_object_timestamp_seconds", { ...labels, prefix: "bronze/users/" })).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(valueOf(samples, "etl_job_items", { ...labels, kind: "objects" })).toBe(8);
    // The directory's run went to a group of its own and left the bucket's series alone.
    expect(valueOf(samples, "etl_s3_objects", { job: "s3_metrics", bucket: `file://${dir}`, prefix: "a/" })).toBe(2);
    expect(find(samples, "etl_s3_objects", labels)).toHaveLength(5);
  });

  test("bad flags and a missing bucket or directory exit 2 naming the flag", async () => {
    const cases: Array<[string[], string]> = [
      [[], "--bucket"],
      [["--bucket", "Not_A_Bucket"], "--bucket"],
      [["--bucket", "etl-lake", "--depth", "-1"], "--depth"],
      [["--bucket", "etl-lake", "--depth", "two"], "--depth"],
      [["--bucket", "etl-lake", "--prefix", "/abs/"], "--prefix"],
      [["--bucket", "etl-lake", "--max-groups", "0"], "--max-groups"],
      [["--bucket", "etl-lake", "--concurrency", "1000"], "--concurrency"],
      [["--bucket", "no-such-bucket-s3-metrics"], "--bucket s3://no-such-bucket-s3-metrics does not exist"],
      [["--bucket", `file://${dir}/absent`], `--bucket file://${dir}/absent does not exist`],
    ];
    for (const [argv, message] of cases) {
      const run = await s3Metrics(argv, { PUSHGATEWAY_URL: "" });
      expect({ argv, exitCode: run.exitCode }).toEqual({ argv, exitCode: 2 });
      expect(`${run.summary?.error ?? ""}${run.stderr}`).toContain(message);
      expect(run.stderr).not.toContain("    at ");
    }
  });
});
