/** unzip_files killed, stopped or failing half-way: nothing is left visible, the next run recovers. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { stagingRoot } from "../../processors/file_processing/unzip/staging";
import { startFaultProxy } from "../harness/fault_proxy";
import { ROOT, createTestDatabase, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { track } from "../harness/processes";
import { DESTINATION, filesUnder as filesIn, lakeArgs, putStreamedZip, runUnzip, stagingGone, stagingWrites } from "../harness/unzip_lake";
import { buildZip, zeros } from "../harness/zip_builder";

const MiB = 1024 * 1024;

let db: TestDatabase;
let lake: Lake;
let tempDir: string;

const unzipLake = (argv: string[] = [], env?: Record<string, string | undefined>) => runUnzip(db.url, [...lakeArgs(lake), ...argv], env);
const filesUnder = (prefix = "") => filesIn(lake, prefix);
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/** The job as a child of its own, to kill: JSON logs, temp files in the test's folder. */
function spawnUnzip(argv: string[], env: Record<string, string> = {}) {
  const childEnv = { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json", TMPDIR: tempDir, ...env } as Record<string, string>;
  return track(Bun.spawn(["bun", "jobs/unzip_files.ts", ...lakeArgs(lake), ...argv], { cwd: ROOT, env: childEnv, stdout: "pipe", stderr: "ignore" }));
}

/** Waits until the run writes `name` into staging (a temp file, or a multipart upload); fails if it ends first. */
async function untilStaging(child: { exitCode: number | null }, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await stagingWrites(lake, name))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the run never staged ${name}`);
    await Bun.sleep(20);
  }
}

describe.each(LAKE_KINDS)("unzip_files recovery on a %s lake", (kind) => {
  // The killed run's large entry is extracted whole by the next run: moto took 232 s for 1 GiB
  // (upload and copy) on the shared test machine, so on S3 it is 64 MiB, 8 parts of 8 MiB, still
  // seconds of upload to catch it in.
  const largeBytes = kind === "file" ? 2 * 1024 * MiB : 64 * MiB;

  beforeEach(async () => {
    db = await createTestDatabase();
    lake = await createLake(kind);
    tempDir = mkdtempSync(join(tmpdir(), "etl-unzip-recovery-"));
  });
  afterEach(async () => {
    await db.drop();
    await lake.dispose();
    rmSync(tempDir, { recursive: true, force: true });
  });

  test("a killed extraction leaves nothing visible, and the next run clears its staging and extracts the archive", async () => {
    await lake.write("inbox/a.zip", buildZip([{ name: "small.csv", data: "id\n1\n" }]));
    await putStreamedZip(lake, "inbox/b.zip", [{ name: "first.csv", source: () => Readable.from([Buffer.from("id\n")]) }, { name: "zeros.bin", source: () => zeros(largeBytes) }]);
    const argv = ["--max-ratio", "2000"];
    const child = spawnUnzip(argv, { ETL_LEASE_TTL_SECONDS: "6" });
    // Killed once b.zip's large entry is being written to staging, after a.zip was published.
    await untilStaging(child, "zeros.bin");
    child.kill("SIGKILL");
    await child.exited;
    expect(await filesUnder(DESTINATION)).toEqual(["_archive.inbox%2Fa.zip.json", "small.csv"]);
    expect(await stagingGone(lake)).toBe(false);

    const rerun = await unzipLake(argv, { ETL_LEASE_TTL_SECONDS: "6" });
    expect(rerun.summary).toMatchObject({ exitCode: 0 });
    expect(rerun.summary!.counts).toMatchObject({ archives: 2, skipped: 1, unzipped: 1, extracted: 2 });
    expect(rerun.events.some((e) => e.msg === "removed the staging of killed runs")).toBe(true);
    expect(await filesUnder(DESTINATION)).toEqual(["_archive.inbox%2Fa.zip.json", "_archive.inbox%2Fb.zip.json", "first.csv", "small.csv", "zeros.bin"]);
    // On S3 the killed run's upload of zeros.bin is aborted too.
    expect(await stagingGone(lake)).toBe(true);
  }, 300_000);

  test("SIGTERM stops the entry in flight: the archive is rolled back, its staging removed, exit 143", async () => {
    await putStreamedZip(lake, "inbox/b.zip", [{ name: "first.csv", source: () => Readable.from([Buffer.from("id\n")]) }, { name: "zeros.bin", source: () => zeros(2 * 1024 * MiB) }]);
    const child = spawnUnzip(["--max-ratio", "2000"]);
    await untilStaging(child, "zeros.bin");
    const signalled = performance.now();
    child.kill("SIGTERM");
    expect(await child.exited).toBe(143);
    // Well inside the runner's 25 s drain: the 2 GiB entry did not have to finish.
    expect(performance.now() - signalled).toBeLessThan(10_000);
    const events = (await new Response(child.stdout as ReadableStream).text()).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const summary = events.find((e) => e.event === "job.finished");
    // On S3 too: the requests that roll back and remove staging are made after the signal.
    expect(events.filter((e) => /^could not/.test(e.msg)).map((e) => `${e.msg}: ${e.error}`)).toEqual([]);
    expect(summary).toMatchObject({ status: "interrupted", exitCode: 143, counts: { archives: 1, unzipped: 0, failed: 0 } });
    expect(await filesUnder(DESTINATION)).toEqual([]);
    expect(await stagingGone(lake)).toBe(true);
    expect(await filesUnder("inbox/")).toEqual(["b.zip"]);
  }, 120_000);

  test("a run killed while publishing is rolled back from its journal before the archive is extracted again", async () => {
    const archive = buildZip([{ name: "data.csv", data: "id\n1\n" }, { name: "more.csv", data: "id\n2\n" }]);
    await lake.write("inbox/a.zip", archive);
    // What a run killed after its first move leaves: the journal naming both keys, one key published.
    const killed = crypto.randomUUID();
    const journal = { archive: { key: "inbox/a.zip", etag: md5(archive) }, manifestKey: `${DESTINATION}_archive.inbox%2Fa.zip.json`, keys: [`${DESTINATION}data.csv`, `${DESTINATION}more.csv`] };
    await lake.write(`${stagingRoot(DESTINATION)}${killed}/0/publish.json`, JSON.stringify(journal));
    await lake.write(`${stagingRoot(DESTINATION)}${killed}/0/files/more.csv`, "id\n2\n");
    await lake.write(`${DESTINATION}data.csv`, "id\n1\n");

    const run = await unzipLake();
    expect(run.exitCode).toBe(0);
    expect(run.summary!.counts).toMatchObject({ unzipped: 1, extracted: 2, quarantined: 0 });
    expect(await filesUnder(DESTINATION)).toEqual(["_archive.inbox%2Fa.zip.json", "data.csv", "more.csv"]);
    expect(JSON.parse(await lake.readText(`${DESTINATION}_archive.inbox%2Fa.zip.json`)).run_id).toBe(run.summary!.runId);
    expect(await stagingGone(lake)).toBe(true);
  });

  test("a publish that fails half-way is rolled back: the archive stays in the inbox with a dead letter, exit 3", async () => {
    await lake.write("inbox/a.zip", buildZip(["a", "b", "c", "d"].map((n) => ({ name: `${n}.csv`, data: n }))));
    // The move of b.csv fails: on disk a folder is where it would go (no object there, so no
    // conflict); on S3 its CopyObject is refused as malformed, a failure neither transient nor a
    // denial (a 403 AccessDenied ends the run with exit 2 instead: tests/jobs/access_denied.test.ts).
    const proxy = kind === "s3" ? await startFaultProxy(process.env.S3_ENDPOINT!) : undefined;
    try {
      if (lake.dir) await lake.write(`${DESTINATION}b.csv/kept.txt`, "someone else's");
      proxy?.failNext(1, 400, { code: "InvalidRequest", when: (r) => r.method === "PUT" && "x-amz-copy-source" in r.headers && decodeURIComponent(r.path.split("?")[0]!).endsWith(`${DESTINATION}b.csv`) });
      const run = await unzipLake([], proxy ? { S3_ENDPOINT: proxy.url } : {});
      expect(run.exitCode).toBe(3);
      expect(run.summary!.counts).toMatchObject({ archives: 1, unzipped: 0, quarantined: 0, failed: 1 });
      expect(await filesUnder(DESTINATION)).toEqual(lake.dir ? ["b.csv/kept.txt"] : []);
      expect(await filesUnder("inbox/")).toEqual(["a.zip"]);
      expect(await stagingGone(lake)).toBe(true);
      const [letter] = await db.sql`select item_key, error, payload from etl_dead_letters where job = 'unzip_files'`;
      expect(letter).toMatchObject({ item_key: "inbox/a.zip", payload: { key: "inbox/a.zip" } });
      expect(letter!.error).toContain("b.csv");
    } finally {
      await proxy?.stop();
    }

    if (lake.dir) rmSync(join(lake.dir, `${DESTINATION}b.csv`), { recursive: true });
    const retry = await unzipLake();
    expect(retry.summary!.counts).toMatchObject({ unzipped: 1, extracted: 4, failed: 0 });
    expect([...(await db.sql`select resolution from etl_dead_letters where job = 'unzip_files'`)]).toEqual([{ resolution: "processed" }]);
  });
});
