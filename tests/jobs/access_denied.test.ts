/**
 * An S3 AccessDenied met on one item's request stops the run with exit 2 naming the operation,
 * the object and the IAM action missing: a policy denies the role, not the object, so every other
 * item would meet it too, and a dead letter would only be replayed into the same denial. The
 * fault proxy (harness/fault_proxy.ts) answers the named operation with 403 AccessDenied; the
 * rest goes to moto. Before, each item was a failed one: a dead letter each, exit 3.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFaultProxy, type FaultProxy } from "../harness/fault_proxy";
import { createBucket, createTestDatabase, listKeys, putObject, runCommand, runGetS3Files, seedAttachments, type CliResult, type TestDatabase } from "../harness/fixtures";
import { GnuPG, type GpgKey } from "../harness/gpg";
import { createLake, type Lake } from "../harness/lakes";
import { DESTINATION, filesUnder, lakeArgs, runUnzip, stagingGone } from "../harness/unzip_lake";
import { buildZip } from "../harness/zip_builder";

let db: TestDatabase;
let proxy: FaultProxy;
beforeEach(async () => {
  db = await createTestDatabase();
  proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
});
afterEach(async () => {
  await proxy.stop();
  await db.drop();
});

/** Every request of `operation` is denied from now on. */
const deny = (operation: string) => proxy.failNext(Number.MAX_SAFE_INTEGER, 403, { code: "AccessDenied", when: operation });
const denial = (operation: string, url: RegExp | string) =>
  new RegExp(`^S3 denied ${operation} on ${typeof url === "string" ? RegExp.escape(url) : url.source} \\(HTTP 403 AccessDenied\\): the credentials' policy must allow s3:PutObject there$`);

/** The run ended exit 2 with `error`, its ledger row says the same, and it left no dead letter. */
async function expectDenied(run: CliResult, job: string, error: RegExp): Promise<void> {
  expect(run.summary).toMatchObject({ status: "failed", exitCode: 2, error: expect.stringMatching(error) });
  expect(run.exitCode).toBe(2);
  const [row] = await db.sql`select status, exit_code, error from etl_job_runs where run_id = ${String(run.summary!.runId)}`;
  expect(row).toEqual({ status: "failed", exit_code: 2, error: run.summary!.error });
  expect([...(await db.sql`select item_key from etl_dead_letters where job = ${job}`)]).toEqual([]);
}

describe("get_s3_files", () => {
  const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `k/${i + 1}.txt` }));
  const args = (source: string, destination: string) => ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination, "--concurrency", "4"];

  test("S3 to S3, CopyObject denied at the destination: exit 2 naming s3:PutObject, no dead letters, no copy started after it", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    await seedAttachments(db.sql, [10], rows);
    await Promise.all(rows.map((r) => putObject(source, r.key, `object ${r.id}`)));
    deny("CopyObject");
    const run = await runGetS3Files(args(source, destination), { DATABASE_URL: db.url, S3_ENDPOINT: proxy.url });
    await expectDenied(run, "get_s3_files", denial("CopyObject", new RegExp(`s3://${destination}/agency_id=10/k/\\d+\\.txt`)));
    // The copies in flight when the first denial came (--concurrency 4), none after: 30 before.
    expect(proxy.requests.byOperation.CopyObject).toBeLessThanOrEqual(4);
    expect(await listKeys(destination)).toEqual([]);
    expect(run.summary!.counts).toMatchObject({ copied: 0, failed: 0 });
  });

  test("file: to S3, PutObject denied: exit 2 naming s3:PutObject, no dead letters", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etl-denied-"));
    try {
      for (const r of rows) {
        mkdirSync(join(dir, "k"), { recursive: true });
        writeFileSync(join(dir, r.key), `object ${r.id}`);
      }
      const destination = await createBucket();
      await seedAttachments(db.sql, [10], rows);
      deny("PutObject");
      const run = await runGetS3Files(args(`file:${dir}`, destination), { DATABASE_URL: db.url, S3_ENDPOINT: proxy.url });
      await expectDenied(run, "get_s3_files", denial("PutObject", new RegExp(`s3://${destination}/agency_id=10/k/\\d+\\.txt`)));
      expect(proxy.requests.byOperation.PutObject).toBeLessThanOrEqual(4);
      expect(await listKeys(destination)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("unzip_files", () => {
  let lake: Lake;
  beforeEach(async () => {
    lake = await createLake("s3");
  });
  afterEach(() => lake.dispose());

  test("CopyObject denied while publishing: rolled back, the archive stays in the inbox, exit 2 and no dead letter; granted, the next run publishes it", async () => {
    await lake.write("inbox/a.zip", buildZip(["a", "b", "c", "d"].map((n) => ({ name: `${n}.csv`, data: n }))));
    // Only b.csv's move: the others are published, then removed again.
    proxy.failNext(1, 403, { code: "AccessDenied", when: (r) => r.operation === "CopyObject" && decodeURIComponent(r.path.split("?")[0]!).endsWith(`${DESTINATION}b.csv`) });
    const run = await runUnzip(db.url, lakeArgs(lake), { S3_ENDPOINT: proxy.url });
    await expectDenied(run, "unzip_files", denial("CopyObject", `${lake.url}/${DESTINATION}b.csv`));
    expect(proxy.pendingFaults()).toBe(0);
    expect(run.summary!.counts).toMatchObject({ archives: 1, unzipped: 0, quarantined: 0, failed: 0 });
    expect(await filesUnder(lake, DESTINATION)).toEqual([]);
    expect(await filesUnder(lake, "inbox/")).toEqual(["a.zip"]);
    expect(await filesUnder(lake, "quarantine/")).toEqual([]);
    expect(await stagingGone(lake)).toBe(true);

    const granted = await runUnzip(db.url, lakeArgs(lake));
    expect(granted.summary).toMatchObject({ exitCode: 0, counts: { unzipped: 1, extracted: 4 } });
  });
});

describe("decrypt_files", () => {
  let gpg: GnuPG;
  let recipient: GpgKey;
  beforeAll(async () => {
    gpg = GnuPG.create();
    recipient = await gpg.generateKey("Data Platform <etl@example.com>");
  });
  afterAll(() => gpg.close());
  let lake: Lake;
  beforeEach(async () => {
    lake = await createLake("s3");
  });
  afterEach(() => lake.dispose());

  test("PutObject of a plaintext denied: exit 2 naming s3:PutObject, no dead letters, no message started after it", async () => {
    for (const name of ["a", "b", "c", "d", "e"]) await lake.write(`inbox/${name}.csv.pgp`, await gpg.encrypt(new TextEncoder().encode(`id\n${name}\n`), { recipient: recipient.fingerprint }));
    deny("PutObject");
    const run = await runCommand(["jobs/decrypt_files.ts"], ["--bucket", lake.arg, "--concurrency", "1"], { DATABASE_URL: db.url, S3_ENDPOINT: proxy.url, ETL_PGP_PRIVATE_KEY: recipient.secretKey });
    await expectDenied(run, "decrypt_files", denial("PutObject", `${lake.url}/decrypted/a.csv`));
    expect(proxy.requests.byOperation.PutObject).toBe(1);
    expect(run.summary!.counts).toMatchObject({ inputs: 5, decrypted: 0, failed: 0, quarantined: 0 });
    expect(await lake.keys("decrypted/")).toEqual([]);
    expect([...(await db.sql`select key from etl_processed_files`)]).toEqual([]);
  });
});
