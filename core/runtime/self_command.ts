import { join } from "node:path";
import { isCompiled } from "../version";

/**
 * The command that runs this platform's dispatcher again, for a job that starts other runs as
 * child processes (backfill): the compiled binary itself, or Bun with the `etl` entry from source
 * (scripts/etl.ts, named by path: core imports nothing above it).
 */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "..", "scripts", "etl.ts")];
}
