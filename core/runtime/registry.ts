import { basename, join } from "node:path";
import type { Dataset } from "../dataset";
import type { Job } from "./job";
import type { Migration } from "../db/migrate";
import { isCompiled } from "../version";

/** A job known by name, loaded only when needed. */
export interface JobEntry {
  name: string;
  load(): Promise<Job>;
}

/** A scheduled job as the build records it (core/schedules.generated.ts SCHEDULES). */
export interface ScheduledJob {
  name: string;
  cron: string;
  timeZone?: string;
  shards?: number;
}

/** What the dispatcher serves: from source, the globs; in a compiled binary, the generated lists. */
export interface Registry {
  jobs: JobEntry[];
  migrations?: () => Promise<Migration[]>;
}

/** A dataset known by name (processors/datasets/<name>.ts), loaded only when a job asks for it. */
export interface DatasetEntry {
  name: string;
  load(): Promise<{ DATASET: Dataset }>;
}

const JOBS_DIR = join(import.meta.dir, "..", "..", "jobs");
const DATASETS_DIR = join(import.meta.dir, "..", "..", "processors", "datasets");

/**
 * The .ts files of `dir` that declare something: not tests, declarations, generated lists or the
 * folder's own index.ts (processors/datasets/index.ts is the catalog of the files beside it), sorted.
 */
function moduleFiles(dir: string): string[] {
  return [...new Bun.Glob("*.ts").scanSync({ cwd: dir })]
    .filter((file) => file !== "index.ts" && ![".test.ts", ".d.ts", ".generated.ts"].some((suffix) => file.endsWith(suffix)))
    .sort();
}

/**
 * Finds the jobs by file glob: every jobs/<name>.ts is the job <name>. Adding a job is adding
 * one file. (A compiled binary cannot glob its own bundle; the build generates the same list.)
 */
export function discoverJobs(dir = JOBS_DIR): JobEntry[] {
  return moduleFiles(dir).map((file) => {
    const name = basename(file, ".ts");
    return { name, load: () => loadJobModule(name, import(join(dir, file))) };
  });
}

/** Finds the datasets by file glob, as the jobs: every processors/datasets/<name>.ts is the dataset <name>. */
export function discoverDatasets(dir = DATASETS_DIR): DatasetEntry[] {
  return moduleFiles(dir).map((file) => ({ name: basename(file, ".ts"), load: () => import(join(dir, file)) }));
}

/** What a schedule is read from: a job (a loaded one, or the job that is running). */
type Scheduled = Pick<Job, "name"> & { schedule?: Pick<NonNullable<Job["schedule"]>, "cron" | "timeZone" | "shards"> };

/** The schedules of `jobs`, as core/schedules.generated.ts records them. */
export function schedulesOf(jobs: readonly Scheduled[]): ScheduledJob[] {
  return jobs.flatMap(({ name, schedule }) =>
    schedule ? [{ name, cron: schedule.cron, ...(schedule.timeZone && { timeZone: schedule.timeZone }), ...(schedule.shards && { shards: schedule.shards }) }] : [],
  );
}

/**
 * Every scheduled job's schedule, for schedule_audit. From source, read from the jobs the glob
 * finds now, so a job just added is audited without a build; in a compiled binary, the list the
 * build wrote, which also holds the jobs of other lanes (a lane's binary does not carry them).
 * `running` is the job asking, taken as it is: `bun jobs/schedule_audit.ts` importing its own
 * file, still evaluating its top-level await, waited for itself forever.
 */
export async function scheduledJobs(running: Scheduled): Promise<ScheduledJob[]> {
  if (isCompiled()) return (await import("../schedules.generated")).SCHEDULES;
  return schedulesOf(await Promise.all(discoverJobs().map((entry) => (entry.name === running.name ? running : entry.load()))));
}

/** Loads every job of a list, e.g. for `etl list` or the generators. */
export function loadJobs(entries: readonly JobEntry[]): Promise<Job[]> {
  return Promise.all(entries.map((entry) => entry.load()));
}

/** Checks that a job module exports JOB and that its name is its file's name. */
export async function loadJobModule(name: string, module: Promise<{ JOB?: Job }>): Promise<Job> {
  const { JOB } = await module;
  if (!JOB || typeof JOB.entrypoint !== "function") throw new Error(`jobs/${name}.ts does not export JOB = defineJob({...})`);
  if (JOB.name !== name) throw new Error(`jobs/${name}.ts exports JOB named "${JOB.name}"; the name must be the file name`);
  return JOB;
}
