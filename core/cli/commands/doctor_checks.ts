import { constants } from "node:fs";
import { jobSchedules, scheduleId } from "../../runtime/schedules";
import { access, stat } from "node:fs/promises";
import { kebabCase, validateArg } from "../../runtime/args";
import type { PlatformConfig } from "../../config";
import type { Sql } from "../../db/db";
import { EtlError, TransientError, errorMessage } from "../../errors";
import type { Job } from "../../runtime/job";
import { pendingMigrations, type Migration } from "../../db/migrate";
import { isLocation, locationUrl, type Location } from "../../storage/object_store";
import { ObjectStores } from "../../storage/object_stores";
import { S3RequestError } from "../../storage/s3_request";
import { isTransientError } from "../../http/transient";

/** The checks of `etl doctor` (core/cli/commands/doctor.ts): database, object stores, Pushgateway. */

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to set or run; every failure has one. */
  fix?: string;
  /** config: exit 2; unreachable: exit 75. */
  failure?: "config" | "unreachable";
}

export const ok = (check: string, detail: string): Check => ({ check, status: "ok", detail });
export const warn = (check: string, detail: string, fix?: string): Check => ({ check, status: "warn", detail, ...(fix ? { fix } : {}) });
export const fail = (check: string, detail: string, fix: string, failure: "config" | "unreachable"): Check => ({ check, status: "fail", detail, fix, failure });

/** A failure's kind from its error: a dependency that did not answer, or anything retrying cannot mend. */
export function failureOf(error: unknown): "config" | "unreachable" {
  return isTransientError(error) ? "unreachable" : "config";
}


// openDatabase retries an unreachable server five times (up to 7.5 s of jittered backoff); the
// budget stops it at 10 s instead of a minute. Measured here: a refused port fails in 1 to 8 s,
// a host that drops packets in 12 s (one attempt runs into its 10 s query deadline, 5 s
// statement time plus 5, then closing waits 2 s). S3, credentials and the gateway get one 5 s request each.
const DATABASE_BUDGET_MS = 10_000;
const DATABASE_STATEMENT_MS = 5_000;
const S3_TIMEOUT_MS = 5_000;
const CREDENTIALS_TIMEOUT_MS = 5_000;
const PUSHGATEWAY_TIMEOUT_MS = 5_000;
// Leases and the run ledger use the database's clock; logs, logical dates and `etl runs`
// durations use this host's. 5 s apart shows when reading a log against the ledger; a minute is
// two lease lifetimes (30 s), enough to misread which run held a lease when. A failing clock
// counts as configuration (exit 2): waiting does not mend it.
const SKEW_WARN_MS = 5_000;
const SKEW_FAIL_MS = 60_000;
// The external schema's tables (DESIGN.md, "Data contracts") that jobs read.
const EXTERNAL_TABLES = ["agency", "attachment"];

export async function checkDatabase(url: string | undefined, migrations: () => Promise<Migration[]>): Promise<Check[]> {
  if (!url) return [warn("database", "DATABASE_URL is not set: jobs that need the database will exit 2", "set DATABASE_URL to the platform database's postgres:// URL (README.md, \"Configuration\")")];
  const where = describeDatabase(url);
  const { openDatabase } = await import("../../db/db");
  const started = performance.now();
  let db: Awaited<ReturnType<typeof openDatabase>>;
  try {
    db = await openDatabase(url, { applicationName: "etl:doctor", max: 1, statementTimeoutMs: DATABASE_STATEMENT_MS, signal: AbortSignal.timeout(DATABASE_BUDGET_MS) });
  } catch (error) {
    return [databaseFailure(where, error)];
  }
  const connectMs = Math.round(performance.now() - started);
  try {
    const version = await db.sql`show server_version`.then(([row]) => `PostgreSQL ${row!.server_version}, `, () => "");
    const checks = [ok("database", `${where} reachable, credentials accepted (${version}${connectMs} ms)`)];
    const reachableFix = `check that ${where} stays up, then run etl doctor again`;
    const guarded = async (name: string, check: () => Promise<Check>, fix: string) =>
      check().catch((error: unknown) => fail(name, errorMessage(error), failureOf(error) === "unreachable" ? reachableFix : fix, failureOf(error)));
    checks.push(await guarded("migrations", async () => checkMigrations(db.sql, await migrations()), "grant the role DATABASE_URL names read access to etl_schema_migrations"));
    checks.push(await guarded("external tables", () => checkExternalTables(db.sql), "grant the role DATABASE_URL names access to the application's schema"));
    checks.push(await guarded("clock", () => checkClock(db.sql), reachableFix));
    return checks;
  } finally {
    await db.close().catch(() => undefined);
  }
}

export function databaseFailure(where: string, error: unknown): Check {
  const detail = errorMessage(error).replace(/^database /, "");
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  if (cause === "28P01" || cause === "28000") return fail("database", detail, "set the user and password in DATABASE_URL to a role this server accepts (special characters percent-encoded)", "config");
  if (cause === "3D000") return fail("database", detail, "create the database, or correct its name in DATABASE_URL", "config");
  if (failureOf(error) === "unreachable") {
    return fail("database", detail.includes("unreachable") ? detail : `${where} unreachable: ${detail}`, `start the server, or correct the host and port in DATABASE_URL; check the network path to ${where} (firewall, security group, NetworkPolicy)`, "unreachable");
  }
  return fail("database", detail, "correct DATABASE_URL", "config");
}

export async function checkMigrations(sql: Sql, migrations: Migration[]): Promise<Check> {
  const pending = await pendingMigrations(sql, migrations);
  if (pending.length) {
    return warn("migrations", `${pending.length} of ${migrations.length} pending: ${pending.map((m) => m.version).join(", ")}`, "run `etl migrate` (a job's first connect applies them too)");
  }
  const known = new Set(migrations.map((m) => m.version));
  const applied = migrations.length ? (await sql`select version from etl_schema_migrations order by version`).map((r) => r.version as string) : [];
  const unknown = applied.filter((version) => !known.has(version));
  if (unknown.length) return warn("migrations", `applied by a newer etl than this one: ${unknown.join(", ")}`, "run the etl version that applied them");
  return ok("migrations", `all ${migrations.length} applied${migrations.length ? ` (latest ${migrations.at(-1)!.version})` : ""}`);
}

export async function checkExternalTables(sql: Sql): Promise<Check> {
  const missing = (await sql`select name from unnest(${EXTERNAL_TABLES}::text[]) as name where to_regclass(name) is null`).map((r) => r.name as string);
  if (!missing.length) return ok("external tables", `${EXTERNAL_TABLES.join(", ")} present`);
  const [{ search_path }] = (await sql`show search_path`) as unknown as [{ search_path: string }];
  return fail(
    "external tables",
    `missing: ${missing.join(", ")} (search_path ${search_path})`,
    "apply the etl-database-schema package's migrations to this database (locally: psql -f tests/fixtures/external_schema.sql)",
    "config",
  );
}

/** The database's clock against this host's, taken at the midpoint of the round trip. */
export async function checkClock(sql: Sql): Promise<Check> {
  const sent = Date.now();
  const [row] = await sql`select clock_timestamp() as now`;
  const received = Date.now();
  const skewMs = (row!.now as Date).getTime() - (sent + received) / 2;
  const detail = `database clock ${Math.abs(skewMs) < 50 ? "agrees with this host's" : `${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs > 0 ? "ahead of" : "behind"} this host's`} (round trip ${received - sent} ms)`;
  const fix = "synchronise the clocks of this host and the database server (NTP, chrony)";
  if (Math.abs(skewMs) > SKEW_FAIL_MS) return fail("clock", detail, fix, "config");
  if (Math.abs(skewMs) > SKEW_WARN_MS) return warn("clock", detail, fix);
  return ok("clock", detail);
}

/** host:port/database, never the user or password. */
export function describeDatabase(url: string): string {
  if (url.startsWith("embedded:")) return url;
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}${u.pathname}`;
}

export interface BucketTarget {
  location: Location;
  /** "get_s3_files --source-bucket", one per argument that names it. */
  usedBy: string[];
}

/**
 * The locations the jobs' arguments name, per schedule, as a run would get them: the schedule's value, else
 * the argument's environment variable, else its default. An argument is a location when its own
 * schema parses it into one (arg.location); a value its schema refuses is a failure here already.
 */
export function bucketTargets(jobs: Job[], env: Record<string, string | undefined>, onlySchedule?: string): { targets: BucketTarget[]; checks: Check[] } {
  const targets = new Map<string, BucketTarget>();
  const checks: Check[] = [];
  for (const job of jobs) {
    // Each schedule is a target of its own; a job named without one, its environment and defaults.
    const schedules = jobSchedules(job).filter((s) => onlySchedule === undefined || s.name === onlySchedule);
    for (const schedule of schedules.length ? schedules : [undefined]) {
      const id = schedule ? scheduleId(job.name, schedule.name) : job.name;
      for (const [key, spec] of Object.entries(job.args)) {
        if (spec.kind !== "value") continue;
        const scheduled = schedule?.args[key];
        const fromEnv = scheduled === undefined ? spec.fromEnv?.(env) : undefined;
        const raw = scheduled ?? fromEnv ?? spec.default;
        if (raw === undefined) continue;
        const flag = `${id} --${kebabCase(key)}`;
        const result = validateArg(spec, String(raw));
        if (!result.ok) {
          const source = scheduled !== undefined ? `the schedule in jobs/${job.name}.ts` : fromEnv !== undefined ? spec.envHelp! : `the default in jobs/${job.name}.ts`;
          checks.push(fail("arguments", `${flag} ${result.reason} (from ${source})`, `correct ${source}`, "config"));
          continue;
        }
        if (!isLocation(result.value)) continue;
        const url = locationUrl(result.value);
        const target = targets.get(url) ?? { location: result.value, usedBy: [] };
        target.usedBy.push(flag);
        targets.set(url, target);
      }
    }
  }
  return { targets: [...targets.values()], checks };
}

/** `mapped`: the buckets were moved by --bucket-map; with none left on S3, credentials are not needed. */
export async function checkObjectStores(config: PlatformConfig, targets: BucketTarget[], mapped = false): Promise<Check[]> {
  const s3Targets = targets.filter((t) => t.location.kind === "s3");
  const checks: Check[] = [];
  if (!targets.length) checks.push(ok("buckets", "no bucket in the jobs' arguments to check"));
  const credentials = mapped && !s3Targets.length
    ? ok("s3 credentials", "not needed: --bucket-map (or ETL_BUCKET_MAP) reads every bucket from a directory")
    : await checkS3Credentials(config, s3Targets.length);
  checks.push(credentials);
  // Two sends at most per bucket check, so the report comes within about 12 s whatever S3 does.
  const stores = new ObjectStores({ s3Endpoint: config.s3Endpoint, awsRegion: config.awsRegion, s3TimeoutMs: Math.min(config.s3TimeoutMs, S3_TIMEOUT_MS), s3Retry: { attempts: 2, timedOutAttempts: 2 } });
  try {
    const usable = targets.filter((t) => t.location.kind === "file" || credentials.status === "ok");
    checks.push(...(await Promise.all(usable.map((target) => checkBucket(stores, target, config.s3Endpoint)))));
  } finally {
    await stores.close();
  }
  return checks;
}

/** The AWS SDK's default chain (environment, profile, web identity, container, instance), as a run's client resolves it. */
export async function checkS3Credentials(config: PlatformConfig, buckets: number): Promise<Check> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  const client = new S3Client({ region: config.awsRegion, endpoint: config.s3Endpoint });
  let timer: Timer | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TransientError(`no credentials within ${CREDENTIALS_TIMEOUT_MS / 1000} s`)), CREDENTIALS_TIMEOUT_MS);
    });
    const credentials = await Promise.race([client.config.credentials(), timeout]);
    const expiresInMin = credentials.expiration ? Math.round((credentials.expiration.getTime() - Date.now()) / 60_000) : undefined;
    const expiry = expiresInMin === undefined ? "" : `, expiring in ${expiresInMin} min`;
    // An AWS access key id (20 characters) is not a secret, but its tail is enough to tell which one.
    const key = credentials.accessKeyId.length >= 16 ? ` (access key id ending ${credentials.accessKeyId.slice(-4)}${expiry})` : expiry && ` (${expiry.slice(2)})`;
    return ok("s3 credentials", `resolved${key}, region ${config.awsRegion}, ${config.s3Endpoint ?? "AWS"}`);
  } catch (error) {
    const detail = `not resolved: ${errorMessage(error)}`;
    const fix = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity (IRSA: the service account's eks.amazonaws.com/role-arn)";
    if (!buckets) return warn("s3 credentials", `${detail}; jobs given an S3 bucket will exit 2`, fix);
    return fail("s3 credentials", `${detail}; ${buckets} S3 bucket${buckets === 1 ? "" : "s"} not checked`, fix, failureOf(error));
  } finally {
    clearTimeout(timer);
    client.destroy();
  }
}

export async function checkBucket(stores: ObjectStores, target: BucketTarget, endpoint: string | undefined): Promise<Check> {
  const url = locationUrl(target.location);
  const users = `(${target.usedBy.join(", ")})`;
  if (target.location.kind === "file") return checkDirectory(target.location.dir, url, users);
  const store = await stores.open(target.location);
  try {
    if (await store.exists()) return ok("bucket", `${url} reachable ${users}`);
    return fail("bucket", `${url} does not exist${endpoint ? ` on ${endpoint}` : ""} ${users}`, `create the bucket, or correct ${target.usedBy.join(", ")}`, "config");
  } catch (error) {
    const failure = failureOf(error);
    if (failure === "unreachable") {
      return fail("bucket", `${url} unreachable: ${errorMessage(error)} ${users}`, `check ${endpoint ? `S3_ENDPOINT (${endpoint}) and that the server is up` : "the network path to S3 (proxy, VPC endpoint, egress rules)"}`, failure);
    }
    const fix = error instanceof S3RequestError && error.status === 403
      ? `grant this identity s3:ListBucket on ${target.location.bucket} (and the object permissions the job needs)`
      : error instanceof EtlError && error.code === "config" ? "correct the AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE)" : `correct ${target.usedBy.join(", ")}`;
    return fail("bucket", `${errorMessage(error)} ${users}`, fix, failure);
  }
}

export async function checkDirectory(dir: string, url: string, users: string): Promise<Check> {
  const stats = await stat(dir).catch(() => undefined);
  if (!stats?.isDirectory()) {
    return fail("bucket", `${url} ${stats ? "is not a directory" : "does not exist"} ${users}`, `create it (mkdir -p ${dir}), or correct the argument`, "config");
  }
  const writable = await access(dir, constants.W_OK).then(() => true, () => false);
  if (!writable) return fail("bucket", `${url} is not writable by uid ${process.getuid?.()} ${users}`, `make ${dir} writable by this user, or mount it read-write`, "config");
  return ok("bucket", `${url} writable ${users}`);
}

/** GET <url>/-/ready, with the URL's user and password sent as Basic auth (as pushes send them). */
export async function checkPushgateway(base: string | undefined): Promise<Check> {
  if (!base) return ok("pushgateway", "PUSHGATEWAY_URL not set: runs do not push metrics");
  const url = new URL(base);
  const headers: Record<string, string> = {};
  if (url.username || url.password) headers.authorization = `Basic ${btoa(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`)}`;
  url.username = url.password = url.search = url.hash = "";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/-/ready`;
  const where = url.origin + url.pathname.replace(/\/-\/ready$/, "");
  const unreachableFix = "start the Pushgateway, or correct the host and port in PUSHGATEWAY_URL (until then runs warn instead of pushing; their exit codes do not change)";
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(PUSHGATEWAY_TIMEOUT_MS) });
    await response.arrayBuffer();
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    const code = (error as { code?: string }).code;
    const reason = timedOut ? `no answer within ${PUSHGATEWAY_TIMEOUT_MS / 1000} s` : `${errorMessage(error)}${code && !errorMessage(error).includes(code) ? ` (${code})` : ""}`;
    return fail("pushgateway", `${where} unreachable: ${reason}`, unreachableFix, "unreachable");
  }
  if (response.ok) return ok("pushgateway", `${where} ready`);
  const answer = `${where} answered ${response.status} ${response.statusText}`.trim();
  if (response.status === 401 || response.status === 403) return fail("pushgateway", answer, "set the user and password the gateway expects in PUSHGATEWAY_URL (http://user:password@host:9091)", "config");
  if (response.status >= 500) return fail("pushgateway", `${answer}: not ready`, unreachableFix, "unreachable");
  return fail("pushgateway", `${answer}: no Pushgateway at this URL`, "set PUSHGATEWAY_URL to the gateway's base URL, e.g. http://pushgateway:9091", "config");
}

export function urlPassword(url: string | undefined): string[] {
  try {
    const password = url ? new URL(url).password : "";
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}
