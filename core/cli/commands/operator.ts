import { parseArgs, type ParseArgsConfig } from "node:util";
import type { CliIo } from "../io";
import { loadConfig, type PlatformConfig } from "../../config";
import type { Sql } from "../../db/db";
import { durationMs } from "../../duration";
import { EtlError, errorMessage } from "../../errors";
import { isDatabaseError } from "../../db/database_error";
import { isMissingTable } from "../../db/missing_table";
import { isPermissionDenied, permissionDenial } from "../../db/permission_denied";
import { redactText, secretsFromEnv } from "../../redact";
import { isTransientError } from "../../http/transient";

/**
 * What the operator commands (`etl runs`, `etl dlq`) share: their flags parsed strictly (a bad
 * one is exit 2 naming it), the database opened from DATABASE_URL without migrating, and errors
 * turned into one line on stderr and the platform's exit codes.
 */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig["options"]>>(command: string, args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CommandUsageError(`${command}: ${errorMessage(error).replace(/\. To specify.*$/, "")}\nusage: ${usage}`);
  }
}

export class CommandUsageError extends EtlError {
  constructor(message: string) {
    super("usage", message);
  }
}

/**
 * Runs an operator command's body with the database: `needsDatabase` true requires DATABASE_URL,
 * "optional" opens it only when it is set, false never.
 */
export async function runOperatorCommand(
  command: string,
  io: CliIo,
  body: (sql: Sql | undefined, config: PlatformConfig) => Promise<number>,
  options: { needsDatabase: boolean | "optional" } = { needsDatabase: true },
): Promise<number> {
  const secrets = secretsFromEnv(io.env);
  let close: (() => Promise<void>) | undefined;
  try {
    const config = loadConfig(io.env, false);
    let sql: Sql | undefined;
    if (options.needsDatabase && (options.needsDatabase === true || config.databaseUrl)) {
      if (!config.databaseUrl) throw new CommandUsageError(`${command}: DATABASE_URL is not set; the run ledger and dead letters live in the platform's database`);
      const { openDatabase } = await import("../../db/db");
      const db = await openDatabase(config.databaseUrl, { applicationName: `etl:${command}`, max: 2, statementTimeoutMs: config.databaseTimeoutMs });
      close = db.close;
      sql = db.sql;
    }
    return await body(sql, config);
  } catch (error) {
    io.err(`${redactText(describe(command, error), secrets)}\n`);
    return exitCodeOf(error);
  } finally {
    await close?.().catch(() => undefined);
  }
}

function describe(command: string, error: unknown): string {
  if (isMissingTable(error)) return `${command}: this database has no platform tables yet; run \`etl migrate\` (${errorMessage(error)})`;
  let message = errorMessage(permissionDenial(error, undefined) ?? error);
  if (exitCodeOf(error) === 75) {
    // postgres.js says only "write CONNECTION_CLOSED <host:port>" of a connection the server dropped.
    if (isDatabaseError(error) && !(error instanceof EtlError)) message = `the database connection failed (${message})`;
    message += "; a transient failure: try again";
  }
  return message.startsWith(command) ? message : `${command}: ${message}`;
}

/**
 * 2 for what only the operator can fix, 75 for what may pass (a lost connection, S3 unreachable
 * or throttling: core/http/transient.ts, as the jobs decide), 1 for the rest. A connection terminated
 * under `etl runs` exited 1, so a wrapper retrying on 75 gave up.
 */
function exitCodeOf(error: unknown): number {
  if (isMissingTable(error) || isPermissionDenied(error)) return 2;
  if (error instanceof EtlError && (error.code === "usage" || error.code === "config")) return 2;
  return isTransientError(error) ? 75 : 1;
}

/** "24h", "7d", "30m", "90s" ago, or an ISO date / timestamp. */
export function parseSince(text: string, now = Date.now()): Date {
  const relative = durationMs(text);
  if (relative !== undefined) return new Date(now - relative);
  const date = new Date(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(date.getTime())) return date;
  throw new CommandUsageError(`--since must be a duration such as 30m, 24h or 7d, or a date such as 2026-11-01 (got "${text}")`);
}

export function parseLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new CommandUsageError(`--limit must be a whole number from 1 to 100000 (got "${text}")`);
  return n;
}

/** Rows as aligned columns under a header. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
