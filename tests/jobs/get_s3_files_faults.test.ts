/**
 * get_s3_files under faults made real: a proxy in front of moto that stalls, fails and resets
 * requests (harness/fault_proxy.ts); PostgreSQL backends terminated and the server shut down;
 * real SIGKILLs. Deadlines are shortened through the environment so the suite stays fast.
 */
import { CopyObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startFaultProxy, type FaultProxy } from "../harness/fault_proxy";
import { ROOT, createBucket, createTestDatabase, insertLease, listKeys, putObject, runGetS3Files, s3, seedAttachments, signalWhenCopying, type CliResult, type TestDatabase } from "../harness/fixtures";
import { startPostgres, type PostgresServer } from "../harness/postgres_server";

let db: TestDatabase;
let source: string;
let destination: string;

beforeEach(async () => {
  db = await createTestDatabase();
  [source, destination] = await Promise.all([createBucket(), createBucket()]);
});
afterEach(async () => {
  await db.drop();
});

const args = (from = source, to = destination) => ["--agency-id", "10", "--source-bucket", from, "--destination-bucket", to];
const isCopy = (r: { method: string; headers: Record<string, string> }) => r.method === "PUT" && "x-amz-copy-source" in r.headers;

async function seedObjects(count: number, body: (i: number) => string | Uint8Array = (i) => `object ${i}`): Promise<void> {
  const rows = Array.from({ length: count }, (_, i) => ({ id: i + 1, agencyId: 10, key: `k/${i + 1}.txt` }));
  await seedAttachments(db.sql, [10], rows);
  for (let i = 0; i < rows.length; i += 50) await Promise.all(rows.slice(i, i + 50).map((r) => putObject(source, r.key, body(r.id))));
}

/** Starts the job as a child process; `done` resolves with what it printed and its exit code. */
function startJob(argv: string[], env: Record<string, string | undefined>) {
  const child = Bun.spawn(["bun", "jobs/get_s3_files.ts", ...argv], {
    cwd: ROOT,
    env: { ...process.env, LOG_FORMAT: "json", ...env } as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
  });
  const started = performance.now();
  const done = (async (): Promise<CliResult & { seconds: number }> => {
    const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    const events = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    return { exitCode, stdout, stderr, events, summary: events.find((e) => e.event === "job.finished"), seconds: (performance.now() - started) / 1000 };
  })();
  return { child, done };
}

describe("S3 faults, through a proxy in front of moto", () => {
  let proxy: FaultProxy;
  beforeEach(async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
  });
  afterEach(async () => {
    await proxy.stop();
  });
  const viaProxy = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "0.5", ...extra });

  test("requests: a first copy is one CopyObject per object and lists no source; a rerun only lists; a few objects present are HEADed", async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `k/${i + 1}.txt`, size: `object ${i + 1}`.length }));
    await seedAttachments(db.sql, [10], rows);
    await Promise.all(rows.map((r) => putObject(source, r.key, `object ${r.id}`)));
    const first = await runGetS3Files(args(), viaProxy({ S3_TIMEOUT_SECONDS: "15" }));
    expect(first.summary).toMatchObject({ status: "succeeded", counts: { copied: 30 } });
    // Two bucket checks and the (empty) destination listing, 30 CopyObject and the manifest.
    expect(proxy.requests.byMethod).toEqual({ GET: 3, PUT: 31 });

    proxy.resetCounts();
    const rerun = await runGetS3Files(args(), viaProxy({ S3_TIMEOUT_SECONDS: "15" }));
    expect(rerun.summary).toMatchObject({ status: "succeeded", counts: { copied: 0, skipped: 30 } });
    // The bucket checks, both listings, the manifest: nothing per object.
    expect(proxy.requests.byMethod).toEqual({ GET: 4, PUT: 1 });

    // One object already at a fresh destination: HEADing it beats listing the source.
    const fresh = await createBucket();
    await s3().send(new CopyObjectCommand({ Bucket: fresh, Key: "agency_id=10/k/7.txt", CopySource: `${source}/k/7.txt` }));
    proxy.resetCounts();
    const partial = await runGetS3Files(["--agency-id", "10", "--source-bucket", source, "--destination-bucket", fresh], viaProxy({ S3_TIMEOUT_SECONDS: "15" }));
    expect(partial.summary).toMatchObject({ status: "succeeded", counts: { copied: 29, skipped: 1 } });
    expect(proxy.requests.byMethod).toEqual({ GET: 3, HEAD: 1, PUT: 30 });

    // Sizes the database does not know are listed rather than HEADed one by one.
    await db.sql`update attachment set size_bytes = null`;
    const unsized = await createBucket();
    proxy.resetCounts();
    expect((await runGetS3Files(args(source, unsized), viaProxy({ S3_TIMEOUT_SECONDS: "15" }))).summary).toMatchObject({ counts: { copied: 30 } });
    expect(proxy.requests.byMethod).toEqual({ GET: 4, PUT: 31 });
  });

  test("an endpoint that accepts connections and never answers: exit 75 within the stated bound, with the summary", async () => {
    await seedObjects(3);
    proxy.stall(true);
    const started = performance.now();
    const run = await runGetS3Files(args(), viaProxy());
    const seconds = (performance.now() - started) / 1000;
    expect(run.exitCode).toBe(75);
    expect(run.summary).toMatchObject({ status: "failed", exitCode: 75 });
    expect(String(run.summary?.error)).toMatch(/S3 ListObjectsV2 s3:\/\/\S+ timed out: no answer within 500 ms/);
    // 4 attempts x 0.5 s plus backoff; with the default 15 s base this is about 65 s.
    expect(seconds).toBeLessThan(10);
    // Both bucket checks at once, at most 4 attempts each; the first to give up ends the run.
    expect(proxy.requests.total).toBeGreaterThanOrEqual(4);
    expect(proxy.requests.total).toBeLessThanOrEqual(8);
  });

  test("copies that stall are timed out per request and retried; the run still completes", async () => {
    await seedObjects(6);
    // The first three CopyObject requests hang; their retries go through.
    let stalled = 0;
    proxy.stall(true, (r) => isCopy(r) && ++stalled <= 3);
    const run = await runGetS3Files(args(), viaProxy());
    expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 6, failed: 0 } });
    const retried = run.events.filter((e) => e.msg === "S3 request failed, retrying");
    // A small object's copy has the base deadline (plus 2 s a GiB at this base: 1 ms here).
    expect(retried.map((e) => [e.operation, String(e.error).replace(/s3:\/\/\S+/, "s3://…")])).toEqual(Array(3).fill(["CopyObject", "S3 CopyObject s3://… timed out: no answer within 501 ms"]));
  });

  test("40 consecutive connection resets on the copies of 400 objects: every object is copied (10 sends a request)", async () => {
    await seedObjects(400);
    // 8 copies in flight meet 5 resets each: 4 sends a request (before) left copies failed every
    // time; at 16 in flight, as the issue saw it, 6 runs in 10 in a simulation of that race.
    proxy.resetNext(40, { when: "CopyObject" });
    const run = await runGetS3Files([...args(), "--concurrency", "8"], viaProxy({ S3_TIMEOUT_SECONDS: "5" }));
    expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: 400, failed: 0 } });
    expect(proxy.pendingFaults()).toBe(0);
    expect(proxy.requests.byOperation.CopyObject).toBe(440);
    expect(await listKeys(destination)).toHaveLength(401);
  });

  test("a streamed copy whose GET body breaks off part-way is read again from the start by the copier, not the store", async () => {
    await seedObjects(3, (i) => Buffer.alloc(1024 * 1024, i));
    const target = mkdtempSync(join(tmpdir(), "etl-streamed-"));
    try {
      proxy.resetNext(2, { when: "GetObject", afterResponseBytes: 200 * 1024 });
      const run = await runGetS3Files(args(source, `file:${target}`), viaProxy({ S3_TIMEOUT_SECONDS: "5" }));
      expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 3, failed: 0 } });
      expect(proxy.pendingFaults()).toBe(0);
      // Only the copier retried them: the store had handed over the body already.
      const retries = run.events.filter((e) => String(e.msg).endsWith("retrying")).map((e) => [e.msg, e.error]);
      expect(retries).toEqual(Array(2).fill(["copy failed, retrying", expect.stringMatching(/^(aborted|.*ECONNRESET.*)$/)]));
      for (let i = 1; i <= 3; i++) expect(readFileSync(join(target, `agency_id=10/k/${i}.txt`)).equals(Buffer.alloc(1024 * 1024, i))).toBe(true);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  test("a server whose CopyObject alone stalls (HEAD and LIST answer): exit 75 within the stated bound", async () => {
    await seedObjects(40);
    proxy.stall(true, "CopyObject");
    // At a 1 s base a small object's copy has 1 s; 4 sends and their backoff (1.4 s at most),
    // plus the run's start: well under 15 s. Each copy had 4 s and 4 sends before, and the copies
    // started while the breaker counted its ten failures ran theirs too: over 30 s.
    const run = startJob(args(), { DATABASE_URL: db.url, S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "1" });
    const result = await run.done;
    expect(result.exitCode).toBe(75);
    expect(String(result.summary?.error)).toMatch(/^object store unavailable: 10 consecutive failures, last: S3 CopyObject s3:\/\/\S+ timed out: no answer within 1001 ms$/);
    expect(result.seconds).toBeLessThan(15);
    // 16 copies in flight sent 4 times each, and the workers freed by the first failures started a few more.
    expect(proxy.requests.byOperation.CopyObject).toBeGreaterThanOrEqual(64);
    expect(proxy.requests.byOperation.CopyObject).toBeLessThan(64 + 4 * 9);
  });

  test("a burst of 503s at start is absorbed by the same retries as the items'", async () => {
    await seedObjects(4);
    proxy.failNext(3, 503);
    const run = await runGetS3Files(args(), viaProxy());
    expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 4 } });

    proxy.failNext(6, 503, { when: isCopy });
    proxy.resetNext(2, { when: isCopy });
    const dest2 = await createBucket();
    const again = await runGetS3Files(args(source, dest2), viaProxy());
    expect(again.summary).toMatchObject({ status: "succeeded", counts: { copied: 4 } });
  });

  test("S3 errors name the operation, the object, the HTTP status and S3's code", async () => {
    await seedObjects(1);
    // Ten answers: the request's every send.
    proxy.failNext(10, 500, { code: "InternalError", when: isCopy });
    const run = await runGetS3Files(args(), viaProxy());
    expect(run.exitCode).toBe(3);
    const [letter] = await db.sql`select error from etl_dead_letters`;
    expect(letter!.error).toBe(`S3 CopyObject s3://${destination}/agency_id=10/k/1.txt failed: HTTP 500 InternalError (Injected by the test fault proxy)`);
  });

  test("rejected credentials: exit 2 saying so, without retries", async () => {
    await seedObjects(1);
    proxy.failNext(1, 403, { code: "InvalidAccessKeyId" });
    const run = await runGetS3Files(args(), viaProxy());
    expect(run.exitCode).toBe(2);
    // The bucket checks run at once: whichever the 403 met is named.
    expect(String(run.summary?.error)).toMatch(new RegExp(`^S3 rejected the credentials: ListObjectsV2 s3://(${source}|${destination}) failed: HTTP 403 InvalidAccessKeyId`));
    // No retry: the two checks, one request each.
    expect(proxy.requests.total).toBeLessThanOrEqual(2);
  });
});

describe("database faults", () => {
  test("backends terminated mid-run: the job reconnects and finishes, and a second run meanwhile is skipped", async () => {
    await seedObjects(100);
    const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    try {
      const env = { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "3" };
      const first = startJob([...args(), "--batch-size", "20", "--concurrency", "1"], { ...env, S3_ENDPOINT: proxy.url, S3_TIMEOUT_SECONDS: "3" });
      // Hold the first run mid-copy (its copy requests hang until unstalled) while the database
      // drops its connections and a second run tries the same work.
      await signalWhenCopying(destination, () => proxy.stall(true, isCopy));
      const [terminated] = await db.sql`
        select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where datname = ${db.name} and application_name = 'etl:get_s3_files'`;
      expect(terminated!.n).toBeGreaterThan(0);
      // The lease lives in a row, and the first run goes on renewing it on new connections.
      const second = await runGetS3Files(args(), env);
      expect(second.summary).toMatchObject({ status: "skipped", exitCode: 0 });
      expect(first.child.exitCode).toBeNull();
      proxy.stall(false);

      const run = await first.done;
      expect(run.stderr).not.toContain("TypeError");
      expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: 100, failed: 0 } });
    } finally {
      await proxy.stop();
    }
  });

  describe("on a server of its own", () => {
    let server: PostgresServer;
    beforeAll(async () => {
      server = await startPostgres();
      const sql = postgres(server.url, { max: 1, onnotice: () => {} });
      await sql.unsafe(await Bun.file(join(ROOT, "tests/fixtures/external_schema.sql")).text());
      await sql.end();
    });
    afterAll(() => server.stop());

    test("the server shut down mid-run (pg_ctl stop -m fast): exit 75 in bounded time, with the summary and its counts", async () => {
      const sql = postgres(server.url, { max: 2, onnotice: () => {} });
      try {
        await seedAttachments(sql, [10], Array.from({ length: 400 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `k/${i + 1}.txt` })));
      } finally {
        await sql.end();
      }
      for (let i = 1; i <= 400; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => putObject(source, `k/${i + j}.txt`, "x")));
      const job = startJob([...args(), "--batch-size", "20", "--concurrency", "1"], { DATABASE_URL: server.url, ETL_LEASE_TTL_SECONDS: "4" });
      await signalWhenCopying(destination, () => {});
      await server.fastShutdown();

      const run = await job.done;
      expect(run.stderr).not.toContain("TypeError");
      expect(run.exitCode).toBe(75);
      expect(run.summary).toMatchObject({ status: "failed", exitCode: 75 });
      expect((run.summary?.counts as { copied: number }).copied).toBeGreaterThan(0);
      expect(run.seconds).toBeLessThan(60);
    });
  });
});

describe("SIGKILL leaves nothing the next run keeps", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "etl-kill-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("no manifest temp file in /tmp, and the rerun removes the killed run's half-written files but not a live run's", async () => {
    await seedObjects(40, (i) => Buffer.alloc(1024 * 1024, i));
    const target = join(dir, "dst");
    const manifestsBefore = readdirSync(tmpdir()).filter((f) => f.startsWith("etl-manifest-"));
    const job = startJob([...args(source, `file:${target}`), "--concurrency", "4"], { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "2" });
    while (!existsSync(join(target, "agency_id=10", "k"))) await Bun.sleep(5);
    job.child.kill("SIGKILL");
    await job.done;
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith("etl-manifest-"))).toEqual(manifestsBefore);

    // Left by another killed run, and by a live run (another shard) still writing.
    const folder = join(target, "agency_id=10", "k");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `9.txt.etl-partial-${crypto.randomUUID()}.abc123`), "half");
    const live = await insertLease(db.sql, "get_s3_files:10:other-shard", "pod-2", { expiresInSeconds: 60 });
    writeFileSync(join(folder, `500.txt.etl-partial-${live}.def456`), "in flight");

    const rerun = await runGetS3Files(args(source, `file:${target}`), { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "2" });
    expect(rerun.summary).toMatchObject({ status: "succeeded", counts: { failed: 0 } });
    const partials = readdirSync(target, { recursive: true }).map(String).filter((f) => f.includes(".etl-partial-"));
    expect(partials).toEqual([`agency_id=10/k/500.txt.etl-partial-${live}.def456`]);
    expect(await listKeys(destination)).toEqual([]);
  });
});
