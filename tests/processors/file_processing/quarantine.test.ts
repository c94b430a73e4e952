import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../core/log";
import { loadMigrations, migrate } from "../../../core/db/migrate";
import type { ObjectStore } from "../../../core/storage/object_store";
import { ObjectStores } from "../../../core/storage/object_stores";
import { Quarantine } from "../../../processors/file_processing/quarantine/quarantine";
import { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import { createBucket, createTestDatabase, getObjectText, listKeys, putObject, runEtl, type TestDatabase } from "../../harness/fixtures";

const RUN_ID = "7d1f0c52-0000-4000-8000-000000000001";
const stores = new ObjectStores({ s3Endpoint: process.env.S3_ENDPOINT, awsRegion: "us-east-1" });
const log = createLogger({ format: "json", level: "error", secrets: [], write: () => {} });
afterAll(() => stores.close());

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
});
afterEach(async () => {
  await db.drop();
});

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const letters = () => db.sql`select job, item_key, error, payload, resolution, resolution_reason from etl_dead_letters order by item_key`;

async function quarantineOne(store: ObjectStore): Promise<string> {
  const deadLetters = new DeadLetterRepository(db.sql, "unzip_files", RUN_ID);
  const quarantine = new Quarantine({ store, job: "unzip_files", runId: RUN_ID, date: "2026-11-20", deadLetters, log });
  const key = await quarantine.quarantine("inbox/partner/evil.zip", { rule: "path_traversal", detail: 'entry "../../etc/passwd"' });
  expect(quarantine.count).toBe(1);
  return key;
}

describe("quarantine", () => {
  test("on S3: the file moves with its reason, a dead letter is recorded; etl quarantine list shows it and release puts it back, recorded", async () => {
    const bucket = await createBucket();
    await putObject(bucket, "inbox/partner/evil.zip", "not really a zip");
    await putObject(bucket, "inbox/partner/good.zip", "fine");
    const key = await quarantineOne(await stores.open({ kind: "s3", bucket }));
    expect(key).toBe("quarantine/unzip_files/2026-11-20/inbox/partner/evil.zip");
    expect(await listKeys(bucket)).toEqual(["inbox/partner/good.zip", key, `${key}.reason.json`]);
    expect(await getObjectText(bucket, key)).toBe("not really a zip");
    const record = JSON.parse(await getObjectText(bucket, `${key}.reason.json`));
    expect(record).toMatchObject({
      rule: "path_traversal",
      detail: 'entry "../../etc/passwd"',
      key: "inbox/partner/evil.zip",
      quarantineKey: key,
      sha256: sha256("not really a zip"),
      size: 16,
      runId: RUN_ID,
      job: "unzip_files",
    });
    expect(record.sourceEtag).toMatch(/^[0-9a-f]{32}$/);
    expect(record.version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await letters()).map((l) => [l.job, l.item_key, l.error, l.resolution])).toEqual([["unzip_files", "inbox/partner/evil.zip", 'path_traversal: entry "../../etc/passwd"', null]]);

    const env = { DATABASE_URL: db.url };
    const listed = await runEtl(["quarantine", "list", "--bucket", `s3://${bucket}`, "--json"], env);
    expect(listed.exitCode).toBe(0);
    expect(JSON.parse(listed.stdout).map((r: { quarantineKey: string; rule: string }) => [r.quarantineKey, r.rule])).toEqual([[key, "path_traversal"]]);
    const table = await runEtl(["quarantine", "list", "--bucket", bucket, "--job", "unzip_files"], env);
    expect(table.stdout).toMatch(/^QUARANTINED\s+JOB\s+RULE\s+SIZE\s+KEY\s+DETAIL\n.*unzip_files\s+path_traversal\s+16\s+quarantine\/unzip_files\/2026-11-20\/inbox\/partner\/evil\.zip\s+entry/);
    expect((await runEtl(["quarantine", "list", "--bucket", bucket, "--job", "decrypt_files"], env)).stdout).toBe(`nothing quarantined in s3://${bucket} by decrypt_files\n`);

    const released = await runEtl(["quarantine", "release", key, "--bucket", bucket, "--reason", "partner re-sent it; rule fixed"], { ...env, USER: "ops" });
    expect(released.stderr).toBe("");
    expect(released.exitCode).toBe(0);
    expect(released.stdout).toContain("to inbox/partner/evil.zip; its dead letter is resolved as released");
    expect(await listKeys(bucket)).toEqual(["inbox/partner/evil.zip", "inbox/partner/good.zip", `${key}.released.json`]);
    expect(await getObjectText(bucket, "inbox/partner/evil.zip")).toBe("not really a zip");
    expect(JSON.parse(await getObjectText(bucket, `${key}.released.json`))).toMatchObject({ rule: "path_traversal", releaseReason: "partner re-sent it; rule fixed", releasedBy: expect.stringMatching(/^ops@/) });
    expect((await letters()).map((l) => [l.resolution, l.resolution_reason])).toEqual([["released", "partner re-sent it; rule fixed"]]);
    expect((await runEtl(["quarantine", "list", "--bucket", bucket], env)).stdout).toBe(`nothing quarantined in s3://${bucket}\n`);
    const history = JSON.parse((await runEtl(["quarantine", "list", "--bucket", bucket, "--released", "--json"], env)).stdout);
    expect(history.map((r: { releasedAt?: string }) => typeof r.releasedAt)).toEqual(["string"]);
  });

  test("on a directory, without a database; release refuses to overwrite a file back at the original key, and bad input exits 2 naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etl-quarantine-"));
    try {
      mkdirSync(join(dir, "inbox/partner"), { recursive: true });
      writeFileSync(join(dir, "inbox/partner/evil.zip"), "not really a zip");
      const store = await stores.open({ kind: "file", dir });
      const quarantine = new Quarantine({ store, job: "unzip_files", runId: RUN_ID, date: "2026-11-20", log });
      const key = await quarantine.quarantine("inbox/partner/evil.zip", { rule: "symlink_entry", detail: "entry link -> /etc" });
      expect(existsSync(join(dir, "inbox/partner/evil.zip"))).toBe(false);
      expect(JSON.parse(readFileSync(join(dir, `${key}.reason.json`), "utf8")).sha256).toBe(sha256("not really a zip"));

      const bucket = `file://${dir}`;
      mkdirSync(join(dir, "inbox/partner"), { recursive: true });
      writeFileSync(join(dir, "inbox/partner/evil.zip"), "a new delivery");
      const refused = await runEtl(["quarantine", "release", key, "--bucket", bucket, "--reason", "retry"], { DATABASE_URL: "" });
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain("inbox/partner/evil.zip exists again");
      expect(readFileSync(join(dir, "inbox/partner/evil.zip"), "utf8")).toBe("a new delivery");
      expect(existsSync(join(dir, key))).toBe(true);

      const cases: Array<[string[], RegExp]> = [
        [["quarantine", "release", "inbox/partner/evil.zip", "--bucket", bucket, "--reason", "x"], /is not a quarantined file/],
        [["quarantine", "release", key, "--bucket", bucket], /say why with --reason/],
        [["quarantine", "list"], /name the bucket or directory with --bucket/],
        [["quarantine", "list", "--bucket", "Not_A_Bucket"], /--bucket "Not_A_Bucket" is neither/],
        [["quarantine", "list", "--bucket", bucket, "--bogus"], /Unknown option '--bogus'/],
        [["quarantine", "list", "--bucket", "file:/no/such/dir"], /^etl quarantine list: --bucket file:\/\/\/no\/such\/dir does not exist\n$/],
        [["quarantine", "purge"], /unknown command "purge"/],
      ];
      for (const [argv, message] of cases) {
        const result = await runEtl(argv, { DATABASE_URL: "" });
        expect(result.stderr).toMatch(message);
        expect(result.exitCode).toBe(2);
      }
      const help = await runEtl(["quarantine", "--help"], { DATABASE_URL: "" });
      expect({ exitCode: help.exitCode, stderr: help.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(help.stdout).toStartWith("usage: etl quarantine list --bucket B");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
