/**
 * A lost database connection is transient in every job: the real server terminates the backend
 * (pg_terminate_backend, as porsager/postgres tests its reconnects) under the statement that
 * records a decrypted message, and the run retries it on a new connection or exits 75; it never
 * fails the message (dead letter, exit 3), which was decrypted fine.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { isDatabaseError } from "../../core/db/database_error";
import { withQueryDeadline } from "../../core/db/query_deadline";
import { isTransientError } from "../../core/http/transient";
import { demoPrivateKey, dropPartnerDelivery } from "../../scripts/demo/demo_partner";
import { createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";
import { buildZip } from "../harness/zip_builder";

let db: TestDatabase;
let lake: string;

beforeEach(async () => {
  db = await createTestDatabase();
  lake = mkdtempSync(join(tmpdir(), "etl-db-faults-"));
  expect((await runCommand(["scripts/etl.ts"], ["migrate"], { DATABASE_URL: db.url })).exitCode).toBe(0);
});
afterEach(async () => {
  await db.drop();
  rmSync(lake, { recursive: true, force: true });
});

/**
 * Makes the server terminate the backend that inserts into etl_processed_files, the first `times`
 * times: the insert is aborted with its connection. A sequence counts them, since a terminated
 * transaction keeps nothing it wrote.
 */
async function terminateProcessedFileInserts(times: number): Promise<void> {
  await db.sql.unsafe(`
    create sequence fault_terminations;
    create function fault_terminate_backend() returns trigger language plpgsql as $$
    begin
      if nextval('fault_terminations') <= ${times} then perform pg_terminate_backend(pg_backend_pid()); end if;
      return new;
    end $$;
    create trigger fault_terminate before insert on etl_processed_files for each row execute function fault_terminate_backend();`);
}

async function decryptDelivery() {
  const keyFile = join(lake, "partner-key.asc");
  const key = await dropPartnerDelivery(lake, "2026-11-05", await demoPrivateKey(keyFile));
  const run = await runCommand(["jobs/decrypt_files.ts"], ["--bucket", `file:${lake}`, "--prefix", "inbox/", "--destination", "decrypted/"], {
    DATABASE_URL: db.url,
    ETL_PGP_PRIVATE_KEY_FILE: keyFile,
    // A query on a connection that closed under it settles only at its deadline (core/db/query_deadline.ts).
    DATABASE_TIMEOUT_SECONDS: "2",
  });
  const deadLetters = await db.sql`select item_key from etl_dead_letters`;
  const processed = await db.sql`select key from etl_processed_files`;
  return { run, key, deadLetters: deadLetters.map((r) => r.item_key), processed: processed.map((r) => r.key) };
}

test("decrypt_files: a backend terminated under the record of a decrypted message is retried on a new connection", async () => {
  await terminateProcessedFileInserts(1);
  const { run, key, deadLetters, processed } = await decryptDelivery();
  expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { decrypted: 1, failed: 0 } });
  expect(processed).toEqual([key]);
  expect(deadLetters).toEqual([]);
});

test("decrypt_files: a backend terminated under every attempt ends the run as transient (75), the message left for the next run", async () => {
  await terminateProcessedFileInserts(1000);
  const { run, key, deadLetters, processed } = await decryptDelivery();
  expect(run.exitCode).toBe(75);
  expect(run.summary).toMatchObject({ status: "failed", exitCode: 75, counts: { decrypted: 0, failed: 0 } });
  expect(processed).toEqual([]);
  expect(deadLetters).toEqual([]);
  expect(existsSync(join(lake, key))).toBe(true);
});

test("unzip_files: a backend terminated under the record of an unzipped archive ends the run as transient (75), the archive left for the next run", async () => {
  await terminateProcessedFileInserts(1000);
  mkdirSync(join(lake, "inbox"));
  writeFileSync(join(lake, "inbox/a.zip"), buildZip([{ name: "a.csv", data: "id\n1\n" }]));
  const run = await runCommand(["jobs/unzip_files.ts"], ["--bucket", `file:${lake}`, "--prefix", "inbox/", "--destination", "unzipped/"], { DATABASE_URL: db.url, DATABASE_TIMEOUT_SECONDS: "2" });
  expect(run.summary).toMatchObject({ status: "failed", exitCode: 75, counts: { failed: 0 } });
  expect([...(await db.sql`select item_key from etl_dead_letters`)]).toEqual([]);
  expect(existsSync(join(lake, "inbox/a.zip"))).toBe(true);
  // What it had published of the archive was rolled back with it.
  expect(existsSync(join(lake, "unzipped")) ? readdirSync(join(lake, "unzipped"), { recursive: true }).filter((f) => String(f).endsWith(".csv")) : []).toEqual([]);
});

test("a connection reset under a query (read ECONNRESET) is a database error, and transient", async () => {
  // A server that resets the connection once the client speaks: the socket error postgres.js rejects with.
  const server = net.createServer((socket) => socket.once("data", () => socket.resetAndDestroy()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const sql = postgres(`postgres://etl:pw@127.0.0.1:${(server.address() as net.AddressInfo).port}/etl`, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    // A job's pool is the driver's behind the query deadline (core/db/db.ts), which marks what it rejects.
    const error = await withQueryDeadline(sql, 5_000)`select 1`.then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: "ECONNRESET", message: "read ECONNRESET" });
    expect({ database: isDatabaseError(error), transient: isTransientError(error) }).toEqual({ database: true, transient: true });
    // The same error from anything else (an S3 socket) is not the database's.
    expect(isDatabaseError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBe(false);
  } finally {
    await sql.end({ timeout: 1 });
    server.close();
  }
});
