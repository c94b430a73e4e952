/**
 * The job contract (DESIGN.md "The job contract"): what a job declares, what a run returns, and
 * what the dispatcher hands a run. Types, LANES and SkippedRun only, so the runtime's modules (runner,
 * context, metrics) and the jobs all depend on this file and it on none of them.
 */
import type { ArgSpecs, ArgValues } from "./args";
import type { PlatformConfig } from "../config";
import type { Migration } from "../db/migrate";
import type { Sql } from "../db/db";
import type { Lease, LeaseHolder } from "../ledger/lease";
import type { Logger } from "../log";
import type { Metrics } from "../metrics/metrics";
import type { Location, ObjectStore } from "../storage/object_store";
import type { Progress } from "./progress";

export const LANES = ["core", "data_pipeline", "file_processing", "observability"] as const;
export type Lane = (typeof LANES)[number];

/** What a run reports: named counts, e.g. { copied: 10, skipped: 0, failed: 0 }. */
export type Counts = Record<string, number>;

/** Returned instead of counts when the run decided not to run (another run holds the lock). */
export class SkippedRun {
  constructor(readonly reason: string) {}
}

export interface JobSchedule<S extends ArgSpecs> {
  /** Five-field cron expression, as Kubernetes CronJob takes it. Each slot stands for the interval since the previous one. */
  cron: string;
  /** IANA time zone the cron expression is read in; UTC when absent. */
  timeZone?: string;
  /** The fixed arguments of the scheduled run. */
  args: Partial<Record<keyof S, string | number | boolean>>;
  /** Run as a Kubernetes Indexed Job of this many pods, each taking its shard from JOB_COMPLETION_INDEX. */
  shards?: number;
  /** Kills the run after this long (Job activeDeadlineSeconds); 6 hours when absent. */
  maxDurationSeconds?: number;
  /** The pod's memory limit and /tmp size (Kubernetes quantities), when the defaults (512Mi, 1Gi) are too small. */
  resources?: { memory?: string; tmp?: string };
}

export interface JobDefinition<S extends ArgSpecs> {
  /** snake_case, equal to the file name under jobs/. */
  name: string;
  /** One line, shown by `etl list` and `--help`. */
  description: string;
  lane: Lane;
  args: S;
  /** One typical invocation's arguments, shown by `--help` as `etl <name> <example>`. */
  example?: string;
  /**
   * Where a run with these arguments writes its results (bucket or directory URLs, with their
   * prefix), shown at the end of a run on a terminal.
   */
  outputs?(args: ArgValues<S>, run: { partitionDate: string | undefined }): string[];
  /** The job's one schedule (its name is "default"), or several under `schedules`. */
  schedule?: JobSchedule<S>;
  /**
   * Several schedules, by name (snake_case): one per dataset, bucket or agency. Each is its own
   * CronJob (`<job>-<name>`), DAG, `etl doctor` target and schedule_audit entry.
   */
  schedules?: Record<string, JobSchedule<S>>;
  /**
   * The job builds, or writes into, one day's partition per slot: by default the day its data
   * interval starts in (core/runtime/data_interval.ts); `etl schedules` shows it.
   */
  partitioned?: boolean;
  /**
   * Labels that split the job's Pushgateway group (`job=<job>/dataset=<d>`): a push replaces the
   * series of its group, so a job run once per dataset or bucket names it here, or each run would
   * erase the gauges of the one before. The platform's configuration tells e.g. which database.
   */
  metricsGroup?(args: ArgValues<S>, config: PlatformConfig): Record<string, string>;
  /** The work. Counts with a `failed` or `quarantined` above zero make the run partial (exit 3). */
  run(args: ArgValues<S>, context: JobContext): Promise<Counts | SkippedRun>;
  /**
   * Opt-in for `etl dlq replay`: processes only these dead letters again, with the arguments of
   * the run that failed them, resolving the ones it processes as `replayed`.
   */
  replay?(items: ReplayItem[], args: ArgValues<S>, context: JobContext): Promise<Counts | SkippedRun>;
}

/** A dead letter handed back to its job (etl_dead_letters: item_key and payload). */
export interface ReplayItem {
  itemKey: string;
  payload: Record<string, unknown>;
}

export interface Job<S extends ArgSpecs = ArgSpecs> extends JobDefinition<S> {
  /** Parses argv, runs, logs the summary and returns the exit code. */
  entrypoint(argv: readonly string[], environment?: Partial<RunnerEnvironment>): Promise<number>;
}

/** How a run ended, as the ledger and the metrics record it. */
export type RunStatus = "succeeded" | "partial" | "failed" | "interrupted" | "skipped";

export interface RunnerEnvironment {
  env: Record<string, string | undefined>;
  /** Log sink, one line per call; stdout by default. */
  write?: (line: string) => void;
  stdoutIsTTY?: boolean;
  /** Installs SIGINT/SIGTERM handlers for the run (on by default). */
  handleSignals?: boolean;
  graceMs?: number;
  /** How a forced shutdown ends the process; process.exit by default. */
  exit?: (code: number) => void;
  /**
   * What the dispatcher that started the run serves: its jobs, migrations and schedules. Absent
   * when a job file runs itself (`bun jobs/<name>.ts`): the runtime then globs jobs/ and migrations/.
   */
  registry?: Registry;
  /** `etl dlq replay`: run the job's replay hook on these dead letters instead of its run function. */
  replay?: ReplayItem[];
}

/** A module known by name (a job, a dataset), loaded only when asked for. */
export interface ModuleEntry<T> {
  name: string;
  load(): Promise<T>;
}

/** A job known by name, loaded only when needed. */
export type JobEntry = ModuleEntry<Job>;

/** A job's schedule with its name ("default" for a job's one `schedule`). */
export type NamedSchedule<S extends ArgSpecs = ArgSpecs> = JobSchedule<S> & { name: string };

/** A slot's data interval: from the previous slot of its schedule's cron to this one (the logical date). */
export interface DataInterval {
  start: Date;
  end: Date;
}

/** A scheduled job as the build records it (jobs/schedules.generated.ts SCHEDULES): one entry per schedule. */
export interface ScheduledJob {
  name: string;
  /** The schedule's name: "default" for a job's one schedule. */
  schedule: string;
  cron: string;
  timeZone?: string;
  shards?: number;
  /** The job builds one day's partition per slot (JobDefinition.partitioned). */
  partitioned?: boolean;
  /** The schedule's fixed arguments, as declared. */
  args: Record<string, string | number | boolean>;
}

/**
 * What the dispatcher serves: from source, the globs over jobs/ and migrations/; in a compiled
 * binary, the lists its generated entry gives (scripts/build/registry_source.ts).
 */
export interface Registry {
  jobs: JobEntry[];
  migrations?: () => Promise<Migration[]>;
  /** Every scheduled job's schedule, including the jobs of other lanes a lane binary does not carry. */
  schedules?: () => Promise<ScheduledJob[]>;
  /**
   * Every job of the platform with its lane, in a binary that carries only some (a lane's): asked
   * for one it lacks, the dispatcher names the binary that has it.
   */
  catalog?: Array<{ name: string; lane: Lane }>;
}

/** What a job's run function receives besides its arguments. */
export interface JobContext {
  job: string;
  runId: string;
  /** Bound to job and runId. */
  log: Logger;
  metrics: Metrics;
  /** Items done of a total, and bytes: a live line on a terminal, job.progress events otherwise. */
  progress: Progress;
  /**
   * What the run has done so far, filled as it goes: the summary of a run that is interrupted or
   * fails reports these, so it still says what was done.
   */
  counts: Counts;
  /** Aborted on SIGINT/SIGTERM: stop starting work, let in-flight work finish. */
  signal: AbortSignal;
  /** `--dry-run`: read and compare, write nothing. */
  dryRun: boolean;
  /** The slot a scheduled run stands for (core/runtime/logical_date.ts): its data interval's end. */
  logicalDate: Date | undefined;
  /**
   * The interval the slot stands for, when the run is a slot of one of the job's schedules (or
   * Airflow gave it): core/runtime/data_interval.ts.
   */
  dataInterval: DataInterval | undefined;
  /**
   * The day a partitioned job works on by default (YYYY-MM-DD, UTC): the day its data interval
   * starts in, so a daily slot after midnight builds the day that just closed; without an interval
   * the logical date's day; undefined without a logical date.
   */
  partitionDate: string | undefined;
  /** The name of the job's schedule whose fixed arguments this run has, if any. */
  schedule: string | undefined;
  /** `--force`: the run works even though its logical date already succeeded. */
  force: boolean;
  env: Record<string, string | undefined>;
  /** The database, connected (and migrated, unless dry run) on first use; closed by the runner. */
  db(): Promise<Sql>;
  /** The platform's migrations, the ones db() applies: the migrations/ glob from source, the generated list in a compiled binary. */
  migrations(): Promise<Migration[]>;
  /**
   * The jobs, migrations and schedules of the dispatcher that started the run (core/runtime/contract.ts),
   * e.g. for backfill's child runs; undefined when a job file runs itself.
   */
  registry: Registry | undefined;
  objectStore(location: Location): Promise<ObjectStore>;
  /**
   * Takes the lease `name` for this run (core/ledger/lease.ts), or returns the live run holding it.
   * The lease's signal aborts when it is lost: stop starting work then.
   */
  lease(name: string): Promise<Lease | { heldBy: LeaseHolder }>;
}
