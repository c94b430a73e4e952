import type { ArgSpecs, ArgValues } from "./args";
import type { PlatformConfig } from "../config";
import type { JobContext } from "./context";
import type { RunnerEnvironment } from "./runner";

export const LANES = ["core", "data_pipeline", "file_processing", "observability"] as const;
export type Lane = (typeof LANES)[number];

/** What a run reports: named counts, e.g. { copied: 10, skipped: 0, failed: 0 }. */
export type Counts = Record<string, number>;

/** Returned instead of counts when the run decided not to run (another run holds the lock). */
export class SkippedRun {
  constructor(readonly reason: string) {}
}

export interface JobSchedule<S extends ArgSpecs> {
  /** Five-field cron expression, as Kubernetes CronJob takes it. */
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
  schedule?: JobSchedule<S>;
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

// The flags every job takes (core/runtime/parse_args.ts).
const RESERVED_ARGS = ["dryRun", "logicalDate", "force", "help"];

export function defineJob<S extends ArgSpecs>(definition: JobDefinition<S>): Job<S> {
  if (!/^[a-z][a-z0-9_]*$/.test(definition.name)) throw new Error(`job name "${definition.name}" must be snake_case`);
  if (!LANES.includes(definition.lane)) throw new Error(`job ${definition.name}: lane must be one of ${LANES.join(", ")}`);
  if (!definition.description || definition.description.includes("\n")) throw new Error(`job ${definition.name}: description must be one line`);
  const reserved = Object.keys(definition.args).find((key) => RESERVED_ARGS.includes(key));
  if (reserved) throw new Error(`job ${definition.name}: argument ${reserved} is one every job has`);
  // The runner is imported on the first run, not when a job file is imported (e.g. by `etl list`).
  const job: Job<S> = {
    ...definition,
    entrypoint: async (argv, environment) => (await import("./runner")).runJob(job as unknown as Job, argv, environment),
  };
  return job;
}
