import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { openDatabase, type Database } from "../../../core/db/db";
import { QueryDeadlineError } from "../../../core/db/query_deadline";
import { createTestDatabase, type TestDatabase } from "../../harness/fixtures";

let testDb: TestDatabase;
let db: Database;
beforeEach(async () => {
  testDb = await createTestDatabase();
  db = await openDatabase(testDb.url, { applicationName: "etl:test", max: 1, statementTimeoutMs: 500 });
});
afterEach(async () => {
  await db.close();
  await testDb.drop();
});

describe("database client", () => {
  test("a query on a connection that stays open but never answers (backend frozen) fails at its deadline, transiently", async () => {
    const { pid } = (await db.sql<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!;
    process.kill(pid, "SIGSTOP");
    const started = performance.now();
    let error: unknown;
    try {
      await db.sql`select 1`;
    } catch (caught) {
      error = caught;
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(error).toBeInstanceOf(QueryDeadlineError);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  test("a statement that runs too long is ended by the server", async () => {
    await expect(db.sql`select pg_sleep(2)`).rejects.toMatchObject({ code: "57014" });
  });

  test("fragments stay lazy and transactions keep working behind the deadline", async () => {
    const fragment = db.sql`41`;
    const [row] = await db.sql`select ${fragment} + 1 as n`;
    expect(row!.n).toBe(42);
    const [table] = await db.sql`select ${db.sql("relname")} from pg_class where relname = 'pg_class'`;
    expect(table!.relname).toBe("pg_class");
    expect(await db.sql.begin(async (tx) => (await tx`select 7 as n`)[0]!.n)).toBe(7);
    expect((await db.sql.unsafe("select 8 as n"))[0]!.n).toBe(8);
  });

  test("after the server ends the connection, the next query reconnects", async () => {
    const { pid } = (await db.sql<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!;
    await testDb.sql`select pg_terminate_backend(${pid})`;
    await Bun.sleep(50);
    const [row] = await db.sql`select 1 as n`.catch(() => db.sql`select 1 as n`);
    expect(row!.n).toBe(1);
  });
});
