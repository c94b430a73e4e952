/**
 * dist/: the compiled binaries, built once per test run by scripts/build/build.ts for every test file
 * that runs them (tests/scripts/build/build.test.ts, tests/scripts/build/dist_s3.test.ts): bun test loads this module once
 * for all its files, so they share one build. The build is the slow part: 87 s for the five
 * binaries on the shared 2-core machine (12 s of CPU; the rest is writing 780 MB).
 */
import { join } from "node:path";
import { ROOT } from "./fixtures";

export const DIST = join(ROOT, "dist");
/** How long a beforeAll that builds may take. */
export const BUILD_TIMEOUT_MS = 300_000;

let built: Promise<string> | undefined;

/** Builds dist/ on the first call of the run; every call returns the same build (its directory). */
export function buildDist(): Promise<string> {
  built ??= (async () => {
    const build = Bun.spawn(["bun", "scripts/build/build.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), build.exited]);
    if (exitCode !== 0) throw new Error(`bun scripts/build/build.ts failed (exit ${exitCode}):\n${stderr}${stdout}`);
    return DIST;
  })();
  return built;
}
