import type { Registry } from "../../runtime/contract";
import { unknownJobMessage } from "../suggest";
import { CommandUsageError } from "./operator";

/**
 * A `--job` filter must name a job: one the dispatcher serves (or schedules, for a lane binary's
 * other lanes), or one the ledger has runs of (a job since removed, `migrate`). Anything else is
 * a usage error naming the closest job and every known one: `etl runs --job get_s3_file` said
 * "no runs match", as if the job had not run.
 */
export async function requireKnownJob(command: string, name: string, registry: Registry, recorded: (job: string) => Promise<boolean>): Promise<void> {
  const scheduled = (await registry.schedules?.())?.map((s) => s.name) ?? [];
  const known = [...new Set([...registry.jobs.map((j) => j.name), ...scheduled])].sort();
  if (known.includes(name) || (await recorded(name))) return;
  throw new CommandUsageError(unknownJobMessage(command, name, known));
}
