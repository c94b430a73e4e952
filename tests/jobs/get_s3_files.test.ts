import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadMigrations, migrate } from "../../core/db/migrate";
import { MANIFEST_HEADER } from "../../processors/data_pipeline/get_s3_files/copy_manifest";
import {
  createBucket,
  createTestDatabase,
  getObjectBytes,
  getObjectText,
  insertLease,
  listKeys,
  parseCsv,
  putObject,
  runGetS3Files,
  s3,
  seedAttachments,
  type TestDatabase,
} from "../harness/fixtures";

// Keys that break naive URL building, CopySource encoding or CSV writing.
const TRICKY_KEYS = [
  "plain/report.pdf",
  "with space/file name.txt",
  "unicode/été/日本語ファイル.txt",
  "plus/a+b=c.txt",
  "percent/100%25 done %.txt",
  "amp/this&that.txt",
  "query/what?x=1.txt",
  "hash/issue #42.txt",
  'csv/comma, and "quotes".txt',
];

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

const baseArgs = () => ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", `s3://${destination}`];

describe("get_s3_files, S3 to S3", () => {
  test("copies every live attachment of the agency, tricky keys included, and writes the manifest in id order", async () => {
    const attachments = TRICKY_KEYS.map((key, i) => ({ id: 100 + i, agencyId: 10, key }));
    await seedAttachments(db.sql, [10, 20], [
      ...attachments,
      { id: 500, agencyId: 20, key: "other/agency.txt" },
      { id: 501, agencyId: 10, key: "deleted/gone.txt", deleted: true },
    ]);
    for (const a of attachments) await putObject(source, a.key, `body of ${a.key}`);
    await putObject(source, "other/agency.txt", "not ours");
    await putObject(source, "deleted/gone.txt", "soft-deleted");

    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });

    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: TRICKY_KEYS.length, skipped: 0, failed: 0 } });
    const keys = await listKeys(destination);
    expect(keys).toEqual([...TRICKY_KEYS.map((k) => `agency_id=10/${k}`), "agency_id=10/_manifest.csv"].sort());
    for (const key of TRICKY_KEYS) expect(await getObjectText(destination, `agency_id=10/${key}`)).toBe(`body of ${key}`);

    const manifestText = await getObjectText(destination, "agency_id=10/_manifest.csv");
    expect(manifestText.split("\n")[0]).toBe(MANIFEST_HEADER.join(","));
    const rows = parseCsv(manifestText);
    expect(rows.map((r) => r.attachment_id)).toEqual(attachments.map((a) => String(a.id)));
    expect(rows.map((r) => r.source_key)).toEqual(TRICKY_KEYS);
    expect(rows.every((r) => r.status === "copied")).toBe(true);
    const head = await s3().send(new HeadObjectCommand({ Bucket: source, Key: TRICKY_KEYS[0] }));
    expect(rows[0]).toMatchObject({ destination_key: `agency_id=10/${TRICKY_KEYS[0]}`, etag: head.ETag!.replace(/"/g, ""), size_bytes: String(head.ContentLength) });
  });

  test("a second run copies nothing and marks every row skipped", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }, { id: 2, agencyId: 10, key: "b/c.txt" }]);
    await putObject(source, "a.txt", "A");
    await putObject(source, "b/c.txt", "C");

    expect((await runGetS3Files(baseArgs(), { DATABASE_URL: db.url })).summary?.counts).toEqual({ copied: 2, skipped: 0, failed: 0 });
    const second = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });

    expect(second.exitCode).toBe(0);
    expect(second.summary?.counts).toEqual({ copied: 0, skipped: 2, failed: 0 });
    const rows = parseCsv(await getObjectText(destination, "agency_id=10/_manifest.csv"));
    expect(rows.map((r) => r.status)).toEqual(["skipped", "skipped"]);
  });

  test("an object whose content changed at the source is copied again", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    await putObject(source, "a.txt", "first");
    await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });
    await putObject(source, "a.txt", "other"); // same size, different content

    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });

    expect(run.summary?.counts).toEqual({ copied: 1, skipped: 0, failed: 0 });
    expect(await getObjectText(destination, "agency_id=10/a.txt")).toBe("other");
  });

  test("copies empty and multi-part-sized (>5 MiB) objects byte for byte", async () => {
    const big = new Uint8Array(6 * 1024 * 1024 + 17).map((_, i) => (i * 31) % 251);
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "empty.bin" }, { id: 2, agencyId: 10, key: "big.bin" }]);
    await putObject(source, "empty.bin", new Uint8Array(0));
    await putObject(source, "big.bin", big);

    const run = await runGetS3Files([...baseArgs(), "--destination-prefix", "exports/"], { DATABASE_URL: db.url });

    expect(run.summary?.counts).toEqual({ copied: 2, skipped: 0, failed: 0 });
    expect((await getObjectBytes(destination, "exports/empty.bin")).length).toBe(0);
    expect(Buffer.from(await getObjectBytes(destination, "exports/big.bin")).equals(Buffer.from(big))).toBe(true);
    expect((await listKeys(destination)).includes("exports/_manifest.csv")).toBe(true);
  });

  test("a missing source object fails that item only: exit 3, manifest row failed, dead letter recorded, resolved once it is copied", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "here.txt" }, { id: 2, agencyId: 10, key: "missing.txt" }, { id: 3, agencyId: 10, key: "also-here.txt" }]);
    await putObject(source, "here.txt", "1");
    await putObject(source, "also-here.txt", "3");

    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });

    expect(run.exitCode).toBe(3);
    expect(run.summary).toMatchObject({ status: "partial", exitCode: 3, counts: { copied: 2, skipped: 0, failed: 1 } });
    const rows = parseCsv(await getObjectText(destination, "agency_id=10/_manifest.csv"));
    expect(rows.map((r) => [r.attachment_id, r.status])).toEqual([["1", "copied"], ["2", "failed"], ["3", "copied"]]);
    const letters = await db.sql`select item_key, error, payload, resolved_at from etl_dead_letters`;
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ item_key: "attachment:2", resolved_at: null, payload: { sourceKey: "missing.txt" } });
    expect(letters[0]!.error).toContain("missing.txt");

    await putObject(source, "missing.txt", "2");
    const replay = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });
    expect(replay.summary).toMatchObject({ status: "succeeded", counts: { copied: 1, skipped: 2, failed: 0 } });
    const [open] = await db.sql`select count(*)::int as n from etl_dead_letters where resolved_at is null`;
    expect(open!.n).toBe(0);
  });

  test("--dry-run reads and compares but writes nothing: no object, no manifest, no platform table", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }, { id: 2, agencyId: 10, key: "gone.txt" }]);
    await putObject(source, "a.txt", "A");

    const run = await runGetS3Files([...baseArgs(), "--dry-run"], { DATABASE_URL: db.url });

    expect(run.summary).toMatchObject({ dryRun: true, counts: { copied: 0, planned: 1, failed: 1 } });
    expect(await listKeys(destination)).toEqual([]);
    const [row] = await db.sql`select to_regclass('etl_dead_letters') is null as absent`;
    expect(row!.absent).toBe(true);
  });

  test("n shards together copy every attachment exactly once, each writing its own manifest", async () => {
    const attachments = Array.from({ length: 23 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `f/${i + 1}.txt` }));
    await seedAttachments(db.sql, [10], attachments);
    for (const a of attachments) await putObject(source, a.key, a.key);

    const runs = await Promise.all(
      [0, 1, 2].map((i) =>
        i === 2
          ? runGetS3Files([...baseArgs(), "--batch-size", "4"], { DATABASE_URL: db.url, JOB_COMPLETION_INDEX: "2", JOB_COMPLETION_COUNT: "3" })
          : runGetS3Files([...baseArgs(), "--shard", `${i}/3`, "--batch-size", "4"], { DATABASE_URL: db.url }),
      ),
    );

    expect(runs.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    const ids: string[] = [];
    for (const i of [0, 1, 2]) {
      const rows = parseCsv(await getObjectText(destination, `agency_id=10/_manifest.${i}-of-3.csv`));
      expect(rows.every((r) => Number(r.attachment_id) % 3 === i)).toBe(true);
      ids.push(...rows.map((r) => r.attachment_id!));
    }
    expect(ids.map(Number).sort((a, b) => a - b)).toEqual(attachments.map((a) => a.id));
    expect(runs.reduce((sum, r) => sum + ((r.summary?.counts as { copied: number }).copied ?? 0), 0)).toBe(23);
  });

  test("pages through more attachments than one batch, in id order", async () => {
    const attachments = Array.from({ length: 12 }, (_, i) => ({ id: 1000 - i * 7, agencyId: 10, key: `p/${i}.txt` }));
    await seedAttachments(db.sql, [10], attachments);
    for (const a of attachments) await putObject(source, a.key, "x");

    const run = await runGetS3Files([...baseArgs(), "--batch-size", "5", "--concurrency", "3"], { DATABASE_URL: db.url });

    // 12 rows in pages of 5: a manifest of all 12 in id order took three keyset pages.
    expect(run.summary?.counts).toEqual({ copied: 12, skipped: 0, failed: 0 });
    const rows = parseCsv(await getObjectText(destination, "agency_id=10/_manifest.csv"));
    expect(rows.map((r) => Number(r.attachment_id))).toEqual(attachments.map((a) => a.id).sort((a, b) => a - b));
  });

  test("skips with exit 0 while another live run holds the lease for the same work", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    await putObject(source, "a.txt", "A");
    await migrate(db.sql, await loadMigrations());
    const name = `get_s3_files:10:s3://${destination}/agency_id=10/:all`;
    const holder = await insertLease(db.sql, name, "other-pod", { expiresInSeconds: 3 });
    // The holder is alive: it renews, as a run does every sixth of the time to live.
    const renewing = setInterval(() => {
      void db.sql`update etl_leases set renewed_at = now(), renewals = renewals + 1, expires_at = now() + interval '3 seconds' where name = ${name}`.catch(() => {});
    }, 200);
    try {
      const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "3" });
      expect(run.exitCode).toBe(0);
      expect(run.summary).toMatchObject({ status: "skipped", exitCode: 0, reason: `run ${holder} on other-pod is copying agency 10 to this destination` });
      expect(await listKeys(destination)).toEqual([]);
    } finally {
      clearInterval(renewing);
    }
  });

  test("a lease that looks fresh but is not renewed (its run was just killed) is waited out, not skipped", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    await putObject(source, "a.txt", "A");
    await migrate(db.sql, await loadMigrations());
    await insertLease(db.sql, `get_s3_files:10:s3://${destination}/agency_id=10/:all`, "killed-pod", { expiresInSeconds: 3 });

    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "3" });

    expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 1 } });
  });

  test("a lease its holder stopped renewing (a killed run) is waited out and taken over", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    await putObject(source, "a.txt", "A");
    await migrate(db.sql, await loadMigrations());
    await insertLease(db.sql, `get_s3_files:10:s3://${destination}/agency_id=10/:all`, "dead-pod", { renewedSecondsAgo: 10, expiresInSeconds: 1.5 });

    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "3" });

    expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 1 } });
    expect(run.events.find((e) => e.msg === "waiting for the lease of a run that stopped renewing it to expire")).toMatchObject({ host: "dead-pod" });
    const [lease] = await db.sql`select count(*)::int as n from etl_leases`;
    expect(lease!.n).toBe(0); // released at the end
  });
});

describe("get_s3_files, local directories and mixed stores", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "etl-files-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function writeLocal(root: string, key: string, body: string | Uint8Array) {
    mkdirSync(dirname(join(root, key)), { recursive: true });
    writeFileSync(join(root, key), body);
  }

  test("file: to file: streams every file, then skips them all on the second run", async () => {
    const keys = ["a.txt", "nested/deep/b.txt", "unicode/ünï cödé.txt", "plus/a+b.txt"];
    await seedAttachments(db.sql, [10], keys.map((key, i) => ({ id: i + 1, agencyId: 10, key })));
    for (const key of keys) writeLocal(join(dir, "src"), key, `local ${key}`);
    const args = ["--agency-id", "10", "--source-bucket", `file://${join(dir, "src")}`, "--destination-bucket", `file:${join(dir, "dst")}`];

    const first = await runGetS3Files(args, { DATABASE_URL: db.url });
    const second = await runGetS3Files(args, { DATABASE_URL: db.url });

    expect(first.summary?.counts).toEqual({ copied: 4, skipped: 0, failed: 0 });
    expect(second.summary?.counts).toEqual({ copied: 0, skipped: 4, failed: 0 });
    for (const key of keys) expect(readFileSync(join(dir, "dst", "agency_id=10", key), "utf8")).toBe(`local ${key}`);
    const rows = parseCsv(readFileSync(join(dir, "dst", "agency_id=10", "_manifest.csv"), "utf8"));
    expect(rows.map((r) => r.status)).toEqual(["skipped", "skipped", "skipped", "skipped"]);
    expect(readdirSync(join(dir, "dst", "agency_id=10")).some((f) => f.includes("etl-partial"))).toBe(false);
  });

  test("S3 to file: and file: to S3 stream across stores, idempotently", async () => {
    const big = new Uint8Array(9 * 1024 * 1024).map((_, i) => i % 256);
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "big.bin" }, { id: 2, agencyId: 10, key: "small file.txt" }]);
    await putObject(source, "big.bin", big);
    await putObject(source, "small file.txt", "small");

    const down = await runGetS3Files(["--agency-id", "10", "--source-bucket", source, "--destination-bucket", `file:${dir}`], { DATABASE_URL: db.url });
    expect(down.summary?.counts).toEqual({ copied: 2, skipped: 0, failed: 0 });
    expect(Buffer.from(readFileSync(join(dir, "agency_id=10/big.bin"))).equals(Buffer.from(big))).toBe(true);

    const upArgs = ["--agency-id", "10", "--source-bucket", `file:${join(dir, "agency_id=10")}`, "--destination-bucket", destination, "--destination-prefix", "up/"];
    const up = await runGetS3Files(upArgs, { DATABASE_URL: db.url });
    expect(up.summary?.counts).toEqual({ copied: 2, skipped: 0, failed: 0 });
    expect(Buffer.from(await getObjectBytes(destination, "up/big.bin")).equals(Buffer.from(big))).toBe(true);
    // The 9 MiB upload is multipart, so its ETag is not the file's MD5; the recorded source ETag still proves it identical.
    const again = await runGetS3Files(upArgs, { DATABASE_URL: db.url });
    expect(again.summary?.counts).toEqual({ copied: 0, skipped: 2, failed: 0 });
  });

  const UNSAFE_KEYS = ["../agency_id=11/victim.bin", "../x", "a/../../b", "/abs/file", "back\\slash", "./dot", "double//slash"];

  test("unsafe keys are failed items with their reason on every pairing of stores, and nothing lands outside the prefix", async () => {
    const rows = [{ id: 1, agencyId: 10, key: "fine/ok.txt" }, ...UNSAFE_KEYS.map((key, i) => ({ id: 10 + i, agencyId: 10, key, fileName: "f" }))];
    await seedAttachments(db.sql, [10, 11], rows);
    await putObject(source, "fine/ok.txt", "ok");
    // The file: source holds a file beside its root that "../x" would reach.
    writeLocal(join(dir, "src"), "fine/ok.txt", "ok");
    writeFileSync(join(dir, "x"), "outside the source");
    const victim = join(dir, "dst", "agency_id=11", "victim.bin");
    writeLocal(join(dir, "dst"), "agency_id=11/victim.bin", "another agency's file");
    const pairings = [
      [source, `file:${join(dir, "dst")}`],
      [`file:${join(dir, "src")}`, `file:${join(dir, "dst")}`],
      [`file:${join(dir, "src")}`, destination],
      [source, destination],
    ];
    for (const [from, to] of pairings) {
      const run = await runGetS3Files(["--agency-id", "10", "--source-bucket", from!, "--destination-bucket", to!], { DATABASE_URL: db.url });
      expect(run.exitCode).toBe(3);
      expect(run.summary?.counts).toMatchObject({ failed: UNSAFE_KEYS.length });
      const refused = run.events.filter((e) => e.msg === "copy refused").map((e) => String(e.error));
      expect(refused).toHaveLength(UNSAFE_KEYS.length);
      expect(refused.find((m) => m.includes('"../x"'))).toMatch(/unsafe key "\.\.\/x": has a "\.\." segment; nothing was read or written/);
    }
    expect(readFileSync(victim, "utf8")).toBe("another agency's file");
    const written = (readdirSync(join(dir, "dst"), { recursive: true }) as string[]).filter((p) => !p.startsWith("agency_id=11")).sort();
    expect(written).toEqual(["agency_id=10", "agency_id=10/_manifest.csv", "agency_id=10/fine", "agency_id=10/fine/ok.txt"]);
    expect((await listKeys(destination)).every((k) => k.startsWith("agency_id=10/"))).toBe(true);
    const letters = await db.sql`select error from etl_dead_letters where item_key = 'attachment:11' and resolved_at is null`;
    expect(letters.length).toBeGreaterThan(0);
    expect(letters[0]!.error).toContain('has a ".." segment');
  });
});

describe("get_s3_files, usage and configuration errors exit 2 naming what was wrong", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["missing --agency-id", ["--source-bucket", "a-bucket", "--destination-bucket", "b-bucket"], /give --agency-id N, or --all-agencies/],
    ["non-numeric --agency-id", ["--agency-id", "ten", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket"], /--agency-id must be a whole number \(got "ten"\)/],
    ["--concurrency 0", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--concurrency", "0"], /--concurrency must be at least 1/],
    ["bad bucket name", ["--agency-id", "1", "--source-bucket", "Not_A_Bucket", "--destination-bucket", "b-bucket"], /--source-bucket "Not_A_Bucket" is neither/],
    ["bad --shard", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--shard", "3/3"], /--shard must have 0 <= i < n/],
    ["unknown flag", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--colour", "red"], /unknown option '--colour'/],
    ["flag without value", ["--agency-id"], /option '--agency-id <id>' argument missing/],
    ["--destination-prefix ../x", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--destination-prefix", "../x/"], /--destination-prefix has a "\.\." segment \(got "\.\.\/x\/"\)/],
    ["--destination-prefix /abs/", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--destination-prefix", "/abs/"], /--destination-prefix is absolute/],
    ["--destination-prefix a/../../b/", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--destination-prefix", "a/../../b/"], /--destination-prefix has a "\.\." segment/],
    ["--destination-prefix without a trailing /", ["--agency-id", "1", "--source-bucket", "a-bucket", "--destination-bucket", "b-bucket", "--destination-prefix", "exports"], /--destination-prefix must end with "\/"/],
  ];
  for (const [name, argv, message] of cases) {
    test(name, async () => {
      const run = await runGetS3Files(argv, { DATABASE_URL: db.url });
      expect(run.exitCode).toBe(2);
      expect(run.summary).toMatchObject({ status: "failed", exitCode: 2 });
      expect(String(run.summary?.error)).toMatch(message);
      expect(run.stdout).not.toContain("    at "); // no stack trace
    });
  }

  test("unknown agency", async () => {
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toBe("--agency-id 10: no such agency");
  });

  test("source bucket that does not exist", async () => {
    await seedAttachments(db.sql, [10], []);
    const run = await runGetS3Files(["--agency-id", "10", "--source-bucket", "no-such-bucket-here", "--destination-bucket", destination], { DATABASE_URL: db.url });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toContain("--source-bucket s3://no-such-bucket-here does not exist");
  });

  test("JOB_COMPLETION_INDEX without JOB_COMPLETION_COUNT", async () => {
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, JOB_COMPLETION_INDEX: "1" });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toMatch(/--shard \(from JOB_COMPLETION_INDEX\/JOB_COMPLETION_COUNT\) must be i\/n/);
  });

  test("missing DATABASE_URL", async () => {
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: undefined });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toMatch(/DATABASE_URL is not set/);
  });

  test("malformed DATABASE_URL, LOG_LEVEL and S3_ENDPOINT", async () => {
    for (const [name, value] of [["DATABASE_URL", "mysql://x"], ["LOG_LEVEL", "loud"], ["S3_ENDPOINT", "not a url"]] as const) {
      const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, [name]: value });
      expect(run.exitCode).toBe(2);
      expect(String(run.summary?.error)).toContain(`environment variable ${name} must`);
    }
    const badPort = await runGetS3Files(baseArgs(), { DATABASE_URL: "postgres://u:pw-bad-port-7@host:notaport/db" });
    expect(badPort.exitCode).toBe(2);
    expect(String(badPort.summary?.error)).toStartWith("environment variable DATABASE_URL is not a valid URL");
    expect(badPort.stdout + badPort.stderr).not.toContain("pw-bad-port-7");
  });

  test("wrong database password: exit 2, and no secret in any output", async () => {
    const url = new URL(db.url);
    url.password = "wrong-password-x91";
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: url.toString() });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toContain("rejected the credentials");
    expect(run.stdout + run.stderr).not.toContain("wrong-password-x91");
  });
});

describe("get_s3_files, dependencies and secrets", () => {
  test("database unreachable: exit 75 (transient) after retries", async () => {
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: "postgres://etl:pw-unreachable-1@127.0.0.1:1/etl" });
    expect(run.exitCode).toBe(75);
    expect(run.summary).toMatchObject({ status: "failed", exitCode: 75 });
    expect(run.stdout).not.toContain("pw-unreachable-1");
  });

  test("S3 endpoint unreachable: exit 75", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    const run = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, S3_ENDPOINT: "http://127.0.0.1:1" });
    expect(run.exitCode).toBe(75);
  });

  test("no credential appears in logs, the summary or the dead letters", async () => {
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "missing.txt" }]);
    const run = await runGetS3Files([...baseArgs(), "--dry-run"], { DATABASE_URL: db.url, LOG_LEVEL: "debug" });
    const partial = await runGetS3Files(baseArgs(), { DATABASE_URL: db.url, LOG_LEVEL: "debug" });
    const secrets = [new URL(db.url).password, process.env.AWS_SECRET_ACCESS_KEY!];
    const letters = JSON.stringify(await db.sql`select * from etl_dead_letters`);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(4);
      for (const text of [run.stdout, run.stderr, partial.stdout, partial.stderr, letters]) expect(text).not.toContain(secret);
    }
    expect(partial.exitCode).toBe(3);
  });
});
