/**
 * Every job's S3 requests go through the one retry policy (core/storage/s3_retry.ts): each job here runs
 * against a proxy in front of moto (harness/fault_proxy.ts) that answers bursts of 503 SlowDown
 * and resets connections, before the request reaches the server and after it was handled, on
 * every operation the job uses, and must still succeed with the output it makes without faults.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ObjectStores } from "../../core/storage/object_stores";
import { startApiServer, makeRecords, type ApiServer } from "../harness/api_server";
import { startFaultProxy, type FaultProxy } from "../harness/fault_proxy";
import { createBucket, createTestDatabase, getObjectBytes, getObjectText, listKeys, putObject, runCommand, seedAttachments, type CliResult, type TestDatabase } from "../harness/fixtures";
import { GnuPG, type GpgKey } from "../harness/gpg";
import { yazlZip } from "../harness/zip_builder";

let proxy: FaultProxy;
let db: TestDatabase;
let work: string;

beforeEach(async () => {
  proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
  db = await createTestDatabase();
  work = mkdtempSync(join(tmpdir(), "etl-s3-faults-"));
});
afterEach(async () => {
  await proxy.stop();
  await db.drop();
  rmSync(work, { recursive: true, force: true });
});

/**
 * Arms, for each operation, its next four requests to fail: two 503 SlowDown, a reset before the
 * server sees the request, and one after it handled it (the write happened; its answer is lost).
 * A request that meets all four is sent a fifth time.
 */
function burst(operations: string[]): void {
  for (const operation of operations) {
    proxy.failNext(2, 503, { when: operation });
    proxy.resetNext(1, { when: operation });
    proxy.resetNext(1, { when: operation, afterUpstream: true });
  }
}

/** The job through the proxy; every fault armed must have met its request, and each was retried. */
async function runThroughProxy(entry: string, argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const faults = proxy.pendingFaults();
  const run = await runCommand([entry], argv, { DATABASE_URL: db.url, PUSHGATEWAY_URL: "", S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "5", ...env });
  expect({ exitCode: run.exitCode, error: run.summary?.error, stderr: run.exitCode ? run.stderr.slice(-3000) : "" }).toEqual({ exitCode: 0, error: undefined, stderr: "" });
  expect(proxy.pendingFaults()).toBe(0);
  expect(run.events.filter((e) => e.msg === "S3 request failed, retrying").length).toBe(faults);
  return run;
}

const request = (id: number, status = "OPEN") =>
  JSON.stringify({ id, agency_id: 10, title: `request ${id}`, status, reporter_email: `someone${id}@example.com`, priority: 2, created_at: "2026-11-01T08:00:00Z", updated_at: "2026-11-01T08:00:00Z" });

test("bronze_to_silver: LIST, GET, PUT, the manifest's write, DELETE of the old run and the rerun's HEAD all ride out a burst", async () => {
  await db.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true)`;
  const bucket = await createBucket();
  const input = "bronze/service_requests/dt=2026-11-06/a.ndjson";
  const argv = ["--dataset", "service_requests", "--bucket", bucket, "--date", "2026-11-06"];
  await putObject(bucket, input, [1, 2].map((id) => request(id)).join("\n") + "\n");
  const first = await runThroughProxy("jobs/bronze_to_silver.ts", argv);

  // A changed input: the partition is rebuilt and the first run's folder removed.
  await putObject(bucket, input, [1, 2, 3].map((id) => request(id)).join("\n") + "\n");
  burst(["ListObjectsV2", "GetObject", "PutObject", "DeleteObject"]);
  const second = await runThroughProxy("jobs/bronze_to_silver.ts", argv);
  const manifest = JSON.parse(await getObjectText(bucket, "silver/service_requests/dt=2026-11-06/_manifest.json"));
  expect(manifest).toMatchObject({ run_id: second.summary!.runId, rows: { in: 3, out: 3, rejected: 0 } });
  const keys = (await listKeys(bucket)).filter((k) => k.startsWith("silver/"));
  expect(keys.some((k) => k.includes(String(first.summary!.runId)))).toBe(false);
  expect(keys.filter((k) => k.endsWith(".parquet"))).toEqual(manifest.files.map((f: { key: string }) => f.key));

  // Unchanged inputs: the committed manifest is HEADed, and nothing is rebuilt.
  burst(["HeadObject"]);
  await runThroughProxy("jobs/bronze_to_silver.ts", argv);
  expect(JSON.parse(await getObjectText(bucket, "silver/service_requests/dt=2026-11-06/_manifest.json")).run_id).toBe(second.summary!.runId);
});

test("unzip_files: the archive's GET, the staging PUTs, the publishing copies and the clean-up ride out a burst", async () => {
  const bucket = await createBucket();
  const big = Array.from({ length: 20_000 }, (_, i) => `${i},${(i * 7919) % 10_007}\n`).join("");
  await putObject(bucket, "inbox/a.zip", await yazlZip([{ name: "data.csv", data: "id\n1\n" }, { name: "big.csv", data: big }, { name: "dir/more.csv", data: "id\n2\n" }]));
  burst(["ListObjectsV2", "GetObject", "PutObject", "CopyObject", "DeleteObject"]);
  const run = await runThroughProxy("jobs/unzip_files.ts", ["--bucket", bucket, "--destination", "bronze/p/dt=2026-11-06/", "--date", "2026-11-06", "--delete-processed"]);
  expect(run.summary!.counts).toMatchObject({ archives: 1, unzipped: 1, extracted: 3, quarantined: 0, failed: 0 });
  expect((await listKeys(bucket)).filter((k) => !k.includes("_archive."))).toEqual(["bronze/p/dt=2026-11-06/big.csv", "bronze/p/dt=2026-11-06/data.csv", "bronze/p/dt=2026-11-06/dir/more.csv"]);
  expect(await getObjectText(bucket, "bronze/p/dt=2026-11-06/big.csv")).toBe(big);
  expect(await getObjectText(bucket, "bronze/p/dt=2026-11-06/dir/more.csv")).toBe("id\n2\n");
});

describe("decrypt_files", () => {
  let gpg: GnuPG;
  let recipient: GpgKey;
  beforeAll(async () => {
    gpg = GnuPG.create();
    recipient = await gpg.generateKey("Data Platform <etl@example.com>");
  });
  afterAll(() => gpg.close());

  test("the message's GET, the plaintext's PUT and the source's DELETE ride out a burst, without attempts multiplying", async () => {
    const bucket = await createBucket();
    const plaintext = Array.from({ length: 5000 }, (_, i) => `${i},payment ${i}\n`).join("");
    await putObject(bucket, "inbox/day1.csv.pgp", await gpg.encrypt(new TextEncoder().encode(plaintext), { recipient: recipient.fingerprint }));
    burst(["ListObjectsV2", "GetObject", "PutObject", "DeleteObject"]);
    const run = await runThroughProxy("jobs/decrypt_files.ts", ["--bucket", bucket, "--delete-source"], { ETL_PGP_PRIVATE_KEY: recipient.secretKey });
    expect(run.summary!.counts).toMatchObject({ inputs: 1, decrypted: 1, failed: 0 });
    expect(await listKeys(bucket)).toEqual(["decrypted/day1.csv"]);
    expect(new TextDecoder().decode(await getObjectBytes(bucket, "decrypted/day1.csv"))).toBe(plaintext);
    // Each failed request was sent again by the store alone: 5 GETs of the message, 5 PUTs of the plaintext.
    expect(proxy.requests.byOperation).toMatchObject({ GetObject: 5, PutObject: 5, DeleteObject: 5 });
  });
});

test("s3_metrics: the bucket check and every listing page ride out a burst, and each object is counted once", async () => {
  const bucket = await createBucket();
  const keys = Array.from({ length: 30 }, (_, i) => `bronze/t${i % 3}/dt=2026-11-0${(i % 5) + 1}/f${i}.csv`);
  await Promise.all(keys.map((key) => putObject(bucket, key, "x".repeat(10))));
  burst(["ListObjectsV2", "ListMultipartUploads"]);
  const run = await runThroughProxy("jobs/s3_metrics.ts", ["--bucket", bucket, "--depth", "2"], { DATABASE_URL: "" });
  expect(run.summary!.counts).toMatchObject({ objects: 30, bytes: 300, groups: 3, incompleteUploads: 0 });
});

test("s3_metrics: a server without ListMultipartUploads (501 Not Implemented) is asked once, and the objects' figures stand", async () => {
  const bucket = await createBucket();
  await putObject(bucket, "a/1.txt", "12345");
  proxy.failNext(1, 501, { code: "NotImplemented", when: "ListMultipartUploads" });
  const run = await runCommand(["jobs/s3_metrics.ts"], ["--bucket", bucket], { DATABASE_URL: "", PUSHGATEWAY_URL: "", S3_ENDPOINT: proxy.url });
  expect(run.exitCode).toBe(0);
  expect(run.summary!.counts).toMatchObject({ objects: 1, bytes: 5 });
  expect(proxy.requests.byOperation.ListMultipartUploads).toBe(1);
});

test("profile_dataset: the inputs' LIST and GET and the profile's PUTs ride out a burst", async () => {
  const bucket = await createBucket();
  await putObject(bucket, "feed/a.ndjson", Array.from({ length: 100 }, (_, i) => JSON.stringify({ n: i % 10, s: `v${i}` })).join("\n") + "\n");
  burst(["ListObjectsV2", "GetObject", "PutObject"]);
  const run = await runThroughProxy("jobs/profile_dataset.ts", ["--bucket", bucket, "--prefix", "feed/", "--out-prefix", "reports/"], { DATABASE_URL: "" });
  expect(run.summary!.counts).toMatchObject({ rows: 100 });
  expect(JSON.parse(await getObjectText(bucket, "reports/profile.json")).columns.n).toMatchObject({ min: 0, max: 9, distinct: 10, count: 100 });
  expect(await listKeys(bucket)).toEqual(["feed/a.ndjson", "reports/profile.html", "reports/profile.json"]);
});

describe("ingest_api", () => {
  let api: ApiServer;
  beforeAll(() => {
    api = startApiServer({ records: makeRecords(120) });
  });
  afterAll(() => api.stop());

  test("the bronze files' PUTs ride out a burst, and every record lands once", async () => {
    const bucket = await createBucket();
    burst(["PutObject"]);
    const argv = ["--dataset", "service_requests", "--bucket", bucket, "--logical-date", "2026-11-02", "--records-per-file", "50"];
    const run = await runThroughProxy("jobs/ingest_api.ts", argv, { SERVICE_API_URL: api.url, SERVICE_API_TOKEN: api.token });
    expect(run.summary!.counts).toMatchObject({ records: 120, files: 3 });
    const files = (await listKeys(bucket)).filter((k) => k.startsWith("bronze/service_requests/dt=2026-11-02/"));
    const ids: number[] = [];
    for (const key of files) ids.push(...new TextDecoder().decode(Bun.gunzipSync(Buffer.from(await getObjectBytes(bucket, key)))).split("\n").filter(Boolean).map((line) => JSON.parse(line).id));
    expect(ids.sort((a, b) => a - b)).toEqual(api.records.map((r) => r.id));
  });
});

test("freshness_monitor's completeness check: the destination's listing and the report's PUT ride out a burst", async () => {
  const bucket = await createBucket();
  const keys = Array.from({ length: 12 }, (_, i) => `k/${i + 1}.pdf`);
  await seedAttachments(db.sql, [10], keys.map((key, i) => ({ id: i + 1, agencyId: 10, key, size: 1 })));
  for (const key of keys.slice(1)) await putObject(bucket, `agency_id=10/${key}`, "x");
  burst(["ListObjectsV2", "PutObject"]);
  const report = await createBucket();
  const run = await runCommand(["jobs/freshness_monitor.ts"], ["--agency-id", "10", "--destination-bucket", bucket, "--report-to", report], {
    DATABASE_URL: db.url,
    PUSHGATEWAY_URL: "",
    S3_ENDPOINT: proxy.url,
    S3_TIMEOUT_SECONDS: "5",
  });
  // One of twelve missing is under the default ratio: partial (exit 3), with the report written.
  expect(run.exitCode).toBe(3);
  expect(proxy.pendingFaults()).toBe(0);
  expect(run.events.find((e) => e.event === "completeness.result")).toMatchObject({ expected: 12, present: 11, missing: 1, firstMissing: [{ key: "agency_id=10/k/1.pdf" }] });
  const [csv] = (await listKeys(report)).map((key) => key);
  expect(await getObjectText(report, csv!)).toContain("missing,agency_id=10/k/1.pdf,1,1,");
});

test("sync_dags: the package's listing and its GETs ride out a burst", async () => {
  const bucket = await createBucket();
  const dags = { "etl_a.py": "a = 1\n", "etl_b.py": "b = 2\n" };
  const metadata = { package: "etl", image_tag: "test", dags: Object.keys(dags).map((file) => ({ dag_id: file.replace(/\.py$/, ""), file })) };
  for (const [file, body] of Object.entries({ ...dags, "metadata.json": JSON.stringify(metadata) })) await putObject(bucket, `prod/etl/${file}`, body);
  burst(["ListObjectsV2", "GetObject"]);
  const folder = join(work, "airflow");
  mkdirSync(folder);
  const run = await runThroughProxy("jobs/sync_dags.ts", ["--dag-bucket", bucket, "--env", "prod", "--package", "etl", "--dag-folder", folder], { DATABASE_URL: "" });
  expect(run.summary!.counts).toMatchObject({ added: 3, updated: 0, removed: 0 });
  expect(readdirSync(join(folder, "etl")).sort()).toEqual(["etl_a.py", "etl_b.py", "metadata.json"]);
  expect(readFileSync(join(folder, "etl/etl_b.py"), "utf8")).toBe("b = 2\n");
});

test("a streamed multipart write: parts that fail are sent again from their buffers, the body is read once, the object is whole", async () => {
  const bucket = await createBucket();
  const body = randomBytes(20 * 1024 * 1024 + 5);
  let reads = 0;
  const source = Readable.from((function* () {
    reads++;
    for (let at = 0; at < body.length; at += 1024 * 1024) yield body.subarray(at, at + 1024 * 1024);
  })());
  burst(["CreateMultipartUpload", "UploadPart"]);
  // Not after the server handled it: a CompleteMultipartUpload sent again is answered NoSuchUpload.
  proxy.failNext(2, 503, { when: "CompleteMultipartUpload" });
  proxy.resetNext(1, { when: "CompleteMultipartUpload" });
  const stores = new ObjectStores({ s3Endpoint: proxy.url, awsRegion: process.env.AWS_REGION!, s3TimeoutMs: 5_000 });
  try {
    const store = await stores.open({ kind: "s3", bucket });
    await store.write("big.bin", source, { size: body.length });
  } finally {
    await stores.close();
  }
  expect(proxy.pendingFaults()).toBe(0);
  expect(reads).toBe(1);
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  expect(sha256(await getObjectBytes(bucket, "big.bin"))).toBe(sha256(body));
  // Three 8 MiB parts, four of their sends failed; the upload was created and completed once each.
  expect(proxy.requests.byOperation).toMatchObject({ CreateMultipartUpload: 5, UploadPart: 7, CompleteMultipartUpload: 4 });
});

test("a multipart completion whose answer was lost is answered NoSuchUpload when sent again: the object at the key with these parts' ETag is taken as this write's, another is not", async () => {
  const bucket = await createBucket();
  const body = randomBytes(17 * 1024 * 1024);
  // After the server handled it: the object is assembled, the client never hears so; sent again,
  // S3 answers NoSuchUpload (moto would complete it again: the answer is S3's, given by the proxy).
  proxy.resetNext(1, { afterUpstream: true, when: "CompleteMultipartUpload" });
  proxy.failNext(1, 404, { code: "NoSuchUpload", when: "CompleteMultipartUpload" });
  const stores = new ObjectStores({ s3Endpoint: proxy.url, awsRegion: process.env.AWS_REGION!, s3TimeoutMs: 5_000 });
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  try {
    const store = await stores.open({ kind: "s3", bucket });
    await store.write("assembled.bin", Readable.from([body]), { size: body.length });
    expect(sha256(await getObjectBytes(bucket, "assembled.bin"))).toBe(sha256(body));
    // A NoSuchUpload for an upload that was never completed: the object at the key is the first
    // write's, not made of these parts, so this write fails.
    proxy.failNext(1, 404, { code: "NoSuchUpload", when: "CompleteMultipartUpload" });
    const other = randomBytes(17 * 1024 * 1024);
    await expect(store.write("assembled.bin", Readable.from([other]), { size: other.length })).rejects.toThrow(/CompleteMultipartUpload .*NoSuchUpload/);
  } finally {
    await stores.close();
  }
  expect(sha256(await getObjectBytes(bucket, "assembled.bin"))).toBe(sha256(body));
  expect(proxy.pendingFaults()).toBe(0);
  expect(proxy.requests.byOperation).toMatchObject({ CompleteMultipartUpload: 3, HeadObject: 2 });
});
