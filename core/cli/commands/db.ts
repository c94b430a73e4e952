import type { CliIo } from "../io";

const USAGE = `usage: etl db status|start|stop
  the local embedded PostgreSQL that DATABASE_URL=embedded:<dir> names (make demo's: embedded:.etl/pgdata).
  It is started by the first process that needs it and shared by every other one until stopped.
`;

/** `etl db status|start|stop`: the embedded server of DATABASE_URL=embedded:<dir> (core/db/embedded_postgres.ts). */
export async function dbCommand(args: string[], io: CliIo): Promise<number> {
  const [action, ...extra] = args;
  if (action === "--help" || action === "-h") {
    io.out(USAGE);
    return 0;
  }
  if (!action || !["status", "start", "stop"].includes(action) || extra.length) {
    io.err(`etl db: ${action ? `unknown action "${[action, ...extra].join(" ")}"` : "name an action"}\n${USAGE}`);
    return 2;
  }
  const url = io.env.DATABASE_URL ?? "";
  if (!url.startsWith("embedded:")) {
    io.err(`etl db: DATABASE_URL is ${url ? "not embedded:<dir>" : "not set"}; etl db manages only a local embedded server (DATABASE_URL=embedded:.etl/pgdata)\n`);
    return 2;
  }
  const dir = url.slice("embedded:".length);
  const { connectEmbeddedPostgres, embeddedStatus, stopEmbeddedPostgres } = await import("../../db/embedded_postgres");
  if (action === "start") await connectEmbeddedPostgres(dir);
  if (action === "stop") {
    io.out(stopEmbeddedPostgres(dir) ? `stopped the embedded PostgreSQL in ${embeddedStatus(dir).dataDir}\n` : `no embedded PostgreSQL runs in ${embeddedStatus(dir).dataDir}\n`);
    return 0;
  }
  const status = embeddedStatus(dir);
  io.out(status.running ? `running: pid ${status.pid}, 127.0.0.1:${status.port}, data ${status.dataDir}\n` : `stopped: data ${status.dataDir}\n`);
  return 0;
}
