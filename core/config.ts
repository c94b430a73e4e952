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
}

const optionalNonEmpty = <T extends v.GenericSchema<string>>(schema: T) =>
  v.optional(v.pipe(v.string(), v.trim(), v.transform((s) => (s === "" ? undefined : s)), v.optional(schema)));

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
    ),
  ),
  S3_ENDPOINT: optionalNonEmpty(v.pipe(v.string(), v.url("must be a URL such as http://127.0.0.1:9000"), v.regex(/^https?:\/\//, "must start with http:// or https://"))),
  AWS_REGION: optionalNonEmpty(v.pipe(v.string(), v.regex(/^[a-z0-9-]+$/, "must be a region name such as eu-west-1"))),
  AWS_DEFAULT_REGION: optionalNonEmpty(v.string()),
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
  };
}
