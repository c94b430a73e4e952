/**
 * The operator commands (`etl runs`, `etl dlq`, `etl quarantine`) exit 75 on a transient failure,
 * as the jobs do: a connection the server drops under the command's statement, an S3 endpoint
 * that takes no connection. They exited 1 (a failure worth a look), with PostgreSQL's bare message.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { freePort } from "../../harness/processes";
import { createBucket, createTestDatabase, runEtl, type TestDatabase } from "../../harness/fixtures";

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase();
  expect((await runEtl(["migrate"], { DATABASE_URL: db.url })).exitCode).toBe(0);
});
afterEach(async () => {
  await db.drop();
});

/** The server terminates the backend of every statement that updates etl_job_runs (`etl runs` marks lost runs first). */
async function terminateLedgerUpdates(): Promise<void> {
  await db.sql.unsafe(`
    create function fault_terminate_backend() returns trigger language plpgsql as $$
    begin
      perform pg_terminate_backend(pg_backend_pid());
      return null;
    end $$;
    create trigger fault_terminate before update on etl_job_runs for each statement execute function fault_terminate_backend();`);
}

test("etl runs: a connection terminated under its statement is transient: exit 75, one line naming it, no stack trace", async () => {
  await terminateLedgerUpdates();
  const result = await runEtl(["runs"], { DATABASE_URL: db.url, DATABASE_TIMEOUT_SECONDS: "5" });
  expect({ exitCode: result.exitCode, stderr: result.stderr.trim() }).toMatchObject({
    exitCode: 75,
    stderr: expect.stringMatching(/^etl runs: the database connection failed \(.*CONNECTION_CLOSED.*\); a transient failure: try again$/),
  });
  expect(result.stderr.trim().split("\n")).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
});

test("etl quarantine list: an S3 endpoint where nothing listens is transient: exit 75", async () => {
  const bucket = await createBucket();
  const nothing = `http://127.0.0.1:${await freePort()}`;
  const result = await runEtl(["quarantine", "list", "--bucket", `s3://${bucket}`], { DATABASE_URL: "", S3_ENDPOINT: nothing, S3_TIMEOUT_SECONDS: "1" });
  expect({ exitCode: result.exitCode, stderr: result.stderr.trim() }).toMatchObject({
    exitCode: 75,
    stderr: expect.stringMatching(/^etl quarantine list: S3 ListObjectsV2 s3:\/\/test-[\w-]+ failed: the endpoint refused the connection \(check S3_ENDPOINT\) \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); a transient failure: try again$/),
  });
  expect(result.stderr).not.toMatch(/\n\s+at /);
});

test("etl runs: a database where nothing listens stays exit 75", async () => {
  const url = new URL(db.url);
  url.port = String(await freePort());
  const result = await runEtl(["runs"], { DATABASE_URL: url.toString() });
  expect(result.exitCode).toBe(75);
  expect(result.stderr.trim()).toMatch(/^etl runs: database .* unreachable: .*ECONNREFUSED/);
});
