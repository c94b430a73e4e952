import type { ArgSpecs } from "./args";
import type { Job, JobDefinition } from "./contract";
import { LANES } from "./contract";
import { checkSchedules } from "./schedules";

export * from "./contract";

// The flags every job takes (core/runtime/parse_args.ts).
const RESERVED_ARGS = ["dryRun", "logicalDate", "force", "help"];

export function defineJob<S extends ArgSpecs>(definition: JobDefinition<S>): Job<S> {
  if (!/^[a-z][a-z0-9_]*$/.test(definition.name)) throw new Error(`job name "${definition.name}" must be snake_case`);
  if (!LANES.includes(definition.lane)) throw new Error(`job ${definition.name}: lane must be one of ${LANES.join(", ")}`);
  if (!definition.description || definition.description.includes("\n")) throw new Error(`job ${definition.name}: description must be one line`);
  const reserved = Object.keys(definition.args).find((key) => RESERVED_ARGS.includes(key));
  if (reserved) throw new Error(`job ${definition.name}: argument ${reserved} is one every job has`);
  checkSchedules(definition);
  // The runner is imported on the first run, not when a job file is imported (e.g. by `etl list`).
  const job: Job<S> = {
    ...definition,
    entrypoint: async (argv, environment) => (await import("./runner")).runJob(job as unknown as Job, argv, environment),
  };
  return job;
}
