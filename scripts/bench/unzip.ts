/**
 * `bun scripts/bench/unzip.ts`: unzip_files against Debian's Info-ZIP `unzip`, on the same
 * archives, in one run.
 *
 *   job    bun jobs/unzip_files.ts --bucket file:LAKE --destination out/ --max-ratio 1000
 *   unzip  /usr/bin/unzip -q ARCHIVE -d DIR
 *
 * Two archives, built once: "large", one deflated member of --gib GiB of generated CSV text
 * (about 7:1, like partners' exports), and "many", --entries one-line entries in 100 folders
 * (ZIP64 past 65,535). Each run is a child process on a fresh copy of the inbox (a hard link):
 * wall time, CPU (user + sys) and peak RSS from /usr/bin/time. The tools alternate order per
 * round; the table gives medians over rounds and the job's ratio to unzip. Every run is checked:
 * exit 0, and the files it wrote, by count and total bytes. The job does more than unzip: it hashes
 * the archive (its ETag, for the ledger), checks every rule, stages, verifies, publishes by rename
 * and writes a manifest.
 *
 * Options: --gib 1 --entries 70000 --rounds 3. Reuses DATABASE_URL (a role that may CREATE
 * DATABASE) when set; otherwise starts PostgreSQL like the tests do.
 */
import { existsSync } from "node:fs";
import { link, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { startPostgres } from "../../tests/harness/postgres_server";
import { killTracked } from "../../tests/harness/processes";
import { buildZip, writeStreamedZip } from "../../tests/harness/zip_builder";
import { createBenchDatabase } from "./database";
import { TIME, measureChild, median } from "./measure";

const MiB = 1024 * 1024;
const UNZIP = "/usr/bin/unzip";

interface Archive {
  label: string;
  path: string;
  files: number;
  bytes: number;
}

interface Run {
  tool: "job" | "unzip";
  label: string;
  ms: number;
  cpuMs: number;
  rssMiB: number;
}

/** CSV lines from a seeded generator, in 1 MiB chunks: compresses about 7:1, as exports do. */
function csvText(bytes: number, seed = 1): Readable {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const words = ["open", "closed", "pothole", "streetlight", "graffiti", "noise", "parking", "water", "leak", "tree", "bin", "missed"];
  let left = bytes;
  let n = 0;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const lines: string[] = [];
      let size = 0;
      while (size < MiB) {
        const line = `${++n},${10 + (n % 3) * 10},${words[Math.floor(random() * words.length)]},2026-11-01T${String(n % 24).padStart(2, "0")}:${String(Math.floor(random() * 60)).padStart(2, "0")}:00Z,${Math.floor(random() * 1e9)},${words[Math.floor(random() * words.length)]} ${words[Math.floor(random() * words.length)]}\n`;
        lines.push(line);
        size += line.length;
      }
      const chunk = Buffer.from(lines.join("")).subarray(0, Math.min(left, size));
      left -= chunk.length;
      this.push(chunk);
    },
  });
}

/** Files under `dir` and their total size. */
async function tally(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith("_archive.")) continue;
    files++;
    bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

async function runJob(archive: Archive, work: string, databaseUrl: string): Promise<Run> {
  const lake = await mkdtemp(join(work, "lake-"));
  await mkdir(join(lake, "inbox"));
  await link(archive.path, join(lake, "inbox", "archive.zip"));
  const run = await measureChild(["bun", "jobs/unzip_files.ts", "--bucket", `file:${lake}`, "--destination", "out/", "--max-ratio", "1000"], { env: { DATABASE_URL: databaseUrl } });
  const summary = JSON.parse(run.stdout.split("\n").find((l) => l.includes('"job.finished"'))!);
  if (summary.counts.extracted !== archive.files) throw new Error(`job: ${JSON.stringify(summary.counts)}, expected ${archive.files} entries`);
  check("job", archive, await tally(join(lake, "out")));
  await rm(lake, { recursive: true, force: true });
  return { tool: "job", label: archive.label, ms: run.ms, cpuMs: run.cpuMs, rssMiB: run.rssMiB };
}

async function runUnzip(archive: Archive, work: string): Promise<Run> {
  const out = await mkdtemp(join(work, "unzip-"));
  const run = await measureChild([UNZIP, "-q", archive.path, "-d", out]);
  check("unzip", archive, await tally(out));
  await rm(out, { recursive: true, force: true });
  return { tool: "unzip", label: archive.label, ms: run.ms, cpuMs: run.cpuMs, rssMiB: run.rssMiB };
}

function check(tool: string, archive: Archive, got: { files: number; bytes: number }): void {
  if (got.files !== archive.files || got.bytes !== archive.bytes) throw new Error(`${tool} on ${archive.label}: ${got.files} files, ${got.bytes} bytes; expected ${archive.files}, ${archive.bytes}`);
}


const { values } = parseArgs({ options: { gib: { type: "string", default: "1" }, entries: { type: "string", default: "70000" }, rounds: { type: "string", default: "3" } } });
const [gib, entries, rounds] = [values.gib, values.entries, values.rounds].map(Number) as [number, number, number];
if (!(gib > 0) || ![entries, rounds].every((n) => Number.isInteger(n) && n > 0)) throw new Error("--gib must be a number above 0, --entries and --rounds whole numbers above 0");
for (const tool of [TIME, UNZIP]) if (!existsSync(tool)) throw new Error(`${tool} is missing (apt-get install -y time unzip)`);

const stops: Array<() => void> = [];
const work = await mkdtemp(join(tmpdir(), "etl-bench-unzip-"));
try {
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${cpus().length} CPUs; ${rounds} round(s)`);
  if (!process.env.DATABASE_URL) stops.push((await startPostgres().then((pg) => ((process.env.DATABASE_URL = pg.url), pg))).stop);
  const db = await createBenchDatabase(process.env.DATABASE_URL!, "etl_bench_unzip", async () => {});

  const largeBytes = Math.round(gib * 1024 * MiB);
  const archives: Archive[] = [
    { label: `large (${gib} GiB member)`, path: join(work, "large.zip"), files: 1, bytes: largeBytes },
    { label: `many (${entries} entries)`, path: join(work, "many.zip"), files: entries, bytes: 0 },
  ];
  let t0 = performance.now();
  await writeStreamedZip(archives[0]!.path, [{ name: "export.csv", source: () => csvText(largeBytes) }]);
  console.log(`built ${archives[0]!.label}: ${((await stat(archives[0]!.path)).size / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t0 = performance.now();
  const lines = Array.from({ length: entries }, (_, i) => ({ name: `d${i % 100}/f${i}.csv`, data: `${i},row\n` }));
  archives[1]!.bytes = lines.reduce((sum, l) => sum + l.data.length, 0);
  await writeFile(archives[1]!.path, buildZip(lines));
  console.log(`built ${archives[1]!.label}: ${((await stat(archives[1]!.path)).size / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const archive of archives) {
      const tools = [() => runJob(archive, work, db.url), () => runUnzip(archive, work)];
      for (const tool of round % 2 ? tools.reverse() : tools) {
        const r = await tool();
        runs.push(r);
        console.log(`round ${round + 1} ${r.tool.padEnd(6)} ${r.label}: ${(r.ms / 1000).toFixed(2)} s, CPU ${(r.cpuMs / 1000).toFixed(2)} s, ${r.rssMiB.toFixed(0)} MiB (checked)`);
      }
    }
  }

  console.log(`\n${"archive".padEnd(26)}${"tool".padEnd(7)}${"wall s".padStart(8)}${"MiB/s".padStart(8)}${"files/s".padStart(9)}${"CPU s".padStart(8)}${"peak RSS MiB".padStart(14)}${"wall vs unzip".padStart(15)}`);
  for (const archive of archives) {
    const of = (tool: Run["tool"]) => runs.filter((r) => r.tool === tool && r.label === archive.label);
    const unzipWall = median(of("unzip").map((r) => r.ms)) / 1000;
    for (const tool of ["job", "unzip"] as const) {
      const group = of(tool);
      const wall = median(group.map((r) => r.ms)) / 1000;
      console.log(
        `${archive.label.padEnd(26)}${tool.padEnd(7)}${wall.toFixed(2).padStart(8)}${(archive.bytes / MiB / wall).toFixed(0).padStart(8)}${(archive.files / wall).toFixed(0).padStart(9)}${(median(group.map((r) => r.cpuMs)) / 1000).toFixed(2).padStart(8)}${Math.max(...group.map((r) => r.rssMiB)).toFixed(0).padStart(14)}${`${(wall / unzipWall).toFixed(2)}x`.padStart(15)}`,
      );
    }
  }
  console.log(`\nload average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  await db.drop();
} finally {
  for (const stop of stops) stop();
  killTracked();
  await rm(work, { recursive: true, force: true });
}
