import { version } from "../package.json";

/** The platform's version, for `etl --version` and the run records. */
export const VERSION: string = version;

/**
 * How this process runs: a compiled binary (its modules live under /$bunfs/) or from source, and
 * the NODE_ENV that libraries see (`bun build --production` bakes "production" into the binary).
 */
export function describeBuild(): string {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
  return `${compiled ? "compiled" : "from source"}, NODE_ENV=${process.env.NODE_ENV ?? "unset"}`;
}
