/**
 * `bun run build`: regenerates the lists a binary needs in place of the globs (migrations/,
 * processors/datasets/ and jobs/ each hold theirs, *.generated.ts; scripts/build/registry_source.ts),
 * then compiles dist/etl (every job) and dist/etl-<lane> (one lane's jobs each) as standalone
 * executables. Runs from source need none of it: they glob jobs/, migrations/ and datasets themselves.
 *
 *   bun run build              generated lists + all binaries
 *   bun run build:registry     generated lists only (what the drift test checks); dist/ is left as it was
 *
 * --bytecode precompiles the bundle: `bun run bench:startup` measures the binary starting about 3x
 * faster with it than without (17 ms against 60 ms for `etl list` here), which short CronJob runs feel.
 *
 * A binary whose jobs import @duckdb/node-api (dist/etl, dist/etl-data_pipeline) also carries
 * libduckdb.so, 70 MB, which core/db/duckdb.ts loads on the first openDuckDB; the others do not.
 */
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { EMBEDDED_LIBRARY } from "../../core/db/duckdb";
import { LANES } from "../../core/runtime/job";
import { discoverJobs, loadJobs } from "../../core/runtime/registry";
import { entrySource, generatedSources, type JobFile } from "./registry_source";

const ROOT = join(import.meta.dir, "..", "..");
const DIST = join(ROOT, "dist");
const DUCKDB_API = "@duckdb/node-api";
const DUCKDB_BINDINGS = dirname(Bun.resolveSync("@duckdb/node-bindings/package.json", ROOT));
const DUCKDB_HOST_BINDINGS = `@duckdb/node-bindings-${process.platform}-${process.arch}`;
const transpiler = new Bun.Transpiler({ loader: "ts" });

async function writeRegistry(): Promise<void> {
  const sources = await generatedSources();
  for (const [path, source] of sources) await writeFile(join(ROOT, path), source);
  console.log(`wrote ${[...sources.keys()].join(", ")}`);
}

/**
 * Compiles one executable holding `jobs` (names of jobs/<name>.ts, or job files) into
 * `outDir/name` (scripts/bench/startup.ts builds a variant without bytecode, the tests one with a
 * fixture job).
 */
export async function compile(name: string, jobs: Array<string | JobFile>, options: { outDir?: string; bytecode?: boolean; catalog?: Array<{ name: string; lane: string }> } = {}): Promise<string> {
  const { outDir = DIST, bytecode = true } = options;
  // Every job's lane, so a binary asked for a job it lacks names the one that has it.
  const catalog = options.catalog ?? (await loadJobs(discoverJobs())).map(({ name, lane }) => ({ name, lane }));
  const files = jobs.map((job) => (typeof job === "string" ? { name: job, file: join(ROOT, "jobs", `${job}.ts`) } : job));
  const entries = join(outDir, "entries");
  await mkdir(entries, { recursive: true });
  const entry = join(entries, `${name}.ts`);
  await writeFile(entry, entrySource(files, entries, ROOT, catalog));
  const outfile = join(outDir, name);
  const withDuckDB = files.some((job) => usesDuckDB(job.file));
  const build = Bun.spawnSync(
    // Without --production the binary said NODE_ENV "development" to every library that asks;
    // with it alone, the builder's own NODE_ENV wins (bun test sets "test"): define it outright.
    ["bun", "build", "--compile", "--production", "--define", 'process.env.NODE_ENV="production"', ...(bytecode ? ["--bytecode"] : []), "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
      ...duckdbFlags(withDuckDB),
      entry, "--outfile", outfile],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if (build.exitCode !== 0) throw new Error(`bun build ${name} failed:\n${build.stderr.toString()}${build.stdout.toString()}`);
  console.log(`built ${relative(ROOT, outfile)} (${files.map((j) => j.name).join(", ") || "no jobs"}${withDuckDB ? "; with DuckDB" : ""})`);
  return outfile;
}

/**
 * Whether `file` reaches @duckdb/node-api through the project's imports, static or dynamic: what
 * the bundler follows. Type-only imports do not count (they are erased).
 */
export function usesDuckDB(file: string, seen = new Set<string>()): boolean {
  if (seen.has(file) || !/\.[cm]?[jt]s$/.test(file)) return false;
  seen.add(file);
  return transpiler
    .scanImports(readFileSync(file, "utf8"))
    .some(({ path }) => path === DUCKDB_API || (path.startsWith(".") && usesDuckDB(Bun.resolveSync(path, dirname(file)), seen)));
}

/**
 * @duckdb/node-bindings requires each platform's duckdb.node by name, and only this platform's
 * package is installed: the others are external (never required here). A binary with DuckDB
 * carries this platform's libduckdb.so as an asset, under the name core/db/duckdb.ts looks for.
 */
function duckdbFlags(embedLibrary: boolean): string[] {
  const { optionalDependencies = {} } = JSON.parse(readFileSync(join(DUCKDB_BINDINGS, "package.json"), "utf8")) as { optionalDependencies?: Record<string, string> };
  const externals = Object.keys(optionalDependencies).filter((name) => name !== DUCKDB_HOST_BINDINGS).flatMap((name) => ["--external", name]);
  return embedLibrary ? [...externals, "--asset", duckdbLibrary()] : externals;
}

/** This platform's libduckdb.so, the one a binary with DuckDB carries (the tests give it its libraries). */
export function duckdbLibrary(): string {
  return Bun.resolveSync(`${DUCKDB_HOST_BINDINGS}/${EMBEDDED_LIBRARY}`, DUCKDB_BINDINGS);
}

async function buildAll(): Promise<void> {
  await writeRegistry();
  await rm(DIST, { recursive: true, force: true });
  const jobs = await loadJobs(discoverJobs());
  const catalog = jobs.map(({ name, lane }) => ({ name, lane }));
  await compile("etl", jobs.map((j) => j.name), { catalog });
  for (const lane of LANES) {
    const laneJobs = jobs.filter((j) => j.lane === lane).map((j) => j.name);
    if (laneJobs.length) await compile(`etl-${lane}`, laneJobs, { catalog });
  }
}

if (import.meta.main) {
  await (process.argv.includes("--registry-only") ? writeRegistry() : buildAll());
}
