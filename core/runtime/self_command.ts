import { join } from "node:path";
import { isCompiled } from "../version";

/**
 * The command that runs this platform's dispatcher again, for a job that starts other runs as
 * child processes (backfill): the compiled binary itself, or Bun with core/cli/dispatcher.ts from source.
 */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "cli", "dispatcher.ts")];
}
