import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { embeddedStatus, stopEmbeddedPostgres } from "../../../core/db/embedded_postgres";
import { runCommand, runEtl } from "../../harness/fixtures";

// DATABASE_URL=embedded:<dir>, as make demo and ./etl use it: one server shared by every process.
const scratch = mkdtempSync(join(tmpdir(), "etl-embedded-"));
const started: string[] = [];
afterAll(() => {
  for (const dir of started) {
    stopEmbeddedPostgres(dir);
    // Under root in an untraversable folder the data lives in /var/tmp, behind a symlink.
    if (existsSync(dir) && lstatSync(dir).isSymbolicLink()) rmSync(realpathSync(dir), { recursive: true, force: true });
  }
  rmSync(scratch, { recursive: true, force: true });
});

/** A process of its own that opens the database, writes a row and prints the server's port and pid. */
const PROBE = `
  const { openDatabase } = await import("./core/db/db.ts");
  const db = await openDatabase(process.env.DATABASE_URL, { applicationName: "etl:test" });
  await db.sql\`create table if not exists seen (n int)\`;
  await db.sql\`insert into seen values (1)\`;
  const [row] = await db.sql\`select current_setting('port') as port, pg_postmaster_start_time()::text as since\`;
  console.log(JSON.stringify(row));
  await db.close();
`;
const probe = (dir: string) => runCommand(["-e", PROBE], [], { DATABASE_URL: `embedded:${dir}` });

describe("the embedded PostgreSQL (DATABASE_URL=embedded:<dir>)", () => {
  test("processes started at once share one server; it outlives them, etl db stops it, the next one starts it again with the data", async () => {
    const dir = join(scratch, "shared", "pgdata");
    started.push(dir);
    const runs = await Promise.all(Array.from({ length: 5 }, () => probe(dir)));
    for (const run of runs) expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: "" });
    const servers = new Set(runs.map((run) => run.stdout.trim()));
    expect(servers.size).toBe(1);
    expect(existsSync(`${dir}.lock`)).toBe(false);

    const status = await runEtl(["db", "status"], { DATABASE_URL: `embedded:${dir}` });
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^running: pid \\d+, 127\\.0\\.0\\.1:${JSON.parse([...servers][0]!).port}, data ${dir}\\n$`));

    const stop = await runEtl(["db", "stop"], { DATABASE_URL: `embedded:${dir}` });
    expect(stop.stdout).toBe(`stopped the embedded PostgreSQL in ${dir}\n`);
    expect(embeddedStatus(dir).running).toBe(false);
    expect((await runEtl(["db", "stop"], { DATABASE_URL: `embedded:${dir}` })).stdout).toBe(`no embedded PostgreSQL runs in ${dir}\n`);

    const again = await probe(dir);
    expect(again.exitCode).toBe(0);
    expect(again.stdout.trim()).not.toBe([...servers][0]);
    const count = await runCommand(["-e", `
      const { openDatabase } = await import("./core/db/db.ts");
      const db = await openDatabase(process.env.DATABASE_URL, { applicationName: "etl:test" });
      console.log((await db.sql\`select count(*)::int as n from seen\`)[0].n);
      await db.close();`], [], { DATABASE_URL: `embedded:${dir}` });
    expect(count.stdout).toBe("6\n");
  });

  test("a server killed without a shutdown (stale postmaster.pid) is started again", async () => {
    const dir = join(scratch, "killed", "pgdata");
    started.push(dir);
    expect((await probe(dir)).exitCode).toBe(0);
    const { pid } = embeddedStatus(dir);
    process.kill(pid!, "SIGKILL");
    for (let i = 0; i < 50 && embeddedStatus(dir).running; i++) await Bun.sleep(100);
    expect(existsSync(join(dir, "postmaster.pid"))).toBe(true);
    const run = await probe(dir);
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(embeddedStatus(dir).pid).not.toBe(pid);
  });

  test.skipIf(process.getuid?.() !== 0)("as root, in a folder the postgres user cannot traverse (a 700 home), it runs from /var/tmp", async () => {
    const home = join(scratch, "home");
    const dir = join(home, "clone", ".etl", "pgdata");
    mkdirSync(join(home, "clone"), { recursive: true });
    chmodSync(home, 0o700);
    started.push(dir);
    const run = await probe(dir);
    expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(lstatSync(dir).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, "PG_VERSION"), "utf8")).toMatch(/^\d+/);
  });

  test("etl db: a URL that is not embedded, or an unknown action, is a usage error", async () => {
    const remote = await runEtl(["db", "stop"], { DATABASE_URL: "postgres://u:p@127.0.0.1:1/x" });
    expect(remote.exitCode).toBe(2);
    expect(remote.stderr).toContain("etl db manages only a local embedded server");
    expect(remote.stderr).not.toContain("u:p");
    const unknown = await runEtl(["db", "restart"], { DATABASE_URL: `embedded:${scratch}/x` });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toStartWith('etl db: unknown action "restart"');
  });
});
