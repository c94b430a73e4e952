import type { Registry } from "../runtime/contract";

/** Where the dispatcher and its commands read the environment and write: the process's, or a test's. */
export interface CliIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether `out` is a terminal: tables are coloured only then (core/cli/table.ts). */
  stdoutIsTTY?: boolean;
}

/** A command of `etl` beside the jobs (e.g. `etl quarantine`): its arguments in, an exit code out. */
export type Command = (args: string[], registry: DispatcherRegistry, io: CliIo) => Promise<number>;

/**
 * What the dispatcher serves: the runtime's registry (jobs, migrations, schedules) and the
 * commands its entry adds, those whose code lives outside core (scripts/etl.ts COMMANDS).
 */
export interface DispatcherRegistry extends Registry {
  commands?: Record<string, Command>;
}
