import { basename, join } from "node:path";
import type { Job, JobEntry, ModuleEntry, Registry, ScheduledJob } from "./contract";
import { jobSchedules } from "./schedules";

export type { JobEntry, ModuleEntry, Registry, ScheduledJob } from "./contract";

const JOBS_DIR = join(import.meta.dir, "..", "..", "jobs");

/**
 * The .ts files of `dir` that declare something: not tests, declarations, generated lists or the
 * folder's own index.ts (processors/datasets/index.ts is the catalog of the files beside it), sorted.
 */
function moduleFiles(dir: string): string[] {
  return [...new Bun.Glob("*.ts").scanSync({ cwd: dir })]
    .filter((file) => file !== "index.ts" && ![".test.ts", ".d.ts", ".generated.ts"].some((suffix) => file.endsWith(suffix)))
    .sort();
}

/** Every declaring module of `dir` (see moduleFiles) by its file name: how jobs and datasets are found from source. */
export function discoverModules<T>(dir: string): ModuleEntry<T>[] {
  return moduleFiles(dir).map((file) => ({ name: basename(file, ".ts"), load: () => import(join(dir, file)) as Promise<T> }));
}

/**
 * Finds the jobs by file glob: every jobs/<name>.ts is the job <name>. Adding a job is adding
 * one file. (A compiled binary cannot glob its own bundle; its generated entry lists its jobs.)
 */
export function discoverJobs(dir = JOBS_DIR): JobEntry[] {
  return discoverModules<{ JOB?: Job }>(dir).map(({ name, load }) => ({ name, load: () => loadJobModule(name, load()) }));
}

/** The jobs of the dispatcher that started a run; a job file that runs itself (no registry) has the glob's. */
export function registryJobs(registry: Registry | undefined): JobEntry[] {
  return registry?.jobs ?? discoverJobs();
}

/** What a schedule is read from: a job (a loaded one, or the job that is running). */
type Scheduled = Pick<Job, "name" | "schedule" | "schedules" | "partitioned">;

/** The schedules of `jobs`, one entry per schedule, as jobs/schedules.generated.ts records them. */
export function schedulesOf(jobs: readonly Scheduled[]): ScheduledJob[] {
  return jobs.flatMap((job) =>
    jobSchedules(job).map((s) => ({
      name: job.name,
      schedule: s.name,
      cron: s.cron,
      ...(s.timeZone && { timeZone: s.timeZone }),
      ...(s.shards && { shards: s.shards }),
      ...(job.partitioned && { partitioned: true }),
      args: Object.fromEntries(Object.entries(s.args).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean>,
    })),
  );
}

/**
 * Every scheduled job's schedule, for schedule_audit: the list a compiled binary's registry
 * carries (it also holds the jobs of other lanes, which a lane's binary does not), else read from
 * the jobs themselves, so from source a job just added is audited without a build. `running` is
 * the job asking, taken as it is: `bun jobs/schedule_audit.ts` importing its own file, still
 * evaluating its top-level await, waited for itself forever.
 */
export async function scheduledJobs(registry: Registry | undefined, running: Scheduled): Promise<ScheduledJob[]> {
  if (registry?.schedules) return registry.schedules();
  return schedulesOf(await Promise.all(registryJobs(registry).map((entry) => (entry.name === running.name ? running : entry.load()))));
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
