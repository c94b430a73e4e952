import { join } from "node:path";
import postgres from "postgres";

const ROOT = join(import.meta.dir, "..", "..");

/**
 * A fresh database for a benchmark: the external schema fixture, what `seed` adds, and the
 * platform's migrations, applied outside the measured runs so the first one does not pay for them.
 */
export async function createBenchDatabase(adminUrl: string, name: string, seed: (sql: postgres.Sql) => Promise<void>): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${name}`);
  await admin.unsafe(`create database ${name}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql.unsafe(await Bun.file(join(ROOT, "tests/fixtures/external_schema.sql")).text());
  await seed(sql);
  await sql.end();
  const migrate = Bun.spawnSync(["bun", "scripts/etl.ts", "migrate"], { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, stdout: "pipe", stderr: "pipe" });
  if (migrate.exitCode !== 0) throw new Error(`etl migrate exited ${migrate.exitCode}\n${migrate.stderr.toString()}${migrate.stdout.toString().slice(-2000)}`);
  return { url, drop: async () => (await admin.unsafe(`drop database if exists ${name} with (force)`), await admin.end()) };
}
