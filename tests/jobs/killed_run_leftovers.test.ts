/**
 * What runs SIGKILLed mid-write leave where no listing of objects shows it, and the next run
 * over the same place removes: a work directory in $TMPDIR (profile_dataset, unzip_files) and an
 * incomplete S3 multipart upload (bronze_to_silver's part in its run folder, decrypt_files'
 * plaintext at its key, unzip_files' staged entry). Each run is killed while the fault proxy
 * holds the request it is making, on moto; what live runs have in flight stays.
 */
import { CreateMultipartUploadCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { makeWorkDirectory } from "../../core/runtime/work_directory";
import { startFaultProxy, type ProxiedRequest } from "../harness/fault_proxy";
import { ROOT, createTestDatabase, insertLease, runCommand, s3, type TestDatabase } from "../harness/fixtures";
import { GnuPG } from "../harness/gpg";
import { createLake, type Lake } from "../harness/lakes";
import { track } from "../harness/processes";
import { DESTINATION, lakeArgs, runUnzip } from "../harness/unzip_lake";
import { buildZip } from "../harness/zip_builder";

const MiB = 1024 * 1024;

let lake: Lake;
/** The runs' $TMPDIR, to see their work directories. */
let temp: string;
let db: TestDatabase | undefined;

beforeEach(async () => {
  lake = await createLake("s3");
  temp = mkdtempSync(join(tmpdir(), "etl-leftovers-tmpdir-"));
});
afterEach(async () => {
  await db?.drop();
  db = undefined;
  await lake.dispose();
  rmSync(temp, { recursive: true, force: true });
});

/** Starts `bun jobs/<job>.ts argv` through a fault proxy that holds the requests `held` picks, and SIGKILLs it once one is held. */
async function killWhenHeld(job: string, argv: string[], env: Record<string, string>, held: (request: ProxiedRequest) => boolean): Promise<void> {
  const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
  let seen = false;
  proxy.stall(true, (request) => {
    const hold = held(request);
    seen ||= hold;
    return hold;
  });
  const child = Bun.spawn(["bun", `jobs/${job}.ts`, ...argv], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: "json", TMPDIR: temp, ...env, S3_ENDPOINT: proxy.url }, stdout: "pipe", stderr: "pipe" });
  track(child);
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]).then((parts) => parts.join(""));
  try {
    const deadline = Date.now() + 90_000;
    while (!seen) {
      if (child.exitCode !== null) throw new Error(`${job} exited with ${child.exitCode} before its request was held: ${(await output).slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${job} never made the request to hold`);
      await Bun.sleep(20);
    }
    child.kill("SIGKILL");
    await child.exited;
  } finally {
    await proxy.stop();
  }
}

/** An upload started at `key` and left open, as a live run writing it has one. */
async function openUpload(key: string): Promise<void> {
  await s3().send(new CreateMultipartUploadCommand({ Bucket: lake.arg, Key: key }));
}

const workDirectories = () => readdirSync(temp).sort();

describe("killed runs' leftovers", () => {
  test("profile_dataset killed while it writes its profile leaves its work directory (DuckDB's spill, the staged files), which the next run removes", async () => {
    await lake.write("files/a.csv", "id,name\n1,a\n2,b\n");
    const env = { DATABASE_URL: "", PUSHGATEWAY_URL: "" };
    const argv = ["--bucket", lake.arg, "--prefix", "files/"];
    // DuckDB has run by then: its spill directory is in the work directory.
    await killWhenHeld("profile_dataset", argv, env, (r) => r.operation === "PutObject" && r.path.includes("profile.json"));
    const [killed, ...others] = workDirectories();
    expect(others).toEqual([]);
    expect(killed).toMatch(/^etl-profile-/);
    expect(readdirSync(join(temp, killed!)).sort()).toEqual(["failures", "files", "spill"]);
    // A live process's (this one's) stays.
    const live = basename(await makeWorkDirectory("profile", temp));

    const rerun = await runCommand(["jobs/profile_dataset.ts"], argv, { ...env, TMPDIR: temp });
    expect(rerun.summary).toMatchObject({ exitCode: 0 });
    expect(workDirectories()).toEqual([live]);
    expect(rerun.events.find((e) => e.msg === "removed the work directories of killed runs")).toMatchObject({ tmpdir: [killed] });
  }, 120_000);

  test("bronze_to_silver killed while it uploads a part: the next run aborts the upload in the dead run's folder, not a live run's nor profile_dataset's", async () => {
    db = await createTestDatabase();
    const date = "2026-11-07";
    const prefix = `silver/service_requests/dt=${date}/`;
    // Titles of random base64 keep the Parquet part over 8 MiB (a multipart upload): 100,000 rows, about 11 MiB.
    const rows = Array.from({ length: 100_000 }, (_, i) =>
      JSON.stringify({ id: i, agency_id: 10, title: randomBytes(112).toString("base64"), status: "open", priority: 2, created_at: "2026-11-01T08:00:00Z", updated_at: "2026-11-01T08:00:00Z" }),
    );
    await lake.write(`bronze/service_requests/dt=${date}/a.ndjson.gz`, Bun.gzipSync(Buffer.from(rows.join("\n") + "\n")));
    const argv = ["--dataset", "service_requests", "--bucket", lake.arg, "--date", date];
    const env = { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "2" };
    const killedRun = crypto.randomUUID();
    await killWhenHeld("bronze_to_silver", argv, { ...env, ETL_RUN_ID: killedRun }, (r) => r.operation === "UploadPart" && r.path.includes("/silver/"));
    // Killed during its first part: nothing of it is an object, only the upload names its folder.
    expect(await lake.keys(prefix)).toEqual([]);
    expect(await lake.uploads(prefix)).toEqual([`${prefix}${killedRun}/part-00000.parquet`]);

    const live = await insertLease(db.sql, "bronze_to_silver:elsewhere", "pod-2", { expiresInSeconds: 60 });
    const kept = [`${prefix}${live}/part-00000.parquet`, `${prefix}_profile/failures/unique_id.parquet`];
    for (const key of kept) await openUpload(key);

    const rerun = await runCommand(["jobs/bronze_to_silver.ts"], argv, env);
    expect(rerun.summary).toMatchObject({ exitCode: 0, counts: { rowsOut: 100_000 } });
    expect(await lake.uploads(prefix)).toEqual(kept.sort());
    expect(rerun.events.find((e) => e.msg === "removed what killed runs left in the partition")).toMatchObject({ abortedUploads: 1 });
  }, 180_000);

  test("decrypt_files killed while it uploads a plaintext: the run that publishes the key next aborts that upload, not one of another key", async () => {
    db = await createTestDatabase();
    const gpg = GnuPG.create();
    try {
      const key = await gpg.generateKey("Data Platform <etl@example.com>");
      const plaintext = randomBytes(16 * MiB);
      await lake.write("inbox/big.bin.pgp", await gpg.encrypt(plaintext, { recipient: key.fingerprint, compress: "none" }));
      // Long enough that decrypting keeps the lease renewed; the rerun waits at most this long for the killed run's lease.
      const env = { DATABASE_URL: db.url, ETL_PGP_PRIVATE_KEY: key.secretKey, ETL_LEASE_TTL_SECONDS: "10" };
      await killWhenHeld("decrypt_files", ["--bucket", lake.arg], env, (r) => r.operation === "UploadPart" && r.path.includes("/decrypted/"));
      expect(await lake.uploads("decrypted/")).toEqual(["decrypted/big.bin"]);
      // Another key's upload in flight: a writer of the destination without a lease of this prefix.
      await openUpload("decrypted/big.bin.d/other.bin");

      const rerun = await runCommand(["jobs/decrypt_files.ts"], ["--bucket", lake.arg], env);
      expect(rerun.summary).toMatchObject({ exitCode: 0, counts: { decrypted: 1 } });
      expect(Buffer.compare(await lake.read("decrypted/big.bin"), plaintext)).toBe(0);
      expect(await lake.uploads("decrypted/")).toEqual(["decrypted/big.bin.d/other.bin"]);
    } finally {
      await gpg.close();
    }
  }, 180_000);

  test("unzip_files killed while it stages an entry: the next run aborts the staging upload and removes the work directory; a live run's upload stays", async () => {
    db = await createTestDatabase();
    const data = randomBytes(16 * MiB);
    await lake.write("inbox/a.zip", buildZip([{ name: "big.bin", data, method: 0 }]));
    const env = { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "2" };
    await killWhenHeld("unzip_files", lakeArgs(lake), env, (r) => r.operation === "UploadPart" && r.path.includes("/_staging/"));
    const [staged] = await lake.uploads("_staging/");
    expect(staged).toMatch(/^_staging\/unzip_files\/[0-9a-f]{16}\/[0-9a-f-]{36}\/0\/files\/big\.bin$/);
    expect(workDirectories()).toEqual([expect.stringMatching(/^etl-unzip-/)]);
    const live = await insertLease(db.sql, "unzip_files:elsewhere", "pod-2", { expiresInSeconds: 60 });
    const liveUpload = staged!.replace(/[0-9a-f-]{36}\/0\//, `${live}/0/`);
    await openUpload(liveUpload);

    const rerun = await runUnzip(db.url, lakeArgs(lake), { ...env, TMPDIR: temp });
    expect(rerun.summary).toMatchObject({ exitCode: 0, counts: { unzipped: 1, extracted: 1 } });
    expect(Buffer.compare(await lake.read(`${DESTINATION}big.bin`), data)).toBe(0);
    expect(await lake.uploads("_staging/")).toEqual([liveUpload]);
    expect(workDirectories()).toEqual([]);
  }, 180_000);
});
