import { version } from "../package.json";

/** The platform's version, for `etl --version` and the run records. */
export const VERSION: string = version;

/** Whether this process is a compiled binary: its modules live under /$bunfs/ (B:/~BUN/ on Windows). */
export function isCompiled(): boolean {
  return import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
}

/**
 * How this process runs: a compiled binary or from source, and the NODE_ENV that libraries see
 * (`bun build --production` bakes "production" into the binary).
 */
export function describeBuild(): string {
  return `${isCompiled() ? "compiled" : "from source"}, NODE_ENV=${process.env.NODE_ENV ?? "unset"}`;
}
