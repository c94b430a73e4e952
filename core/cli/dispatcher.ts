/**
 * The `etl` dispatcher: lists and runs the jobs of the registry it is given, and the commands of
 * core/cli/commands. It imports no job: its entry gives it what to serve (scripts/etl.ts from
 * source, by glob; a compiled binary's generated entry, by list), with the commands whose code
 * lives outside core (`etl quarantine`, `etl manifests`, `etl dags`, `etl publish-dags`).
 */
import { loadJobs } from "../runtime/registry";
import { jobSchedules } from "../runtime/schedules";
import { closestName, unknownJobMessage } from "./suggest";
import type { CliIo, DispatcherRegistry } from "./io";

const USAGE = `etl: run the platform's batch jobs

usage:
  etl list [--json]              every job with lane, description and schedule
  etl run <job> [--] [args...]   run a job
  etl <job> [args...]            the same
  etl <job> --help               a job's flags, defaults and description
  etl migrate                    apply the platform's migrations (idempotent)
  etl runs [--job J] [--status S] [--since 24h] [--limit N] [-o wide|json]
                                 the run ledger, newest first; etl runs show <run-id prefix> for one run
  etl dlq list [--job J] [--all] [--limit N] [-o wide|json]
                                 dead letters: items jobs could not process
  etl dlq replay <job> [--item KEY ...]
                                 run those items again through the job, with the failed run's arguments
  etl dlq discard <job> --item KEY --reason TEXT
                                 close dead letters that will not be replayed, saying why
  etl quarantine list --bucket B [--job J] [--released] [--json]
                                 files file_processing jobs refused, with the rule each broke
  etl quarantine release <key> --bucket B --reason TEXT
                                 put a quarantined file back for its job's next run
  etl schedules [--from T] [--to T] [--job J] [--json]
                                 every schedule's slots: logical date, data interval, the partition each builds
  etl report [--output report.html] [--days 3] [--bucket-map B=file:dir,...]
                                 one HTML status page: slots per schedule, freshness, dead letters, quarantine
  etl doctor [job[.schedule]] [--json]
                                 check the environment, database, buckets and Pushgateway runs need
  etl db status|start|stop       the local embedded PostgreSQL of DATABASE_URL=embedded:<dir>
  etl --version                  the platform's version and build
  etl manifests [--out deploy] [--image-prefix P] [--image-tag T] [--check]
                                 write a Kubernetes CronJob per schedule (--check: exit 1 on drift)
  etl dags [--package etl] [--out dags/<package>] [--namespace etl] [--image-prefix P] [--image-tag T]
                                 write an Airflow DAG per schedule, and metadata.json
  etl publish-dags [--dag-bucket B] [--env E] [--package P] [--dir dags/<package>] [--dry-run]
                                 publish that folder to <env>/<package>/ in the DAG bucket
                                 (flags default to DAG_BUCKET, ENV, PACKAGE_NAME)

With ETL_DEFAULT_JOB set, arguments that start with a flag run that job.
Exit codes: 0 ok or skipped, 1 failed, 2 usage/config, 3 partial, 75 transient, 130/143 interrupted.
`;

export type { CliIo, DispatcherRegistry } from "./io";

const processIo: CliIo = {
  env: process.env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  stdoutIsTTY: process.stdout.isTTY === true,
};

/** The `etl` dispatcher. Takes argv and the job list as parameters so tests never touch process state. */
export async function main(argv: readonly string[], registry: DispatcherRegistry, io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  const defaultJob = io.env.ETL_DEFAULT_JOB?.trim();
  if (defaultJob && (command === undefined || command.startsWith("-"))) return runNamed(defaultJob, [...argv], registry, io);
  switch (command) {
    case undefined:
      io.err(USAGE);
      return 2;
    case "-h":
    case "--help":
    case "help":
      io.out(USAGE);
      return 0;
    case "--version": {
      const { VERSION, describeBuild } = await import("../version");
      io.out(`etl ${VERSION} (${describeBuild()})\n`);
      return 0;
    }
    case "list":
      return listJobs(rest, registry, io);
    case "migrate": {
      const { MIGRATE_JOB } = await import("./commands/migrate");
      return MIGRATE_JOB.entrypoint(rest, { registry });
    }
    case "dlq": {
      const { dlqCommand } = await import("./commands/dlq");
      return dlqCommand(rest, registry, io);
    }
    case "runs": {
      const { runsCommand } = await import("./commands/runs");
      return runsCommand(rest, registry, io);
    }
    case "schedules": {
      const { schedulesCommand } = await import("./commands/schedules");
      return schedulesCommand(rest, registry, io);
    }
    case "db": {
      const { dbCommand } = await import("./commands/db");
      return dbCommand(rest, io);
    }
    case "doctor": {
      const { doctorCommand } = await import("./commands/doctor");
      return doctorCommand(rest, registry, io);
    }
    case "run": {
      const [name, ...args] = rest;
      if (!name) {
        io.err(`etl run: name a job; known jobs: ${registry.jobs.map((j) => j.name).join(", ")}\n`);
        return 2;
      }
      return runNamed(name, args, registry, io);
    }
    default:
      if (command.startsWith("-")) {
        io.err(`etl: unknown option ${command}\n\n${USAGE}`);
        return 2;
      }
      if (registry.commands && Object.hasOwn(registry.commands, command)) return registry.commands[command]!(rest, registry, io);
      if (!registry.jobs.some((j) => j.name === command)) return elsewhere(command, registry, io) ?? unknownCommand(command, registry, io);
      return runNamed(command, rest, registry, io);
  }
}

const BUILT_IN = ["list", "run", "migrate", "runs", "dlq", "schedules", "doctor", "db", "help"];

/** `etl lsit`: neither a command nor a job; the likeliest one is named, then every one of each. */
function unknownCommand(name: string, registry: DispatcherRegistry, io: CliIo): number {
  const commands = [...BUILT_IN, ...Object.keys(registry.commands ?? {})];
  const jobs = registry.jobs.map((j) => j.name);
  const likely = closestName(name, [...commands, ...jobs]);
  io.err(`etl: unknown command or job "${name}"${likely ? ` (did you mean "${likely}"?)` : ""}\ncommands: ${commands.join(", ")}\njobs: ${jobs.join(", ") || "(none)"}\n`);
  return 2;
}

/**
 * A job of the platform that this binary does not carry (a lane's binary, scripts/build/build.ts):
 * names the binaries that have it; undefined when the platform has no such job either.
 */
function elsewhere(name: string, registry: DispatcherRegistry, io: CliIo): number | undefined {
  const lane = registry.catalog?.find((j) => j.name === name)?.lane;
  if (!lane) return undefined;
  const carried = [...new Set(registry.catalog!.filter((j) => registry.jobs.some((own) => own.name === j.name)).map((j) => j.lane))];
  const these = carried.length ? ` (the ${carried.join(" and ")} lane's)` : "";
  // Binaries as scripts/build/build.ts names them (dist/etl-<lane>), images as the Dockerfile does.
  io.err(`etl: ${name} is a ${lane} job, which this binary${these} does not carry: run it with etl-${lane} (image etl-${lane.replaceAll("_", "-")}) or etl, which carries every job\n`);
  return 2;
}

/** Runs a job by name; a leading `--` (etl run <job> -- args) only separates the job's arguments. */
async function runNamed(name: string, args: string[], registry: DispatcherRegistry, io: CliIo): Promise<number> {
  if (args[0] === "--") args = args.slice(1);
  const entry = registry.jobs.find((j) => j.name === name);
  if (!entry) {
    const other = elsewhere(name, registry, io);
    if (other !== undefined) return other;
    io.err(`${unknownJobMessage("etl", name, registry.jobs.map((j) => j.name))}\n`);
    return 2;
  }
  return (await entry.load()).entrypoint(args, { registry });
}

async function listJobs(args: string[], registry: DispatcherRegistry, io: CliIo): Promise<number> {
  const unknown = args.find((a) => a !== "--json");
  if (unknown) {
    io.err(`etl list: unknown option ${unknown}; usage: etl list [--json]\n`);
    return 2;
  }
  const jobs = await loadJobs(registry.jobs);
  const rows = jobs.map((job) => ({
    name: job.name,
    lane: job.lane,
    description: job.description,
    schedules: jobSchedules(job).map((s) => ({ name: s.name, cron: s.cron, timeZone: s.timeZone ?? "UTC", shards: s.shards ?? 1, args: s.args })),
  }));
  if (args.includes("--json")) {
    io.out(JSON.stringify(rows, null, 2) + "\n");
    return 0;
  }
  const width = Math.max(4, ...rows.map((r) => r.name.length));
  const laneWidth = Math.max(4, ...rows.map((r) => r.lane.length));
  for (const r of rows) {
    const crons = [...new Set(r.schedules.map((s) => `${s.cron} ${s.timeZone}${s.shards > 1 ? `, ${s.shards} shards` : ""}`))];
    const named = r.schedules.length > 1 ? ` x${r.schedules.length}: ${r.schedules.map((s) => s.name).join(", ")}` : "";
    const schedule = r.schedules.length ? `  [${crons.join("; ")}${named}]` : "";
    io.out(`${r.name.padEnd(width)}  ${r.lane.padEnd(laneWidth)}  ${r.description}${schedule}\n`);
  }
  return 0;
}

/** Runs the dispatcher as a process: scripts/etl.ts from source, or a compiled binary's entry. */
export async function runCli(registry: DispatcherRegistry): Promise<never> {
  try {
    process.exit(await main(process.argv.slice(2), registry));
  } catch (error) {
    // Only a broken job file gets here (a job's own errors end in its run summary).
    process.stderr.write(`etl: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

