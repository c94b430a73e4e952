import * as v from "valibot";
import { ConfigError } from "./errors";
import type { LogFormat, LogLevelName } from "./log";

/** The platform's environment, validated once at start. */
export interface PlatformConfig {
  logFormat: LogFormat;
  logLevel: LogLevelName;
  /** postgres://… or embedded:<data dir>; undefined until a job needs the database. */
  databaseUrl: string | undefined;
  s3Endpoint: string | undefined;
  awsRegion: string;
  /** Time to live of a lease (core/ledger/lease.ts); tests shorten it. */
  leaseTtlMs: number;
  /** Base of the S3 deadlines (core/storage/s3_request.ts); tests shorten it. */
  s3TimeoutMs: number;
  /** Longest a database statement may run; a query unanswered 5 s after it failed (core/db/query_deadline.ts). */
  databaseTimeoutMs: number;
  /** Where every run pushes its metrics at its end (core/metrics/pushgateway.ts); none when unset. */
  pushgatewayUrl: string | undefined;
  /** How often a run without a live progress line logs a job.progress event (core/runtime/progress.ts). */
  progressIntervalMs: number;
}

const optionalNonEmpty = <T extends v.GenericSchema<string>>(schema: T) =>
  v.optional(v.pipe(v.string(), v.trim(), v.transform((s) => (s === "" ? undefined : s)), v.optional(schema)));

/** A number of seconds within [min, max], fractions allowed (tests use short ones). */
const seconds = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+(\.\d+)?$/, "must be a number of seconds"), v.check((s) => Number(s) >= min && Number(s) <= max, `must be between ${min} and ${max} seconds`));

const EnvSchema = v.object({
  LOG_FORMAT: optionalNonEmpty(v.picklist(["json", "pretty"], "must be json or pretty")),
  LOG_LEVEL: optionalNonEmpty(v.picklist(["debug", "info", "warn", "error"], "must be debug, info, warn or error")),
  DATABASE_URL: optionalNonEmpty(
    v.pipe(
      v.string(),
      v.check(
        (s) => /^postgres(ql)?:\/\/[^\s]+$/.test(s) || /^embedded:.+/.test(s),
        "must be postgres://user:password@host:port/database or embedded:<data directory>",
      ),
      v.check(
        (s) => s.startsWith("embedded:") || isValidPostgresUrl(s),
        "is not a valid URL: the port must be a number, and special characters in the user or password percent-encoded",
      ),
    ),
  ),
  S3_ENDPOINT: optionalNonEmpty(v.pipe(v.string(), v.url("must be a URL such as http://127.0.0.1:9000"), v.regex(/^https?:\/\//, "must start with http:// or https://"))),
  AWS_REGION: optionalNonEmpty(v.pipe(v.string(), v.regex(/^[a-z0-9-]+$/, "must be a region name such as eu-west-1"))),
  AWS_DEFAULT_REGION: optionalNonEmpty(v.string()),
  PUSHGATEWAY_URL: optionalNonEmpty(v.pipe(v.string(), v.url("must be a URL such as http://pushgateway:9091"), v.regex(/^https?:\/\//, "must start with http:// or https://"))),
  ETL_LEASE_TTL_SECONDS: optionalNonEmpty(seconds(1, 3600)),
  ETL_PROGRESS_SECONDS: optionalNonEmpty(seconds(0.1, 86400)),
  S3_TIMEOUT_SECONDS: optionalNonEmpty(seconds(0.1, 3600)),
  DATABASE_TIMEOUT_SECONDS: optionalNonEmpty(seconds(0.1, 86400)),
});

export function loadConfig(env: Record<string, string | undefined>, stdoutIsTTY: boolean): PlatformConfig {
  const result = v.safeParse(EnvSchema, env);
  if (!result.success) {
    const issue = result.issues[0];
    const name = v.getDotPath(issue) ?? "environment";
    // The value itself is never echoed: DATABASE_URL carries a password.
    throw new ConfigError(`environment variable ${name} ${issue.message}`);
  }
  const e = result.output;
  return {
    logFormat: e.LOG_FORMAT ?? (stdoutIsTTY ? "pretty" : "json"),
    logLevel: e.LOG_LEVEL ?? "info",
    databaseUrl: e.DATABASE_URL,
    s3Endpoint: e.S3_ENDPOINT,
    awsRegion: e.AWS_REGION ?? e.AWS_DEFAULT_REGION ?? "us-east-1",
    // 30 s: a holder renews every 5 s and stops after 15 s without a renewal; a run killed
    // without releasing holds its work back for at most 30 s.
    leaseTtlMs: Number(e.ETL_LEASE_TTL_SECONDS ?? 30) * 1000,
    s3TimeoutMs: Number(e.S3_TIMEOUT_SECONDS ?? 15) * 1000,
    databaseTimeoutMs: Number(e.DATABASE_TIMEOUT_SECONDS ?? 30) * 1000,
    pushgatewayUrl: e.PUSHGATEWAY_URL,
    progressIntervalMs: Number(e.ETL_PROGRESS_SECONDS ?? 30) * 1000,
  };
}

/** postgres.js parses the URL with `new URL`, which throws "Invalid URL" (exit 1) on a bad port. */
function isValidPostgresUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.hostname !== "" && (url.port === "" || Number(url.port) > 0);
  } catch {
    return false;
  }
}

/** host:port/database, never the user or password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(DATABASE_URL)";
  }
}
