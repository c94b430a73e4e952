/**
 * `bun run bench:startup`: cold start of the compiled dispatcher against its peers, measured in
 * the same run on the same machine, so the ratios hold where absolute times do not.
 *
 *   dist/etl (--bytecode, what `bun run build` ships)
 *   the same build without --bytecode
 *   `bun scripts/etl.ts` from source
 *
 * Each runs `list` (every job declaration loaded) and `get_s3_files --help` (one job file and its
 * argument parser), RUNS times after two warm-up runs; the table gives median and p90 wall time
 * and peak RSS. Options: --runs N (default 20).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { discoverJobs } from "../../core/runtime/registry";
import { compile } from "../build/build";

const ROOT = join(import.meta.dir, "..", "..");

interface Sample {
  ms: number;
  rssMiB: number;
}

function measure(command: string[]): Sample {
  const started = performance.now();
  const child = Bun.spawnSync(command, { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env, LOG_FORMAT: "json" } });
  const ms = performance.now() - started;
  if (child.exitCode !== 0) throw new Error(`${command.join(" ")} exited ${child.exitCode}: ${child.stderr.toString()}`);
  return { ms, rssMiB: (child.resourceUsage?.maxRSS ?? 0) / (1024 * 1024) }; // maxRSS is in bytes
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs must be a whole number above 0 (got "${values.runs}")`);
  process.exit(2);
}

const work = await mkdtemp(join(tmpdir(), "etl-bench-"));
try {
  const jobs = discoverJobs().map((e) => e.name);
  const [withBytecode, withoutBytecode] = [
    await compile("etl", jobs, { outDir: join(work, "bytecode") }),
    await compile("etl", jobs, { outDir: join(work, "plain"), bytecode: false }),
  ];
  const variants: Array<[string, string[]]> = [
    ["binary, bytecode", [withBytecode]],
    ["binary, no bytecode", [withoutBytecode]],
    ["bun scripts/etl.ts", ["bun", "scripts/etl.ts"]],
  ];
  for (const argv of [["list"], ["get_s3_files", "--help"]]) {
    console.log(`\netl ${argv.join(" ")} (${runs} runs each)`);
    console.log(`${"variant".padEnd(22)}${"median ms".padStart(10)}${"p90 ms".padStart(9)}${"peak RSS MiB".padStart(14)}${"vs bytecode".padStart(13)}`);
    let baseline: number | undefined;
    for (const [name, command] of variants) {
      for (let i = 0; i < 2; i++) measure([...command, ...argv]);
      const samples = Array.from({ length: runs }, () => measure([...command, ...argv]));
      const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
      const median = percentile(ms, 0.5);
      baseline ??= median;
      const rss = Math.max(...samples.map((s) => s.rssMiB));
      console.log(
        `${name.padEnd(22)}${median.toFixed(1).padStart(10)}${percentile(ms, 0.9).toFixed(1).padStart(9)}${rss.toFixed(0).padStart(14)}${`${(median / baseline).toFixed(2)}x`.padStart(13)}`,
      );
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
