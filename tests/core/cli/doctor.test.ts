import { CreateBucketCommand, DeleteBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, runEtl, s3, type TestDatabase } from "../../harness/fixtures";
import { TEST_PASSWORD } from "../../harness/postgres_server";
import { freePort } from "../../harness/processes";
import { startPushgateway, type PushgatewayServer } from "../../harness/pushgateway_server";

// The scheduled jobs name these (get_s3_files, ingest_api); doctor without a job checks them all.
const SCHEDULED_BUCKETS = ["etl-attachments", "etl-attachments-archive", "etl-lake"];

let gateway: PushgatewayServer;
let db: TestDatabase | undefined;

async function createBucketIfMissing(name: string): Promise<void> {
  await s3()
    .send(new CreateBucketCommand({ Bucket: name }))
    .catch((error: { name?: string }) => {
      if (error.name !== "BucketAlreadyOwnedByYou" && error.name !== "BucketAlreadyExists") throw error;
    });
}

beforeAll(async () => {
  gateway = await startPushgateway();
  for (const bucket of SCHEDULED_BUCKETS) await createBucketIfMissing(bucket);
});

afterAll(async () => {
  await gateway.stop();
});

afterEach(async () => {
  await db?.drop();
  db = undefined;
});

/** The check lines of doctor's text output (fix lines are indented under them). */
const checkLines = (stdout: string) => stdout.split("\n").filter((line) => line && !line.startsWith(" "));
// Isolates one failure: no database and no gateway are warnings or ok lines, never failures.
const WITHOUT_DATABASE = { DATABASE_URL: "", PUSHGATEWAY_URL: "" };

describe("etl doctor", () => {
  test("a healthy environment: every check ok, exit 0, in text and JSON", async () => {
    db = await createTestDatabase();
    expect((await runEtl(["migrate"], { DATABASE_URL: db.url })).exitCode).toBe(0);
    const env = { DATABASE_URL: db.url, PUSHGATEWAY_URL: gateway.url };

    const run = await runEtl(["doctor"], env);
    expect(run.exitCode).toBe(0);
    const lines = checkLines(run.stdout);
    for (const line of lines) expect(line).toMatch(/^ok {4}/);
    for (const check of ["environment", "database", "migrations", "external tables", "clock", "s3 credentials", ...SCHEDULED_BUCKETS.map((b) => `s3://${b} `), "pushgateway"]) {
      expect(lines.some((line) => line.includes(check))).toBe(true);
    }
    expect(run.stdout).not.toContain("fix:");
    expect(run.stdout).not.toContain(TEST_PASSWORD);

    const json = await runEtl(["doctor", "--json"], env);
    expect(json.exitCode).toBe(0);
    const checks = JSON.parse(json.stdout) as Array<{ check: string; status: string }>;
    expect(checks.map((c) => c.check)).toEqual(["environment", "database", "migrations", "external tables", "clock", "s3 credentials", ...SCHEDULED_BUCKETS.map(() => "bucket"), "pushgateway"]);
    expect(checks.every((c) => c.status === "ok")).toBe(true);
  });

  test("a wrong database password: fail with its fix, exit 2, no password printed", async () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.password = "wrong-password-4711";
    const run = await runEtl(["doctor"], { DATABASE_URL: url.toString(), PUSHGATEWAY_URL: "" });
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toMatch(/^fail {2}database +.*rejected the credentials in DATABASE_URL/m);
    expect(run.stdout).toContain("fix: set the user and password in DATABASE_URL");
    expect(run.stdout + run.stderr).not.toContain("wrong-password-4711");
  });

  test("a database port nobody listens on: unreachable, exit 75", async () => {
    const run = await runEtl(["doctor"], { DATABASE_URL: `postgres://postgres:${TEST_PASSWORD}@127.0.0.1:${await freePort()}/postgres`, PUSHGATEWAY_URL: "" });
    expect(run.exitCode).toBe(75);
    expect(run.stdout).toMatch(/^fail {2}database +127\.0\.0\.1:\d+\/postgres unreachable/m);
    expect(run.stdout).toContain("fix: start the server, or correct the host and port in DATABASE_URL");
    expect(run.stdout).not.toContain(TEST_PASSWORD);
  });

  test("an unmigrated database: migrations pending is a warning, exit 0", async () => {
    db = await createTestDatabase();
    const run = await runEtl(["doctor"], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^warn {2}migrations +\d+ of \d+ pending: 0001_dead_letters/m);
    expect(run.stdout).toContain("fix: run `etl migrate`");
    expect(run.stdout).toMatch(/^ok {4}external tables +agency, attachment present/m);
  });

  test("an external table missing: fail naming it, exit 2", async () => {
    db = await createTestDatabase();
    await db.sql`drop table attachment`;
    const run = await runEtl(["doctor"], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toMatch(/^fail {2}external tables +missing: attachment /m);
    expect(run.stdout).toContain("fix: apply the etl-database-schema package's migrations");
  });

  test("a scheduled bucket that does not exist: fail naming it, exit 2", async () => {
    await s3().send(new DeleteBucketCommand({ Bucket: "etl-attachments-archive" }));
    try {
      const run = await runEtl(["doctor", "get_s3_files"], WITHOUT_DATABASE);
      expect(run.exitCode).toBe(2);
      expect(run.stdout).toMatch(/^fail {2}bucket +s3:\/\/etl-attachments-archive does not exist .*\(get_s3_files --destination-bucket\)/m);
      expect(run.stdout).toMatch(/^ok {4}bucket +s3:\/\/etl-attachments reachable/m);
      expect(run.stdout).toContain("fix: create the bucket, or correct get_s3_files --destination-bucket");
    } finally {
      await createBucketIfMissing("etl-attachments-archive");
    }
  });

  test("a Pushgateway port nobody listens on: unreachable, exit 75", async () => {
    const run = await runEtl(["doctor"], { DATABASE_URL: "", PUSHGATEWAY_URL: `http://127.0.0.1:${await freePort()}` });
    expect(run.exitCode).toBe(75);
    expect(run.stdout).toMatch(/^fail {2}pushgateway +http:\/\/127\.0\.0\.1:\d+ unreachable/m);
    expect(run.stdout).toContain("fix: start the Pushgateway, or correct the host and port in PUSHGATEWAY_URL");
  });

  test("an invalid LOG_LEVEL: fail naming the variable, exit 2", async () => {
    const run = await runEtl(["doctor"], { ...WITHOUT_DATABASE, LOG_LEVEL: "loud" });
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toMatch(/^fail {2}environment +LOG_LEVEL must be debug, info, warn or error/m);
    expect(run.stdout).toContain("fix: set LOG_LEVEL correctly");
    // The other checks still run.
    expect(run.stdout).toMatch(/^ok {4}bucket +s3:\/\/etl-attachments reachable/m);
  });

  test("a job's file: location from its environment variable; only that job's buckets are checked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etl-doctor-"));
    try {
      const present = await runEtl(["doctor", "sync_dags"], { ...WITHOUT_DATABASE, DAG_BUCKET: `file:${dir}` });
      expect(present.exitCode).toBe(0);
      expect(present.stdout).toMatch(new RegExp(`^ok {4}bucket +file://${dir} writable \\(sync_dags --dag-bucket\\)`, "m"));
      expect(present.stdout).not.toContain("etl-attachments");

      const missing = await runEtl(["doctor", "sync_dags"], { ...WITHOUT_DATABASE, DAG_BUCKET: `file:${dir}/missing` });
      expect(missing.exitCode).toBe(2);
      expect(missing.stdout).toMatch(/^fail {2}bucket +file:\/\/.*\/missing does not exist/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("local mode (the demo's): ETL_BUCKET_MAP or --bucket-map checks the deployment's buckets in directories, no S3 credentials needed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etl-doctor-local-"));
    try {
      const map = SCHEDULED_BUCKETS.map((bucket) => `${bucket}=file:${join(dir, bucket)}`).join(",");
      for (const bucket of SCHEDULED_BUCKETS.slice(0, 2)) mkdirSync(join(dir, bucket));
      // No credentials at all: a laptop after make demo.
      const laptop = { ...WITHOUT_DATABASE, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "", AWS_PROFILE: "no-such-profile", ETL_BUCKET_MAP: map };
      const missing = await runEtl(["doctor"], laptop);
      expect(missing.exitCode).toBe(2);
      expect(missing.stdout).toMatch(/^ok {4}s3 credentials +not needed/m);
      expect(missing.stdout).toMatch(new RegExp(`^fail {2}bucket +file://${dir}/etl-lake does not exist \\(.*ingest_api --bucket`, "m"));
      expect(missing.stdout).not.toContain("s3://");

      mkdirSync(join(dir, "etl-lake"));
      const green = await runEtl(["doctor"], laptop);
      expect(green.exitCode).toBe(0);
      expect(checkLines(green.stdout).filter((line) => line.startsWith("bucket", 6))).toHaveLength(3);
      // The flag wins over the variable; one job may be given the whole deployment's map.
      const flag = await runEtl(["doctor", "ingest_api", "--bucket-map", map], { ...laptop, ETL_BUCKET_MAP: "" });
      expect(flag.exitCode).toBe(0);
      expect(flag.stdout).toMatch(new RegExp(`^ok {4}bucket +file://${dir}/etl-lake writable \\(ingest_api --bucket\\)`, "m"));

      const unknown = await runEtl(["doctor", "--bucket-map", "etl-laek=file:/tmp"], laptop);
      expect(unknown.exitCode).toBe(2);
      expect(unknown.stderr).toBe("etl doctor: --bucket-map etl-laek: no declared bucket of that name; they are etl-attachments, etl-attachments-archive, etl-lake\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unknown job: exit 2 naming it", async () => {
    const run = await runEtl(["doctor", "no_such_job"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('unknown job "no_such_job"');
    expect(run.stdout).toBe("");
  });
});
