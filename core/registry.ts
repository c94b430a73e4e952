import { basename, join } from "node:path";
import type { Job } from "./job";
import type { Migration } from "./migrate";

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

const JOBS_DIR = join(import.meta.dir, "..", "jobs");

/**
 * Finds the jobs by file glob: every jobs/<name>.ts is the job <name>. Adding a job is adding
 * one file. (A compiled binary cannot glob its own bundle; the build generates the same list.)
 */
export function discoverJobs(dir = JOBS_DIR): JobEntry[] {
  return [...new Bun.Glob("*.ts").scanSync({ cwd: dir })]
    .filter((file) => !file.endsWith(".test.ts") && !file.endsWith(".d.ts"))
    .sort()
    .map((file) => {
      const name = basename(file, ".ts");
      return { name, load: () => loadJobModule(name, import(join(dir, file))) };
    });
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
