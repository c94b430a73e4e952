/**
 * A job's schedules (DESIGN.md "The job contract"): its one `schedule`, named "default", or its
 * named `schedules`. Their ids name everything deployed per schedule: `<job>` for the default one,
 * `<job>.<name>` otherwise (CronJob `<job>-<name>`, DAG `etl_<job>.<name>`).
 */
import { validateArg, type ArgSpecs } from "./args";
import type { JobDefinition, NamedSchedule } from "./contract";

export const DEFAULT_SCHEDULE = "default";
const NAME = /^[a-z][a-z0-9_]*$/;

type Declared<S extends ArgSpecs> = Pick<JobDefinition<S>, "name" | "schedule" | "schedules">;

/** The job's schedules in declaration order; [] for a job that runs only when asked. */
export function jobSchedules<S extends ArgSpecs>(job: Declared<S>): NamedSchedule<S>[] {
  if (job.schedule) return [{ ...job.schedule, name: DEFAULT_SCHEDULE }];
  return Object.entries(job.schedules ?? {}).map(([name, schedule]) => ({ ...schedule, name }));
}

/** `<job>` for the default schedule, `<job>.<name>` for a named one. */
export function scheduleId(job: string, schedule: string): string {
  return schedule === DEFAULT_SCHEDULE ? job : `${job}.${schedule}`;
}

/** Throws naming what is wrong with a job's schedule declarations (called by defineJob). */
export function checkSchedules<S extends ArgSpecs>(job: Declared<S> & { args: S }): void {
  if (job.schedule && job.schedules) throw new Error(`job ${job.name}: declare schedule or schedules, not both`);
  if (job.schedules && !Object.keys(job.schedules).length) throw new Error(`job ${job.name}: schedules is empty`);
  for (const schedule of jobSchedules(job)) {
    if (job.schedules && (!NAME.test(schedule.name) || schedule.name === DEFAULT_SCHEDULE)) {
      throw new Error(`job ${job.name}: schedule name "${schedule.name}" must be snake_case and not "${DEFAULT_SCHEDULE}"`);
    }
    for (const [key, value] of Object.entries(schedule.args)) {
      const spec = job.args[key];
      if (!spec) throw new Error(`job ${job.name}: schedule ${schedule.name} sets ${key}, which is not an argument of the job`);
      const result = fixedArg(spec, value);
      if (!result.ok) throw new Error(`job ${job.name}: schedule ${schedule.name}: ${key} ${result.reason}`);
    }
  }
}

/**
 * The schedule whose fixed arguments the run has (each equal to the parsed value): of several that
 * match, the one that fixes the most (a run of freshness_monitor's `completeness` schedule also has
 * every argument of its `sources` schedule, which fixes none); undefined for a run by hand with
 * other arguments.
 */
export function scheduleOfArgs<S extends ArgSpecs>(job: Declared<S> & { args: S }, args: Record<string, unknown>): NamedSchedule<S> | undefined {
  const matching = jobSchedules(job).filter((schedule) =>
    Object.entries(schedule.args).every(([key, value]) => {
      const result = fixedArg(job.args[key]!, value);
      return result.ok && JSON.stringify(result.value) === JSON.stringify(args[key]);
    }),
  );
  return matching.sort((a, b) => Object.keys(b.args).length - Object.keys(a.args).length)[0];
}

/** A schedule's fixed value of an argument, parsed as the flag's own text would be. */
function fixedArg(spec: ArgSpecs[string], value: string | number | boolean | undefined) {
  return validateArg(spec, typeof value === "boolean" ? value : String(value));
}
