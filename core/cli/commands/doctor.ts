import type { CliIo } from "../io";
import { loadConfig, type PlatformConfig } from "../../config";
import { errorMessage, UsageError } from "../../errors";
import type { Job } from "../../runtime/job";
import { loadMigrations } from "../../db/migrate";
import { redactText, secretsFromEnv } from "../../redact";
import { loadJobs, type Registry } from "../../runtime/registry";
import { jobSchedules } from "../../runtime/schedules";
import { parseBucketMap } from "../../storage/bucket_map";
import { bucketTargets, checkDatabase, checkObjectStores, checkPushgateway, fail, ok, urlPassword, type BucketTarget, type Check } from "./doctor_checks";
import { unknownJobMessage } from "../suggest";
import { CommandUsageError, parseCommandArgs } from "./operator";

/**
 * `etl doctor [job]`: checks what a run depends on (environment, database, buckets, Pushgateway,
 * clock), one line per check, each failure followed by its fix.
 *
 * Exit code: 0 when no check fails (warnings allowed); 2 when any failure is a configuration
 * problem (a bad variable, rejected credentials, a missing bucket or table, an unknown job); 75
 * when every failure is a dependency that did not answer. Configuration wins over unreachable: a
 * pod failing both ways needs a human before a retry can help, and 2 is the code Kubernetes does
 * not retry (podFailurePolicy FailJob).
 */
const USAGE = "etl doctor [job | job.schedule] [--bucket-map <bucket=location,...>] [--json]";

// Checks that read an invalid variable are left out: its own failure already says what to fix.
const VARIABLES_READ = {
  database: ["DATABASE_URL", "DATABASE_TIMEOUT_SECONDS"],
  s3: ["S3_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION", "S3_TIMEOUT_SECONDS"],
  pushgateway: ["PUSHGATEWAY_URL"],
};


export async function doctorCommand(args: string[], registry: Registry, io: CliIo): Promise<number> {
  let json: boolean;
  let jobs: Job[];
  let schedule: string | undefined;
  let bucketMap: string | undefined;
  let oneJob = false;
  try {
    const options = { json: { type: "boolean" }, "bucket-map": { type: "string" }, help: { type: "boolean", short: "h" } } as const;
    const { values, positionals } = parseCommandArgs("etl doctor", args, options, USAGE);
    if (values.help) {
      io.out(`usage: ${USAGE}\nchecks the environment, database, buckets and Pushgateway that runs need; with a job, that job's buckets\n` +
        `--bucket-map etl-lake=file:.etl/demo/lake,...  checks those buckets there instead (default: ETL_BUCKET_MAP), as a laptop runs them\n`);
      return 0;
    }
    bucketMap = values["bucket-map"] ?? io.env.ETL_BUCKET_MAP;
    if (positionals.length > 1) throw new CommandUsageError(`etl doctor: name at most one job\nusage: ${USAGE}`);
    json = values.json === true;
    const [name, scheduleName] = positionals[0]?.split(".", 2) ?? [];
    const entry = name === undefined ? undefined : registry.jobs.find((j) => j.name === name);
    oneJob = entry !== undefined;
    if (name !== undefined && !entry) {
      throw new CommandUsageError(unknownJobMessage("etl doctor", name, registry.jobs.map((j) => j.name)));
    }
    jobs = entry ? [await entry.load()] : (await loadJobs(registry.jobs)).filter((job) => jobSchedules(job).length);
    if (scheduleName !== undefined && !jobSchedules(jobs[0]!).some((s) => s.name === scheduleName)) {
      throw new CommandUsageError(`etl doctor: job ${name} has no schedule "${scheduleName}"; its schedules: ${jobSchedules(jobs[0]!).map((s) => s.name).join(", ") || "(none)"}`);
    }
    schedule = scheduleName;
  } catch (error) {
    if (!(error instanceof CommandUsageError)) throw error;
    io.err(`${error.message}\n`);
    return 2;
  }

  const { config, checks: environment, invalid } = checkEnvironment(io.env);
  const reads = (group: keyof typeof VARIABLES_READ) => !VARIABLES_READ[group].some((name) => invalid.has(name));
  const { targets: declared, checks: argumentChecks } = bucketTargets(jobs, io.env, schedule);
  let targets: BucketTarget[];
  try {
    targets = remapTargets(declared, bucketMap, oneJob);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`etl doctor: ${error.message}\n`);
    return 2;
  }
  const [database, objectStores, pushgateway] = await Promise.all([
    reads("database") ? checkDatabase(config.databaseUrl, () => registry.migrations?.() ?? loadMigrations()) : [],
    reads("s3") ? checkObjectStores(config, targets, bucketMap !== undefined) : [],
    reads("pushgateway") ? checkPushgateway(config.pushgatewayUrl).then((check) => [check]) : [],
  ]);
  const checks = [...environment, ...database, ...argumentChecks, ...objectStores, ...pushgateway];

  const secrets = [...secretsFromEnv(io.env), ...urlPassword(io.env.PUSHGATEWAY_URL)];
  const shown = checks.map((c) => ({ ...c, detail: redactText(c.detail, secrets), ...(c.fix ? { fix: redactText(c.fix, secrets) } : {}) }));
  io.out(json ? `${JSON.stringify(shown, null, 2)}\n` : formatChecks(shown));
  const failures = checks.filter((c) => c.status === "fail");
  if (failures.some((c) => c.failure === "config")) return 2;
  return failures.length ? 75 : 0;
}

/**
 * The declared buckets that `--bucket-map` reads from elsewhere (the demo's directories) moved
 * there. Checking every job, each name must be a bucket they declare; checking one job, the map
 * (ETL_BUCKET_MAP, the whole deployment's) may name buckets that job does not use.
 */
function remapTargets(targets: BucketTarget[], text: string | undefined, oneJob: boolean): BucketTarget[] {
  const s3Buckets = targets.flatMap((t) => (t.location.kind === "s3" ? [t.location.bucket] : []));
  const map = parseBucketMap(text, oneJob ? undefined : s3Buckets, "--bucket-map");
  return targets.map((target) => {
    const mapped = target.location.kind === "s3" ? map.get(target.location.bucket) : undefined;
    return mapped ? { location: mapped, usedBy: target.usedBy } : target;
  });
}

function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.check.length));
  return checks.map((c) => `${c.status.padEnd(4)}  ${c.check.padEnd(width)}  ${c.detail}\n${c.fix ? `${" ".repeat(6)}fix: ${c.fix}\n` : ""}`).join("");
}

/**
 * Validates the environment as every run does, reporting each invalid variable (loadConfig names
 * one at a time: it is dropped and the rest validated again), and the config without them.
 */
function checkEnvironment(env: Record<string, string | undefined>): { config: PlatformConfig; checks: Check[]; invalid: Set<string> } {
  const remaining = { ...env };
  const checks: Check[] = [];
  const invalid = new Set<string>();
  for (;;) {
    try {
      const config = loadConfig(remaining, false);
      if (!checks.length) checks.push(ok("environment", "every variable valid"));
      return { config, checks, invalid };
    } catch (error) {
      const name = /^environment variable (\w+) /.exec(errorMessage(error))?.[1];
      if (!name || invalid.has(name)) throw error;
      invalid.add(name);
      delete remaining[name];
      checks.push(fail("environment", errorMessage(error).replace(/^environment variable /, ""), `set ${name} correctly (see README.md, "Configuration")`, "config"));
    }
  }
}
