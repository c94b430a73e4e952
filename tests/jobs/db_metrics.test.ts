import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import postgres from "postgres";
import { queryShape } from "../../processors/observability/db_metrics";
import { createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";
import { find, scrape, startPushgateway, valueOf, type PushgatewayServer } from "../harness/pushgateway_server";

let gateway: PushgatewayServer;
let db: TestDatabase;
const roles: string[] = [];

beforeAll(async () => {
  gateway = await startPushgateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  // Roles belong to the cluster: their grants go with `drop owned` while the database is still there.
  for (const role of roles.splice(0)) await db.sql.unsafe(`drop owned by ${role}; drop role ${role}`);
  await db.drop();
});

const dbMetrics = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/db_metrics.ts"], argv, { DATABASE_URL: db.url, PUSHGATEWAY_URL: gateway.url, ...env });
const summaryOf = (run: Awaited<ReturnType<typeof dbMetrics>>) => run.events.find((e) => e.event === "db_metrics.summary") as Record<string, any>;

/** app.orders: 10 rows, then 3 updated and 2 deleted (5 dead tuples), autovacuum off so they stay. */
async function seedOrders(): Promise<void> {
  await db.sql.unsafe(`
    create schema app;
    create table app.orders (id int primary key, status text not null) with (autovacuum_enabled = false);
    create table app.customers (id int primary key, name text) with (autovacuum_enabled = false);
    insert into app.orders select i, 'new' from generate_series(1, 10) i;
    insert into app.customers select i, 'c' || i from generate_series(1, 4) i;`);
  const session = await db.sql.reserve();
  try {
    await session`update app.orders set status = 'paid' where id <= 3`;
    await session`delete from app.orders where id > 8`;
    // Statistics reach the shared views when a backend goes idle, up to a second later; PG15 can be asked now.
    await session`select pg_stat_force_next_flush()`;
  } finally {
    session.release();
  }
  await waitFor(async () => (await db.sql`select n_dead_tup::int as n from pg_stat_user_tables where relname = 'orders'`)[0]?.n === 5);
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(50);
  }
}

/** A login role that is not a superuser, with what the ledger needs on the platform's tables; with pg_monitor when asked. */
async function createRole(name: string, options: { pgMonitor: boolean }): Promise<string> {
  const role = `${name}_${db.name.slice(-6)}`;
  roles.push(role);
  await db.sql.unsafe(`
    create role ${role} login password 'role-pw-4411' nosuperuser;
    grant usage on schema public, app to ${role};
    grant select, insert, update, delete on all tables in schema public to ${role};
    grant usage on all sequences in schema public to ${role};
    ${options.pgMonitor ? `grant pg_monitor to ${role};` : ""}`);
  const url = new URL(db.url);
  url.username = role;
  url.password = "role-pw-4411";
  return url.toString();
}

test("queryShape masks literals, so a statement's values never reach the logs", () => {
  expect(queryShape("update app.users set password = 'hunter2', n = 42 where id = $1 and t1.x = 3.5e2")).toBe("update app.users set password = ?, n = ? where id = $1 and t1.x = ?");
  expect(queryShape("select $$it's a secret$$, $tag$x$tag$, 'a''b'")).toBe("select ?, ?, ?");
  expect(queryShape("select\n  1")).toBe("select ?");
  // An escape string's backslash-quoted quote, and a statement cut off inside a literal (pg_stat_activity keeps 1 kB).
  expect(queryShape("select E'it\\'s secret', e'x' where p = 'ok'")).toBe("select ?, ? where p = ?");
  expect(queryShape("insert into t values ('a', 'token-abc123")).toBe("insert into t values (?, ?");
  expect(queryShape(`select '${"x".repeat(400)}', ${"a, ".repeat(200)}b`)).toHaveLength(301);
});

test("tables of the application schemas and the platform: tuples, dead tuples, sizes and maintenance, as postgres_exporter's gauges", async () => {
  await seedOrders();
  await db.sql`vacuum app.customers`;
  await db.sql`analyze app.customers`;
  const frozenXidAge = async () => (await db.sql`select age(datfrozenxid)::float8 as age from pg_database where datname = current_database()`)[0]!.age as number;
  const ageBefore = await frozenXidAge();
  const run = await dbMetrics(["--schema", "app"]);
  const ageAfter = await frozenXidAge();
  expect(run.exitCode).toBe(0);

  const platformTables = (await db.sql`select relname from pg_stat_user_tables where relname like 'etl\\_%'`).map((r) => r.relname as string);
  expect(platformTables).toContain("etl_job_runs");
  expect(run.summary!.counts).toMatchObject({ tables: platformTables.length + 2, waitingLocks: 0 });

  const samples = await scrape(gateway);
  const orders = { job: "db_metrics", datname: db.name, schemaname: "app", relname: "orders" };
  const customers = { ...orders, relname: "customers" };
  expect(valueOf(samples, "pg_stat_user_tables_n_dead_tup", orders)).toBe(5);
  expect(valueOf(samples, "pg_stat_user_tables_n_live_tup", orders)).toBe(8);
  expect(valueOf(samples, "pg_stat_user_tables_last_vacuum", orders)).toBe(0);
  const [sizes] = await db.sql`select pg_table_size('app.orders')::float8 as "table", pg_indexes_size('app.orders')::float8 as "index", pg_database_size(current_database())::float8 as database`;
  expect(valueOf(samples, "pg_stat_user_tables_table_size_bytes", orders)).toBe(sizes!.table);
  expect(valueOf(samples, "pg_stat_user_tables_index_size_bytes", orders)).toBe(sizes!.index);
  const [vacuumed] = await db.sql`select extract(epoch from last_vacuum)::float8 as vacuum, extract(epoch from last_analyze)::float8 as analyze from pg_stat_user_tables where relname = 'customers'`;
  expect(vacuumed!.vacuum).toBeGreaterThan(Date.now() / 1000 - 60);
  expect(valueOf(samples, "pg_stat_user_tables_last_vacuum", customers)).toBe(vacuumed!.vacuum);
  expect(valueOf(samples, "pg_stat_user_tables_last_analyze", customers)).toBe(vacuumed!.analyze);
  expect(valueOf(samples, "pg_stat_user_tables_n_live_tup", { ...orders, schemaname: "public", relname: "etl_job_runs" })).toBeDefined();
  // Only the schemas asked for: the external schema's public.agency is not measured.
  expect(find(samples, "pg_stat_user_tables_n_live_tup", { job: "db_metrics", relname: "agency" })).toHaveLength(0);

  const database = { job: "db_metrics", datname: db.name };
  expect(valueOf(samples, "pg_database_size_bytes", database)).toBeGreaterThan(sizes!.database / 2);
  // The age grows with every transaction id handed out, the job's own included.
  const age = valueOf(samples, "pg_database_wraparound_age_datfrozenxid_seconds", database)!;
  expect(age).toBeGreaterThanOrEqual(ageBefore);
  expect(age).toBeLessThanOrEqual(ageAfter);
  expect(valueOf(samples, "etl_db_wraparound_margin_xids", database)).toBe(2 ** 31 - age);
  expect(find(samples, "pg_stat_activity_count", database).map((s) => s.labels.state).sort()).toEqual(["active", "disabled", "fastpath function call", "idle", "idle in transaction", "idle in transaction (aborted)"]);
  expect(find(samples, "pg_locks_count", database)).toHaveLength(9);
  expect(valueOf(samples, "etl_db_hidden_sessions", database)).toBe(0);
  expect(summaryOf(run).tables.find((t: any) => t.relname === "customers").lastVacuum).toBe(new Date(vacuumed!.vacuum * 1000).toISOString());
});

test("an open transaction and a lock wait show as the longest transaction, the longest query and waiting locks", async () => {
  await seedOrders();
  const holder = await db.sql.reserve();
  const waiter = await db.sql.reserve();
  try {
    await holder`begin`;
    await holder`update app.orders set status = 'held' where id = 1`;
    const blocked = waiter`update app.orders set status = 'secret-value-77' where id = 1`.execute();
    await waitFor(async () => (await db.sql`select count(*)::int as n from pg_locks where not granted`)[0]!.n > 0);
    await Bun.sleep(1500);
    const run = await dbMetrics(["--schema", "app"]);
    expect(run.exitCode).toBe(0);
    await holder`rollback`;
    await blocked;

    expect(run.summary!.counts).toMatchObject({ waitingLocks: 1 });
    const samples = await scrape(gateway);
    const database = { job: "db_metrics", datname: db.name };
    expect(valueOf(samples, "etl_db_locks_waiting", database)).toBe(1);
    expect(valueOf(samples, "etl_db_longest_lock_wait_seconds", database)).toBeGreaterThanOrEqual(1.5);
    expect(valueOf(samples, "etl_db_longest_transaction_seconds", database)).toBeGreaterThanOrEqual(1.5);
    expect(valueOf(samples, "etl_db_longest_query_seconds", database)).toBeGreaterThanOrEqual(1.5);
    expect(valueOf(samples, "pg_stat_activity_count", { ...database, state: "idle in transaction" })).toBe(1);
    expect(valueOf(samples, "pg_stat_activity_max_tx_duration", { ...database, state: "idle in transaction" })).toBeGreaterThanOrEqual(1.5);

    const summary = summaryOf(run);
    expect(summary.longestTransaction).toMatchObject({ state: "idle in transaction", query: "update app.orders set status = ? where id = ?" });
    expect(summary.longestQuery).toMatchObject({ state: "active", waitEventType: "Lock", query: "update app.orders set status = ? where id = ?" });
    expect(summary.locks.waiting).toEqual([{ mode: "sharelock", count: 1, longestWaitSeconds: expect.any(Number) }]);
    expect(run.stdout).not.toContain("secret-value-77");
  } finally {
    await holder`rollback`.catch(() => undefined);
    holder.release();
    waiter.release();
  }
});

test("no superuser needed: pg_monitor sees every session; without it other roles' sessions are counted hidden, with a warning", async () => {
  await seedOrders();
  // The platform's tables are created by a first run (migrations), as the owner would.
  expect((await dbMetrics(["--schema", "app"], { PUSHGATEWAY_URL: "" })).exitCode).toBe(0);
  const monitor = await createRole("etl_monitor", { pgMonitor: true });
  const plain = await createRole("etl_plain", { pgMonitor: false });
  const holder = await db.sql.reserve();
  try {
    await holder`begin`;
    await holder`select 1`;
    await Bun.sleep(1100);

    const seen = await dbMetrics(["--schema", "app"], { DATABASE_URL: monitor, PUSHGATEWAY_URL: "" });
    expect(seen.exitCode).toBe(0);
    expect(summaryOf(seen).sessions.hidden).toBe(0);
    expect(summaryOf(seen).longestTransaction).toMatchObject({ state: "idle in transaction", query: "select ?" });
    expect(summaryOf(seen).tables.find((t: any) => t.relname === "orders")).toMatchObject({ deadTuples: 5 });

    const partial = await dbMetrics(["--schema", "app"], { DATABASE_URL: plain, PUSHGATEWAY_URL: "" });
    expect(partial.exitCode).toBe(0);
    expect(summaryOf(partial).sessions.hidden).toBeGreaterThanOrEqual(1);
    expect(summaryOf(partial).longestTransaction).toBeNull();
    expect(summaryOf(partial).tables.find((t: any) => t.relname === "orders")).toMatchObject({ deadTuples: 5 });
    expect(partial.events.some((e) => e.level === "warn" && String(e.fix).includes("pg_monitor"))).toBe(true);
  } finally {
    await holder`rollback`;
    holder.release();
  }
});

test("bad flags, an unknown schema and a missing DATABASE_URL exit 2 naming what is wrong", async () => {
  const cases: Array<[string[], Record<string, string>, string]> = [
    [["--schema", "app; drop table x"], {}, "--schema"],
    [["--schema", ""], {}, "--schema"],
    [["--schema", "public,nosuch"], {}, "--schema nosuch: no such schema"],
    [[], { DATABASE_URL: "" }, "DATABASE_URL"],
  ];
  for (const [argv, env, message] of cases) {
    const run = await dbMetrics(argv, { PUSHGATEWAY_URL: "", ...env });
    expect({ argv, exitCode: run.exitCode }).toEqual({ argv, exitCode: 2 });
    expect(`${run.summary?.error ?? ""}${run.stderr}`).toContain(message);
  }
});
