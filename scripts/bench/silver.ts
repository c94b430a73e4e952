/**
 * `bun scripts/bench/silver.ts` (`bun run bench:silver`): bronze_to_silver against the same
 * transform written as a plain pandas script, on generated partitions, in one run.
 *
 *   job     bun jobs/bronze_to_silver.ts --dataset D --bucket file:LAKE --date DATE --rebuild --max-reject-ratio 0.05
 *   pandas  scripts/bench/silver_pandas.py under Debian's /usr/bin/python3 (python3-pandas, python3-psycopg2,
 *           python3-zstandard), over the same bronze files and the same dataset declaration
 *
 * The generator is seeded and streams every file (a 10M-row partition never sits in memory):
 * service_requests as gzipped NDJSON and partner_payments as CSV, several files each, rows dealt
 * round-robin, with ~0.5% invalid rows (bad enum, bad e-mail, non-integer, bad timestamp, missing
 * required: each breaks one column) and ~5% later or earlier versions of a recent key (so a key's
 * versions sit in different files), agencies 10, 20 and 30 (not in the table). It tallies what a
 * correct run must produce, and every run is checked against that: exit 0, the counts the tool
 * reports (rowsIn, rejected, duplicates, rowsOut), and its Parquet and rejects read back through
 * DuckDB (rows, distinct keys, enriched rows, the sum of the winning versions, rejects per column),
 * so a broken run cannot look fast.
 *
 * Each run is a child process: wall time around it, CPU (user + sys) and peak RSS from
 * /usr/bin/time. Tools alternate order per round; the table gives medians over rounds, the
 * targets are checked on the median throughput and the highest peak RSS.
 *
 * Options: --rows 1000000 --rounds 3 --seed 1; --big N adds a service_requests partition of N rows
 * (generating 10M takes about a minute; pandas then needs about 12 GB and 4 minutes a round).
 * Reuses DATABASE_URL (a role that may CREATE DATABASE) when set; otherwise starts PostgreSQL like
 * the tests do.
 */
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { once } from "node:events";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import type { Dataset } from "../../core/dataset";
import { loadDataset } from "../../processors/datasets/index";
import { createBenchDatabase } from "./database";
import { TIME, measureChild, median } from "./measure";
import { startPostgres } from "../../tests/harness/postgres_server";
import { killTracked } from "../../tests/harness/processes";

const MiB = 1024 * 1024;
const PYTHON = "/usr/bin/python3";
const PARTITION = "2026-11-01";
const BIG_PARTITION = "2026-11-02";
const TARGET_ROWS_PER_SECOND = 250_000;
const TARGET_RSS_MIB = 600;
// The task's shares: invalid rows, and rows that repeat a key with another version.
const INVALID_SHARE = 0.005;
const DUPLICATE_SHARE = 0.05;
// A repeated key is one of the last this many new keys: near enough to be in another file of the partition.
const RECENT_KEYS = 4096;
const AGENCIES = [
  { id: 10, name: "Harbour Agency", isActive: true },
  { id: 20, name: "Closed Agency", isActive: false },
];

type Fields = Record<string, string | number | null | undefined>;

/** A key of the partition: its agency, first version and the latest of its versions so far (seconds into the day). */
interface KeyState {
  n: number;
  agency: number;
  version: number;
  latest: number;
  copies: number;
}

/** What a correct run over the generated partition reports and writes. */
interface Expected {
  rowsIn: number;
  rejected: number;
  duplicates: number;
  rowsOut: number;
  /** Silver rows whose agency is in the table. */
  enriched: number;
  /** Sum over silver rows of the version column, in seconds after the partition's midnight. */
  versionSum: number;
  rejectedByColumn: Record<string, number>;
}

/** How one dataset's bronze files look. */
interface BronzeShape {
  files: number;
  extension: string;
  /** A valid row of the key at this version. */
  fields(key: KeyState, version: number, iso: (seconds: number) => string, random: () => number): Fields;
  /** Each kind of invalid row: the one column it breaks and its values there (undefined: the field is absent). */
  invalid: Array<{ column: string; values: Array<string | undefined> }>;
}

const SHAPES: Record<string, BronzeShape> = {
  service_requests: {
    files: 8,
    extension: ".ndjson.gz",
    fields: (k, version, iso, random) => ({
      id: k.n,
      agency_id: k.agency,
      title: ` request ${k.n} `,
      status: [" Open ", "OPEN", "in_progress", "Closed", "closed "][k.n % 5],
      reporter_email: random() < 0.7 ? ` Resident${k.n}@Example.COM ` : null,
      priority: random() < 0.9 ? 1 + (k.n % 5) : undefined,
      created_at: iso(k.version),
      updated_at: iso(version),
    }),
    invalid: [
      { column: "status", values: ["maybe", "Pending"] },
      { column: "reporter_email", values: ["not-an-address", "someone@localhost"] },
      { column: "priority", values: ["3.5", "high"] },
      { column: "updated_at", values: ["yesterday", "2026-11-31T25:00:00Z"] },
      { column: "title", values: ["   ", undefined] },
    ],
  },
  partner_payments: {
    files: 6,
    extension: ".csv",
    fields: (k, version, iso, random) => ({
      payment_id: `P-${k.n}`,
      // One partner per key, spelled differently across its versions: the key is normalised first.
      partner: [["acme", "ACME", " Acme"], ["globex", "Globex ", "GLOBEX"], ["initech", "Initech", "INITECH "]][k.n % 3]![Math.floor(random() * 3)],
      agency_id: k.agency,
      amount: ((k.n % 100_000) / 100).toFixed(2),
      currency: [" EUR", "USD", "GBP "][k.n % 3],
      paid_on: "2026-10-31",
      payer_email: random() < 0.6 ? ` Payer${k.n}@Example.org ` : "",
      reported_at: iso(version),
    }),
    invalid: [
      { column: "currency", values: ["JPY", "euro"] },
      { column: "payer_email", values: ["nobody@", "a b@example.org"] },
      { column: "agency_id", values: ["10.0", "ten"] },
      { column: "reported_at", values: ["yesterday", "2026-02-30T10:00:00Z"] },
      { column: "amount", values: ["", " "] },
    ],
  },
};

/** mulberry32: small, fast, and the same numbers for the same seed everywhere. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lines into one bronze file, gzipped or not, written in batches with the stream's backpressure. */
class LineWriter {
  private lines: string[] = [];
  private readonly stream: Transform;
  private readonly done: Promise<void>;

  constructor(path: string, gzip: boolean) {
    this.stream = gzip ? createGzip() : new PassThrough();
    this.done = pipeline(this.stream, createWriteStream(path));
  }

  async write(line: string): Promise<void> {
    this.lines.push(line);
    if (this.lines.length >= 4096) await this.flush();
  }

  private async flush(): Promise<void> {
    const text = this.lines.join("\n") + "\n";
    this.lines = [];
    if (!this.stream.write(text)) await once(this.stream, "drain");
  }

  async close(): Promise<void> {
    if (this.lines.length) await this.flush();
    this.stream.end();
    await this.done;
  }
}

/** Writes `rows` rows of the dataset's bronze partition into `dir`, streamed; returns what a correct run yields. */
async function generateBronze(dataset: Dataset, dir: string, rows: number, partition: string, seed: number): Promise<Expected> {
  const shape = SHAPES[dataset.name]!;
  const random = seededRandom(seed);
  const midnight = Date.parse(`${partition}T00:00:00Z`);
  const iso = (seconds: number) => new Date(midnight + seconds * 1000).toISOString().replace(".000Z", "Z");
  const columns = Object.keys(dataset.columns);
  const render = dataset.format === "csv" ? (f: Fields) => columns.map((c) => f[c] ?? "").join(",") : (f: Fields) => JSON.stringify(f);
  await mkdir(dir, { recursive: true });
  const writers = Array.from({ length: shape.files }, (_, i) => new LineWriter(join(dir, `part-${String(i).padStart(3, "0")}${shape.extension}`), shape.extension.endsWith(".gz")));
  if (dataset.format === "csv") for (const w of writers) await w.write(columns.join(","));

  const expected: Expected = { rowsIn: rows, rejected: 0, duplicates: 0, rowsOut: 0, enriched: 0, versionSum: 0, rejectedByColumn: {} };
  const recent: KeyState[] = [];
  let next = 0;
  let nextKey = 1;
  const newKey = (): KeyState => {
    const r = random();
    const version = 3600 + Math.floor(random() * 72_000);
    return { n: nextKey++, agency: r < 0.6 ? 10 : r < 0.9 ? 20 : 30, version, latest: version, copies: 0 };
  };
  for (let i = 0; i < rows; i++) {
    const r = random();
    let fields: Fields;
    if (r < INVALID_SHARE) {
      // A key of its own, never in silver.
      const kind = shape.invalid[Math.floor(random() * shape.invalid.length)]!;
      const key = newKey();
      fields = { ...shape.fields(key, key.version, iso, random), [kind.column]: kind.values[Math.floor(random() * kind.values.length)] };
      expected.rejected++;
      expected.rejectedByColumn[kind.column] = (expected.rejectedByColumn[kind.column] ?? 0) + 1;
    } else if (r < INVALID_SHARE + DUPLICATE_SHARE && recent.length) {
      // Copy c of a key is c minutes later or earlier than its first version: no two versions tie.
      const key = recent[Math.floor(random() * recent.length)]!;
      key.copies++;
      const version = key.version + (random() < 0.5 ? -60 : 60) * key.copies;
      key.latest = Math.max(key.latest, version);
      fields = shape.fields(key, version, iso, random);
      expected.duplicates++;
    } else {
      const key = newKey();
      if (recent.length === RECENT_KEYS) expected.versionSum += recent[next]!.latest;
      recent[next] = key;
      next = (next + 1) % RECENT_KEYS;
      fields = shape.fields(key, key.version, iso, random);
      expected.rowsOut++;
      if (AGENCIES.some((a) => a.id === key.agency)) expected.enriched++;
    }
    await writers[i % writers.length]!.write(render(fields));
  }
  for (const key of recent) expected.versionSum += key.latest;
  await Promise.all(writers.map((w) => w.close()));
  return expected;
}

interface Run {
  tool: string;
  label: string;
  rows: number;
  ms: number;
  cpuMs: number;
  rssMiB: number;
  note: string;
  /** The Parquet's columns and types, as DuckDB reads them: the job's and the peer's must agree. */
  columns: string;
  /** The job's log events, as offsets from its start. */
  timeline?: string;
}

function expectCounts(tool: string, counts: Record<string, unknown> | undefined, expected: Expected): void {
  for (const name of ["rowsIn", "rejected", "duplicates", "rowsOut"] as const) {
    if (counts?.[name] !== expected[name]) throw new Error(`${tool}: expected ${name}=${expected[name]}, reported ${JSON.stringify(counts)}`);
  }
}

/** Reads a tool's Parquet files and rejects back and compares them with what the generator tallied; returns the columns. */
async function expectOutput(duck: DuckDBConnection, tool: string, dataset: Dataset, parts: string[], rejects: string | undefined, expected: Expected, partition: string): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const key = dataset.primaryKey.map((c) => `"${c}"`).join(", ");
  const enriched = Object.keys(dataset.enrich?.[0]?.columns ?? {})[0];
  const midnight = Date.parse(`${partition}T00:00:00Z`) / 1000;
  const files = `read_parquet([${parts.map(quote).join(", ")}], hive_partitioning = false)`;
  const [silver] = (
    await duck.runAndReadAll(`
      select count(*)::double as "rowsOut", count(distinct row(${key}))::double as keys, ${enriched ? `count("${enriched}")` : "0"}::double as enriched,
             sum(epoch("${dataset.versionColumn}")::bigint - ${midnight})::double as "versionSum"
      from ${files}`)
  ).getRowObjects();
  for (const [name, want] of Object.entries({ rowsOut: expected.rowsOut, keys: expected.rowsOut, enriched: expected.enriched, versionSum: expected.versionSum })) {
    if (silver![name] !== want) throw new Error(`${tool}: its Parquet has ${name}=${silver![name]}, expected ${want}`);
  }
  const byColumn: Record<string, number> = {};
  if (rejects) {
    const rows = (await duck.runAndReadAll(`select "column", count(*)::double as n from read_json(${quote(rejects)}, format = 'newline_delimited', columns = {"column": 'VARCHAR'}) group by 1`)).getRowObjects();
    for (const row of rows) byColumn[String(row.column)] = Number(row.n);
  }
  const sorted = (o: Record<string, number>) => JSON.stringify(Object.entries(o).sort());
  if (sorted(byColumn) !== sorted(expected.rejectedByColumn)) throw new Error(`${tool}: rejects per column ${sorted(byColumn)}, expected ${sorted(expected.rejectedByColumn)}`);
  return (await duck.runAndReadAll(`describe select * from ${files}`)).getRowObjects().map((c) => `${c.column_name} ${c.column_type}`).join(", ");
}

/** The job's log events as offsets from its start, e.g. "+0.4 s job started, +5.1 s partition published". */
function timeline(stdout: string, started: number): string {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { time: string; msg: string })
    .map((e) => `+${((Date.parse(e.time) - started) / 1000).toFixed(1)} s ${e.msg}`)
    .join("; ");
}

interface Partition {
  label: string;
  dataset: Dataset;
  partition: string;
  bronze: string;
  expected: Expected;
  /** The throughput target is for the default size; a --big partition has the RSS target only. */
  throughputTarget: boolean;
}

async function runJob(p: Partition, o: { lake: string; databaseUrl: string; duck: DuckDBConnection }): Promise<Run> {
  const argv = ["bun", "jobs/bronze_to_silver.ts", "--dataset", p.dataset.name, "--bucket", `file:${o.lake}`, "--date", p.partition, "--rebuild", "--max-reject-ratio", "0.05"];
  // As the images run it (Dockerfile): two malloc arenas, not one per thread.
  const started = Date.now();
  const m = await measureChild(argv, { env: { DATABASE_URL: o.databaseUrl, MALLOC_ARENA_MAX: "2" } });
  const summary = m.stdout.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l))[0];
  expectCounts("job", summary?.counts, p.expected);
  const silver = join(o.lake, `silver/${p.dataset.name}/dt=${p.partition}`);
  const manifest = await Bun.file(join(silver, "_manifest.json")).json();
  if (manifest.run_id !== summary.runId) throw new Error(`job: the manifest names run ${manifest.run_id}, not ${summary.runId}`);
  const columns = await expectOutput(o.duck, "job", p.dataset, manifest.files.map((f: { key: string }) => join(o.lake, f.key)), manifest.rejects && join(o.lake, manifest.rejects.key), p.expected, p.partition);
  return { tool: "job", label: p.label, rows: p.expected.rowsIn, ...m, note: `durationMs ${summary.durationMs}`, columns, timeline: timeline(m.stdout, started) };
}

async function runPandas(p: Partition, o: { work: string; databaseUrl: string; duck: DuckDBConnection }): Promise<Run> {
  const definition = join(o.work, `${p.dataset.name}.json`);
  await Bun.write(definition, JSON.stringify(p.dataset));
  const out = join(o.work, `pandas-${p.label}`);
  await rm(out, { recursive: true, force: true });
  const files = (await readdir(p.bronze)).sort().map((f) => join(p.bronze, f));
  const m = await measureChild([PYTHON, "scripts/bench/silver_pandas.py", "--dataset-json", definition, "--out", out, "--database-url", o.databaseUrl, ...files]);
  const result = JSON.parse(m.stdout.trim().split("\n").pop()!);
  expectCounts("pandas", result, p.expected);
  const parts = (await readdir(out)).filter((f) => f.endsWith(".parquet")).map((f) => join(out, f));
  const rejects = existsSync(join(out, "_rejects.ndjson")) ? join(out, "_rejects.ndjson") : undefined;
  const columns = await expectOutput(o.duck, "pandas", p.dataset, parts, rejects, p.expected, p.partition);
  const phases = Object.entries(result.phases as Record<string, number>).map(([name, s]) => `${name} ${s.toFixed(1)}`).join(", ");
  return { tool: "pandas", label: p.label, rows: p.expected.rowsIn, ...m, note: `phases s: ${phases}`, columns };
}

/** A fresh database with the external schema, agencies 10 and 20, and the platform's migrations. */
function seedDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  return createBenchDatabase(adminUrl, `bench_silver_${process.pid}`, async (sql) => {
    for (const a of AGENCIES) await sql`insert into agency (id, name, is_active) values (${a.id}, ${a.name}, ${a.isActive})`;
  });
}

const thousands = (n: number) => Math.round(n).toLocaleString("en-US");

function report(runs: Run[], partitions: Partition[], rounds: number): void {
  const groups = partitions.flatMap((p) => ["job", "pandas"].map((tool) => runs.filter((r) => r.tool === tool && r.label === p.label)));
  const stats = (group: Run[]) => {
    const ms = median(group.map((r) => r.ms));
    return { ms, rowsPerSecond: (group[0]!.rows * 1000) / ms, cpuMs: median(group.map((r) => r.cpuMs)), rssMiB: median(group.map((r) => r.rssMiB)), maxRssMiB: Math.max(...group.map((r) => r.rssMiB)) };
  };
  console.log(`\nmedians over ${rounds} round(s):`);
  console.log(`${"tool".padEnd(8)}${"dataset".padEnd(22)}${"rows".padStart(12)}${"wall s".padStart(9)}${"rows/s".padStart(11)}${"CPU s".padStart(8)}${"peak RSS MiB".padStart(14)}`);
  for (const group of groups) {
    const s = stats(group);
    const r = group[0]!;
    console.log(`${r.tool.padEnd(8)}${r.label.padEnd(22)}${thousands(r.rows).padStart(12)}${(s.ms / 1000).toFixed(2).padStart(9)}${thousands(s.rowsPerSecond).padStart(11)}${(s.cpuMs / 1000).toFixed(2).padStart(8)}${s.rssMiB.toFixed(0).padStart(14)}`);
  }
  console.log(`\njob vs pandas (medians; > 1x throughput and < 1x RSS favour the job):`);
  for (const p of partitions) {
    const [job, pandas] = [stats(runs.filter((r) => r.tool === "job" && r.label === p.label)), stats(runs.filter((r) => r.tool === "pandas" && r.label === p.label))];
    console.log(`  ${p.label.padEnd(22)} throughput ${(job.rowsPerSecond / pandas.rowsPerSecond).toFixed(2)}x, CPU ${(job.cpuMs / pandas.cpuMs).toFixed(2)}x, peak RSS ${(job.rssMiB / pandas.rssMiB).toFixed(2)}x`);
  }
  console.log(`\njob targets, set for 1M rows (--big: RSS only): >= ${thousands(TARGET_ROWS_PER_SECOND)} rows/s end to end (median), peak RSS < ${TARGET_RSS_MIB} MiB (highest of the rounds):`);
  for (const p of partitions) {
    const job = stats(runs.filter((r) => r.tool === "job" && r.label === p.label));
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    const throughput = !p.throughputTarget ? "" : `${thousands(job.rowsPerSecond)} rows/s ${verdict(job.rowsPerSecond >= TARGET_ROWS_PER_SECOND)}, `;
    console.log(`  ${p.label.padEnd(22)} ${throughput}${job.maxRssMiB.toFixed(0)} MiB ${verdict(job.maxRssMiB < TARGET_RSS_MIB)}`);
  }
}

const { values } = parseArgs({ options: { rows: { type: "string", default: "1000000" }, rounds: { type: "string", default: "3" }, big: { type: "string" }, seed: { type: "string", default: "1" } } });
const [rows, rounds, seed, big] = [values.rows, values.rounds, values.seed, values.big ?? "0"].map(Number) as [number, number, number, number];
if (![rows, rounds].every((n) => Number.isInteger(n) && n > 0) || !Number.isInteger(seed) || !Number.isInteger(big) || big < 0) throw new Error("--rows and --rounds must be whole numbers above 0, --big and --seed whole numbers");
for (const tool of [TIME, PYTHON]) if (!existsSync(tool)) throw new Error(`${tool} is missing (apt-get install -y time python3-pandas python3-psycopg2 python3-zstandard)`);
if (Bun.spawnSync([PYTHON, "-c", "import pandas, psycopg2, zstandard"]).exitCode !== 0) throw new Error(`${PYTHON} lacks pandas, psycopg2 or zstandard: apt-get install -y python3-pandas python3-psycopg2 python3-zstandard`);

const stops: Array<() => void> = [];
const work = await mkdtemp(join(tmpdir(), "etl-bench-silver-"));
const instance = await DuckDBInstance.create(":memory:");
const duck = await instance.connect();
try {
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${cpus().length} CPUs; ${rounds} round(s), seed ${seed}`);
  if (!process.env.DATABASE_URL) stops.push((await startPostgres().then((pg) => ((process.env.DATABASE_URL = pg.url), pg))).stop);
  const db = await seedDatabase(process.env.DATABASE_URL!);
  const lake = join(work, "lake");
  const sizes = [
    { name: "service_requests", rows, partition: PARTITION, label: "service_requests", throughputTarget: true },
    { name: "partner_payments", rows, partition: PARTITION, label: "partner_payments", throughputTarget: true },
    ...(big ? [{ name: "service_requests", rows: big, partition: BIG_PARTITION, label: `service_requests ${big / 1e6}M`, throughputTarget: false }] : []),
  ];
  const partitions: Partition[] = [];
  for (const size of sizes) {
    const dataset = await loadDataset(size.name);
    const bronze = join(lake, `bronze/${dataset.name}/dt=${size.partition}`);
    const t0 = performance.now();
    const expected = await generateBronze(dataset, bronze, size.rows, size.partition, seed + partitions.length);
    const bytes = (await readdir(bronze)).reduce((sum, f) => sum + Bun.file(join(bronze, f)).size, 0);
    console.log(`generated ${size.label}: ${thousands(size.rows)} rows in ${SHAPES[dataset.name]!.files} files, ${(bytes / MiB).toFixed(0)} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s; expect ${expected.rejected} rejected, ${expected.duplicates} duplicates, ${expected.rowsOut} out`);
    partitions.push({ label: size.label, dataset, partition: size.partition, bronze, expected, throughputTarget: size.throughputTarget });
  }

  const runs: Run[] = [];
  const timelines = new Map<string, string[]>();
  for (let round = 0; round < rounds; round++) {
    for (const p of partitions) {
      const tools = [() => runJob(p, { lake, databaseUrl: db.url, duck }), () => runPandas(p, { work, databaseUrl: db.url, duck })];
      for (const tool of round % 2 ? tools.reverse() : tools) {
        const r = await tool();
        const peer = runs.find((other) => other.label === r.label && other.tool !== r.tool);
        if (peer && peer.columns !== r.columns) throw new Error(`${p.label}: the job's and the peer's Parquet differ: ${r.tool} has ${r.columns}; ${peer.tool} has ${peer.columns}`);
        runs.push(r);
        if (r.timeline) timelines.set(p.label, [...(timelines.get(p.label) ?? []), r.timeline]);
        console.log(`round ${round + 1} ${r.tool.padEnd(6)} ${p.label}: ${(r.ms / 1000).toFixed(2)} s, CPU ${(r.cpuMs / 1000).toFixed(2)} s, ${r.rssMiB.toFixed(0)} MiB (${r.note}; checked)`);
      }
    }
  }
  report(runs, partitions, rounds);
  console.log(`\njob log timelines (from spawn), last round:`);
  for (const [label, lines] of timelines) console.log(`  ${label}: ${lines.at(-1)}`);
  console.log(`\nload average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  await db.drop();
} finally {
  duck.closeSync();
  instance.closeSync();
  for (const stop of stops) stop();
  killTracked();
  await rm(work, { recursive: true, force: true });
}
