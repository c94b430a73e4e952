/**
 * `bun scripts/bench/get_s3_files.ts` (`bun run bench:copy`): get_s3_files against its peers on one
 * S3 server in one run, so the ratios hold where absolute times (moto is slow) do not.
 *
 *   job       bun jobs/get_s3_files.ts: a first copy, then a rerun over unchanged data
 *   rclone    rclone copy moto:SRC moto:DST/agency_id=10/ (rerun: --checksum)
 *   aws cli   aws s3 cp --recursive (rerun: aws s3 sync), skipped when not installed
 *   raw loop  one CopyObject per key with the job's client settings, in a bun child like the others
 *
 * Each run is a child process: wall time around it, CPU (user + sys) and peak RSS from
 * /usr/bin/time; S3 requests from moto's request log, so no proxy sits in the data path. Every
 * round copies into fresh destination buckets, tools in rotated order; the table gives each
 * figure's median over rounds (the lower of two). Every run is checked (exit 0, all keys landed,
 * the job's own counts) so a broken run cannot look fast.
 *
 * Options: --objects 2000 --size 4KiB --concurrency 16 --rounds 1; --big 2GiB instead measures one
 * object copied file: -> S3 and S3 -> file: by the job and by rclone (peak RSS is the point);
 * --agencies 100 instead measures the same objects as one agency and spread over that many
 * (`--all-agencies`), with rclone copying them all as the peer (target: within 1.2x).
 * Reuses DATABASE_URL (a role that may CREATE DATABASE) and S3_ENDPOINT when set (then without
 * request counts); otherwise starts PostgreSQL and moto like the tests do.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, listKeys, s3 } from "../../tests/harness/fixtures";
import { createBenchDatabase } from "./database";
import { startPostgres } from "../../tests/harness/postgres_server";
import { freePort, killTracked, track, waitUntil } from "../../tests/harness/processes";
import { median } from "./measure";

const MiB = 1024 * 1024;
const AGENCY = 10;
const PREFIX = `agency_id=${AGENCY}/`;
const AWS_CLI = "/root/.pyenv/shims/aws";

type RequestCounts = { total: number; byMethod: Record<string, number> };
interface Run { tool: string; run: string; ms: number; cpuMs: number; rssMiB: number; requests?: RequestCounts; stdout: string; stderr: string }

/** Counts the requests moto logs (Werkzeug writes one stderr line per request). */
class RequestLog {
  private counts: RequestCounts = { total: 0, byMethod: {} };
  private markers = 0;
  private lastMarker = 0;

  constructor(private readonly endpoint: string, stderr: ReadableStream<Uint8Array>) {
    void this.read(stderr);
  }

  private async read(stderr: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const bytes of stderr) {
      const lines = (rest + decoder.decode(bytes, { stream: true })).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const [, method, path] = /\] "([A-Z]+) (\S+) HTTP\/[\d.]+" \d{3}/.exec(line) ?? [];
        if (!method || !path) continue;
        if (path.startsWith("/bench-marker-")) this.lastMarker = Number(path.slice("/bench-marker-".length));
        else (this.counts.total++, (this.counts.byMethod[method] = (this.counts.byMethod[method] ?? 0) + 1));
      }
    }
  }

  /** The counts once all earlier requests are logged: moto logs a marker request after them. */
  async snapshot(): Promise<RequestCounts> {
    const marker = ++this.markers;
    await fetch(`${this.endpoint}/bench-marker-${marker}`).then((r) => r.arrayBuffer());
    while (this.lastMarker < marker) await Bun.sleep(2);
    return structuredClone(this.counts);
  }
}

/** Like tests/harness/s3_server.ts, but keeping moto's log: the request counts are read from it. */
async function startLoggedS3(): Promise<{ endpoint: string; log: RequestLog }> {
  const port = await freePort();
  const server = Bun.spawn(["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "pipe", env: { ...process.env, PYTHONUNBUFFERED: "1" } });
  track(server);
  const endpoint = `http://127.0.0.1:${port}`;
  const log = new RequestLog(endpoint, server.stderr);
  await waitUntil("moto S3 server", server, async () => Boolean(await fetch(endpoint)));
  return { endpoint, log };
}

/**
 * A fresh database with the external schema and one attachment row per key: all of agency 10,
 * or with `agencies` spread over agencies 1..agencies in runs of equal size (ids in key order).
 */
function seedDatabase(adminUrl: string, keys: string[], size: number, agencies?: number): Promise<{ url: string; drop(): Promise<void> }> {
  return createBenchDatabase(adminUrl, `bench_get_s3_files_${process.pid}_${agencies ?? 1}`, async (sql) => {
    const per = Math.ceil(keys.length / (agencies ?? 1));
    const ids = agencies ? Array.from({ length: agencies }, (_, i) => i + 1) : [AGENCY];
    await sql`insert into agency (id, name, is_active) select id, 'bench agency ' || id, true from unnest(${ids}::int[]) as id`;
    await sql`insert into attachment (id, agency_id, s3_key, file_name, size_bytes)
              select ord, ${agencies ? sql`(ord - 1) / ${per} + 1` : sql`${AGENCY}`}, key, key, ${size} from unnest(${keys}::text[]) with ordinality as k(key, ord)`;
  });
}

async function createBucket(role: string): Promise<string> {
  const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const name = `bench-${role}-${crypto.randomUUID().slice(0, 8)}`;
  await s3().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

const TIME = "/usr/bin/time";
const hasTime = existsSync(TIME);
let timings = 0;

/**
 * Runs a child to completion and measures it; a failed run stops the benchmark. Peak RSS comes
 * from /usr/bin/time: Bun.spawn's resourceUsage().maxRSS never reads below this process's own RSS
 * (Linux carries the pre-exec hiwater mark into the child's ru_maxrss), which after seeding is
 * ~120 MiB, more than any of the tools.
 */
async function run(argv: string[], env: Record<string, string | undefined> = {}, log?: RequestLog): Promise<Omit<Run, "tool" | "run">> {
  const before = await log?.snapshot();
  const timeFile = join(tmpdir(), `etl-bench-time-${process.pid}-${++timings}`);
  const command = hasTime ? [TIME, "-f", "%U %S %M", "-o", timeFile, ...argv] : argv;
  const childEnv = Object.fromEntries(Object.entries({ ...process.env, LOG_FORMAT: "json", ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const started = performance.now();
  const child = Bun.spawn(command, { cwd: ROOT, env: childEnv, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const ms = performance.now() - started;
  const after = await log?.snapshot();
  const timed = hasTime ? (await Bun.file(timeFile).text()).trim().split("\n").pop()!.split(" ").map(Number) : [];
  await rm(timeFile, { force: true });
  if (exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${exitCode}\n${stderr.slice(-3000)}\n${stdout.slice(-3000)}`);
  const requests = before && after && { total: after.total - before.total, byMethod: Object.fromEntries(Object.entries(after.byMethod).map(([m, n]) => [m, n - (before.byMethod[m] ?? 0)]).filter(([, n]) => n)) };
  const [user = 0, sys = 0, maxRssKiB = 0] = timed;
  const usage = child.resourceUsage()!;
  return hasTime
    ? { ms, cpuMs: (user + sys) * 1000, rssMiB: maxRssKiB / 1024, requests, stdout, stderr }
    : { ms, cpuMs: Number(usage.cpuTime.total) / 1000, rssMiB: usage.maxRSS / MiB, requests, stdout, stderr };
}

/** The job's summary event, checked against what the run should have done; says how long the run took inside the process. */
function expectJobCounts(stdout: string, expected: Record<string, number>): string {
  const summary = stdout.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l))[0];
  for (const [name, n] of Object.entries(expected)) {
    if (summary?.counts?.[name] !== n) throw new Error(`job expected ${name}=${n}, summary: ${JSON.stringify(summary?.counts)}`);
  }
  return ` (durationMs ${summary.durationMs})`;
}

async function expectLanded(bucket: string, keys: string[], prefix = PREFIX): Promise<void> {
  const landed = (await listKeys(bucket)).filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).startsWith("_manifest"));
  if (landed.length !== keys.length) throw new Error(`${bucket}: ${landed.length} of ${keys.length} objects landed`);
}

/** `--raw-loop keysFile src dst prefix concurrency`: the floor, CopyObject per key with core/storage/object_stores.ts's client settings. */
async function rawLoop([keysFile, source, destination, prefix, concurrency]: string[]): Promise<void> {
  const [{ S3Client, CopyObjectCommand }, { NodeHttpHandler }] = await Promise.all([import("@aws-sdk/client-s3"), import("@smithy/node-http-handler")]);
  const client = new S3Client({
    region: process.env.AWS_REGION,
    endpoint: process.env.S3_ENDPOINT,
    forcePathStyle: process.env.S3_ENDPOINT !== undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: 1024 }, connectionTimeout: 10_000, requestTimeout: 300_000 }),
  });
  const keys = (await Bun.file(keysFile!).text()).split("\n").filter(Boolean);
  let next = 0;
  const worker = async () => {
    for (let key = keys[next++]; key !== undefined; key = keys[next++]) {
      await client.send(new CopyObjectCommand({ Bucket: destination, Key: prefix + key, CopySource: `${source}/${key.split("/").map(encodeURIComponent).join("/")}` }));
    }
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  client.destroy();
}

/**
 * rclone configured by environment only: a remote named "moto", path-style. AWS_CA_BUNDLE is
 * dropped: with it set, rclone 1.60's AWS SDK refuses to start (LoadCustomCABundleError, its HTTP
 * transport not being the SDK's), and the endpoint is plain HTTP anyway.
 */
function rcloneEnv(endpoint: string): Record<string, string | undefined> {
  const { AWS_ACCESS_KEY_ID: key, AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: region } = process.env;
  const remote = { TYPE: "s3", PROVIDER: "Other", ENDPOINT: endpoint, ACCESS_KEY_ID: key, SECRET_ACCESS_KEY: secret, REGION: region, FORCE_PATH_STYLE: "true" };
  return { ...Object.fromEntries(Object.entries(remote).map(([k, v]) => [`RCLONE_CONFIG_MOTO_${k}`, v])), AWS_CA_BUNDLE: undefined };
}

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text);
  if (!match) throw new Error(`not a size: "${text}" (e.g. 4KiB, 2GiB)`);
  return Math.round(Number(match[1]) * 1024 ** ["b", "kib", "mib", "gib"].indexOf((match[2] ?? "B").toLowerCase()));
}

const methods = (r?: RequestCounts) => (r ? Object.entries(r.byMethod).map(([m, n]) => `${m} ${n}`).join(", ") : "n/a");

function printTable(runs: Run[], objects: number): void {
  const width = Math.max(9, ...runs.map((r) => r.tool.length + 2));
  console.log(`\n${"tool".padEnd(width)}${"run".padEnd(7)}${"wall s".padStart(8)}${"obj/s".padStart(8)}${"req/obj".padStart(9)}${"CPU s".padStart(7)}${"RSS MiB".padStart(9)}  requests (median run)`);
  for (const key of [...new Set(runs.map((r) => `${r.tool}|${r.run}`))]) {
    const group = runs.filter((r) => `${r.tool}|${r.run}` === key);
    const ms = median(group.map((r) => r.ms));
    const middle = group.find((r) => r.ms === ms)!;
    const reqPerObject = middle.requests ? (middle.requests.total / objects).toFixed(2) : "n/a";
    console.log(
      `${middle.tool.padEnd(width)}${middle.run.padEnd(7)}${(ms / 1000).toFixed(2).padStart(8)}${((objects * 1000) / ms).toFixed(0).padStart(8)}${reqPerObject.padStart(9)}` +
        `${(median(group.map((r) => r.cpuMs)) / 1000).toFixed(2).padStart(7)}${Math.max(...group.map((r) => r.rssMiB)).toFixed(0).padStart(9)}  ${methods(middle.requests)}`,
    );
  }
}

async function benchCopies(o: { objects: number; size: number; concurrency: number; rounds: number; databaseUrl: string; endpoint: string; log?: RequestLog; work: string }): Promise<void> {
  const { PutObjectCommand } = await import("@aws-sdk/client-s3");
  const keys = Array.from({ length: o.objects }, (_, i) => `attachments/${String(i + 1).padStart(7, "0")}.bin`);
  const keysFile = join(o.work, "keys.txt");
  await Bun.write(keysFile, keys.join("\n"));
  const db = await seedDatabase(o.databaseUrl, keys, o.size);
  const source = await createBucket("src");
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map((Key) => s3().send(new PutObjectCommand({ Bucket: source, Key, Body: crypto.getRandomValues(new Uint8Array(o.size)) }))));
  }
  console.log(`seeded ${o.objects} objects of ${o.size} bytes in s3://${source}; concurrency ${o.concurrency}, ${o.rounds} round(s)`);

  const c = String(o.concurrency);
  const job = (dst: string) => ["bun", "jobs/get_s3_files.ts", "--agency-id", String(AGENCY), "--source-bucket", source, "--destination-bucket", dst, "--concurrency", c];
  const rclone = (dst: string) => ["rclone", "copy", `moto:${source}`, `moto:${dst}/${PREFIX}`, "--transfers", c, "--checkers", c, "-v"];
  const aws = (command: string, dst: string) => [AWS_CLI, "s3", command, `s3://${source}`, `s3://${dst}/${PREFIX}`, "--endpoint-url", o.endpoint, "--only-show-errors"];
  const awsConfig = join(o.work, "aws-config");
  // aws s3 reads its concurrency from a config file only; a private one leaves ~/.aws alone.
  await Bun.write(awsConfig, `[default]\ns3 =\n  max_concurrent_requests = ${c}\n`);
  const awsEnv = { AWS_CONFIG_FILE: awsConfig, AWS_DEFAULT_REGION: process.env.AWS_REGION! };
  const hasAws = Bun.spawnSync([AWS_CLI, "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  if (!hasAws) console.log(`aws cli: not installed at ${AWS_CLI}, skipped`);
  const rcloneConfig = rcloneEnv(o.endpoint);

  type Step = { tool: string; first: (dst: string) => Promise<Run>; rerun?: (dst: string) => Promise<Run> };
  const measured = async (tool: string, runName: string, argv: string[], env: Record<string, string | undefined>) => ({ tool, run: runName, ...(await run(argv, env, o.log)) });
  const steps: Step[] = [
    { tool: "job", first: (dst) => measured("job", "first", job(dst), { DATABASE_URL: db.url }), rerun: (dst) => measured("job", "rerun", job(dst), { DATABASE_URL: db.url }) },
    { tool: "rclone", first: (dst) => measured("rclone", "first", rclone(dst), rcloneConfig), rerun: (dst) => measured("rclone", "rerun", [...rclone(dst), "--checksum"], rcloneConfig) },
    ...(hasAws ? [{ tool: "aws cli", first: (dst: string) => measured("aws cli", "first", [...aws("cp", dst), "--recursive"], awsEnv), rerun: (dst: string) => measured("aws cli", "rerun", aws("sync", dst), awsEnv) }] : []),
    { tool: "raw loop", first: (dst) => measured("raw loop", "first", ["bun", import.meta.path, "--raw-loop", keysFile, source, dst, PREFIX, c], {}) },
  ];

  const runs: Run[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const step of [...steps.slice(round % steps.length), ...steps.slice(0, round % steps.length)]) {
      const dst = await createBucket("dst");
      const first = await step.first(dst);
      await expectLanded(dst, keys);
      let [firstNote, rerunNote] = ["", ""];
      if (step.tool === "job") firstNote = expectJobCounts(first.stdout, { copied: o.objects, failed: 0 });
      if (step.tool === "rclone") firstNote = ` (${first.stderr.match(/Copied \(server-side copy\)/g)?.length ?? 0} of ${o.objects} server-side)`;
      runs.push(first);
      const rerun = await step.rerun?.(dst);
      if (rerun && step.tool === "job") rerunNote = expectJobCounts(rerun.stdout, { copied: 0, skipped: o.objects, failed: 0 });
      if (rerun) runs.push(rerun);
      console.log(`round ${round + 1} ${step.tool}: first ${(first.ms / 1000).toFixed(2)} s${firstNote}${rerun ? `, rerun ${(rerun.ms / 1000).toFixed(2)} s${rerunNote}` : ""}`);
    }
  }
  printTable(runs, o.objects);

  const m = (tool: string, runName: string, field: "ms" | "cpuMs") => median(runs.filter((r) => r.tool === tool && r.run === runName).map((r) => r[field]));
  const cpu = (tool: string, runName: string) => `${(m("job", runName, "cpuMs") / m(tool, runName, "cpuMs")).toFixed(2)}x its CPU`;
  const first = (tool: string) => `${(m(tool, "first", "ms") / m("job", "first", "ms")).toFixed(2)}x its throughput, ${cpu(tool, "first")}`;
  const rerun = (tool: string) => `${(m("job", "rerun", "ms") / m(tool, "rerun", "ms")).toFixed(2)}x its time, ${cpu(tool, "rerun")}`;
  console.log(`\njob first copy vs raw CopyObject loop: ${first("raw loop")} (target >= 0.9x throughput)`);
  console.log(`job first copy vs rclone copy:          ${first("rclone")}`);
  console.log(`job rerun vs rclone copy --checksum:    ${rerun("rclone")} (target <= 1.5x time)`);
  if (hasAws) console.log(`job vs aws s3 cp --recursive / sync:    first copy ${first("aws cli")}; rerun ${rerun("aws cli")}`);
  await db.drop();
}

/**
 * The same objects as one agency and spread over `agencies` (each to its own prefix and manifest,
 * in one run), with rclone copying them all as the peer: what a run over many small agencies
 * costs beyond the copies themselves.
 */
async function benchAgencies(o: { objects: number; agencies: number; size: number; concurrency: number; rounds: number; databaseUrl: string; endpoint: string; log?: RequestLog }): Promise<void> {
  const { PutObjectCommand } = await import("@aws-sdk/client-s3");
  const keys = Array.from({ length: o.objects }, (_, i) => `attachments/${String(i + 1).padStart(7, "0")}.bin`);
  const [one, many] = [await seedDatabase(o.databaseUrl, keys, o.size), await seedDatabase(o.databaseUrl, keys, o.size, o.agencies)];
  const source = await createBucket("src");
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map((Key) => s3().send(new PutObjectCommand({ Bucket: source, Key, Body: crypto.getRandomValues(new Uint8Array(o.size)) }))));
  }
  const per = o.objects / o.agencies;
  console.log(`seeded ${o.objects} objects of ${o.size} bytes: 1 agency of ${o.objects} and ${o.agencies} agencies of ${per}; concurrency ${o.concurrency}, ${o.rounds} round(s)`);
  const c = String(o.concurrency);
  const job = (dst: string, ...who: string[]) => ["bun", "jobs/get_s3_files.ts", ...who, "--source-bucket", source, "--destination-bucket", dst, "--concurrency", c];
  const steps: Array<{ tool: string; argv: (dst: string) => string[]; env: Record<string, string | undefined>; counts?: Record<string, number> }> = [
    { tool: "one agency", argv: (dst: string) => job(dst, "--agency-id", String(AGENCY)), env: { DATABASE_URL: one.url }, counts: { copied: o.objects, failed: 0 } },
    { tool: `${o.agencies} agencies`, argv: (dst: string) => job(dst, "--all-agencies"), env: { DATABASE_URL: many.url }, counts: { agencies: o.agencies, copied: o.objects, failed: 0 } },
    { tool: "rclone", argv: (dst: string) => ["rclone", "copy", `moto:${source}`, `moto:${dst}/${PREFIX}`, "--transfers", c, "--checkers", c], env: rcloneEnv(o.endpoint) },
  ];
  const runs: Run[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const step of [...steps.slice(round % steps.length), ...steps.slice(0, round % steps.length)]) {
      const dst = await createBucket("dst");
      const measured = { tool: step.tool, run: "first", ...(await run(step.argv(dst), step.env, o.log)) };
      const note = step.counts ? expectJobCounts(measured.stdout, step.counts) : "";
      const landed = (await listKeys(dst)).filter((k) => !k.split("/").pop()!.startsWith("_manifest")).length;
      if (landed !== o.objects) throw new Error(`${step.tool}: ${landed} of ${o.objects} objects landed`);
      runs.push(measured);
      console.log(`round ${round + 1} ${step.tool}: ${(measured.ms / 1000).toFixed(2)} s${note}`);
    }
  }
  printTable(runs, o.objects);
  const m = (tool: string) => median(runs.filter((r) => r.tool === tool).map((r) => r.ms));
  console.log(`
${o.agencies} agencies of ${per} vs one agency of ${o.objects}: ${(m(`${o.agencies} agencies`) / m("one agency")).toFixed(2)}x the wall time (target <= 1.2x)`);
  console.log(`one agency vs rclone copy:         ${(m("rclone") / m("one agency")).toFixed(2)}x rclone's throughput`);
  console.log(`${o.agencies} agencies vs rclone copy:     ${(m("rclone") / m(`${o.agencies} agencies`)).toFixed(2)}x rclone's throughput`);
  await Promise.all([one.drop(), many.drop()]);
}

async function benchBig(o: { bytes: number; databaseUrl: string; endpoint: string; work: string }): Promise<void> {
  // A sparse file reads as zeros at disk speed; nothing on the path compresses, so zeros cost what random bytes do.
  const [sourceDir, jobOut, rcloneOut] = [join(o.work, "src"), join(o.work, "job-out"), join(o.work, "rclone-out")];
  await Bun.write(join(sourceDir, "big.bin"), "");
  await truncate(join(sourceDir, "big.bin"), o.bytes);
  const db = await seedDatabase(o.databaseUrl, ["big.bin"], o.bytes);
  const rcloneConfig = rcloneEnv(o.endpoint);
  const job = (source: string, destination: string) => ["bun", "jobs/get_s3_files.ts", "--agency-id", String(AGENCY), "--source-bucket", source, "--destination-bucket", destination];
  const [jobBucket, rcloneBucket] = [await createBucket("big-job"), await createBucket("big-rclone")];
  const runs: Run[] = [
    { tool: "job", run: "up", ...(await run(job(`file:${sourceDir}`, jobBucket), { DATABASE_URL: db.url })) },
    // rclone's copy lands at the bucket's root, where the job's attachment (s3_key big.bin) is read from on the way down.
    { tool: "rclone", run: "up", ...(await run(["rclone", "copy", sourceDir, `moto:${rcloneBucket}`], rcloneConfig)) },
    { tool: "job", run: "down", ...(await run(job(rcloneBucket, `file:${jobOut}`), { DATABASE_URL: db.url })) },
    { tool: "rclone", run: "down", ...(await run(["rclone", "copy", `moto:${rcloneBucket}/big.bin`, rcloneOut], rcloneConfig)) },
  ];
  await expectLanded(jobBucket, ["big.bin"]);
  for (const file of [join(jobOut, PREFIX, "big.bin"), join(rcloneOut, "big.bin")]) {
    if (Bun.file(file).size !== o.bytes) throw new Error(`${file}: ${Bun.file(file).size} bytes, expected ${o.bytes}`);
  }
  console.log(`\none ${(o.bytes / MiB).toFixed(0)} MiB object: up is file: -> S3, down is S3 -> file:`);
  console.log(`${"tool".padEnd(8)}${"run".padEnd(6)}${"wall s".padStart(8)}${"MiB/s".padStart(8)}${"CPU s".padStart(8)}${"peak RSS MiB".padStart(14)}`);
  for (const r of runs) console.log(`${r.tool.padEnd(8)}${r.run.padEnd(6)}${(r.ms / 1000).toFixed(1).padStart(8)}${(o.bytes / MiB / (r.ms / 1000)).toFixed(0).padStart(8)}${(r.cpuMs / 1000).toFixed(1).padStart(8)}${r.rssMiB.toFixed(0).padStart(14)}`);
  await db.drop();
}

if (process.argv[2] === "--raw-loop") {
  await rawLoop(process.argv.slice(3));
} else {
  const { values } = parseArgs({
    options: { objects: { type: "string", default: "2000" }, size: { type: "string", default: "4KiB" }, concurrency: { type: "string", default: "16" }, rounds: { type: "string", default: "1" }, big: { type: "string" }, agencies: { type: "string" } },
  });
  const [objects, concurrency, rounds] = [values.objects, values.concurrency, values.rounds].map(Number) as [number, number, number];
  if (![objects, concurrency, rounds].every((n) => Number.isInteger(n) && n > 0)) throw new Error("--objects, --concurrency and --rounds must be whole numbers above 0");

  const stops: Array<() => void> = [];
  const work = await mkdtemp(join(tmpdir(), "etl-bench-copy-"));
  try {
    if (!process.env.DATABASE_URL) stops.push((await startPostgres().then((pg) => ((process.env.DATABASE_URL = pg.url), pg))).stop);
    let log: RequestLog | undefined;
    if (!process.env.S3_ENDPOINT) {
      ({ endpoint: process.env.S3_ENDPOINT, log } = await startLoggedS3());
      // moto accepts any credentials; they only have to be present, as in tests/harness/setup.ts.
      process.env.AWS_ACCESS_KEY_ID ??= "bench-access-key";
      process.env.AWS_SECRET_ACCESS_KEY ??= "bench-secret-key";
    }
    process.env.AWS_REGION ??= "us-east-1";
    if (!hasTime) console.log(`note: no ${TIME}; peak RSS reads at least this process's own`);
    const stack = { databaseUrl: process.env.DATABASE_URL!, endpoint: process.env.S3_ENDPOINT!, work };
    if (values.big) await benchBig({ ...stack, bytes: parseSize(values.big) });
    else if (values.agencies) await benchAgencies({ ...stack, objects, agencies: Number(values.agencies), size: parseSize(values.size), concurrency, rounds, log });
    else await benchCopies({ ...stack, objects, size: parseSize(values.size), concurrency, rounds, log });
  } finally {
    for (const stop of stops) stop();
    killTracked();
    await rm(work, { recursive: true, force: true });
  }
}
