/**
 * `bun scripts/bench/decrypt.ts`: decrypt_files against `gpg --decrypt` on the same message, and
 * where the job's time goes.
 *
 *   gpg   /usr/bin/gpg --decrypt -o <file> (GnuPG 2.2, libgcrypt's AES)
 *   job   bun jobs/decrypt_files.ts on a file: lake holding the message in inbox/
 *
 * The message is what a partner sends: a payload encrypted by gpg to an RSA key. `--payload zip`
 * (the default) is random bytes behind a zip signature, which gpg does not compress again;
 * `--payload csv` is text gpg compresses with zlib. Rounds alternate which tool goes first; the
 * table gives medians (wall, CPU) and the highest peak RSS, from /usr/bin/time. Every output is
 * checked against the payload's MD5, so a broken run cannot look fast.
 *
 * Then, in this process and on the same message, the parts of the job's decryption alone: the
 * file store's ETag (an MD5 of the message), reading it in 1 MiB chunks, AES-256-CFB and SHA-1
 * over it in node:crypto (what openpgp calls for the cipher and the MDC), openpgp's whole
 * decryption discarding the plaintext, and the same into the spool. `--profile` also runs the job
 * once under Bun's CPU profiler and prints its top functions by self time.
 *
 * Options: --size 500MiB --rounds 3 --payload zip|csv --profile. Reuses DATABASE_URL (a role that
 * may CREATE DATABASE) when set, else starts PostgreSQL as the tests do.
 */
import { createHash, createDecipheriv, randomBytes } from "node:crypto";
import { createReadStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decryptMessage } from "../../processors/file_processing/decrypt/decrypt_stream";
import { loadKeyring, type Keyring } from "../../processors/file_processing/decrypt/keys";
import { PlaintextSpool } from "../../processors/file_processing/decrypt/spool";
import { GPG, GnuPG } from "../../tests/harness/gpg";
import { startPostgres } from "../../tests/harness/postgres_server";
import { killTracked } from "../../tests/harness/processes";
import { createBenchDatabase } from "./database";
import { measureChild, median, type ChildMeasure } from "./measure";

const MiB = 1024 * 1024;

interface Measured { run: ChildMeasure; phases: Record<string, number> }

const { values: options } = parseArgs({
  options: { size: { type: "string", default: "500MiB" }, rounds: { type: "string", default: "3" }, payload: { type: "string", default: "zip" }, profile: { type: "boolean", default: false } },
});
const size = parseSize(options.size!);
const rounds = Number(options.rounds);
if (options.payload !== "zip" && options.payload !== "csv") throw new Error("--payload is zip or csv");

function parseSize(text: string): number {
  const [, n, unit] = /^(\d+)(MiB|GiB)?$/.exec(text) ?? [];
  if (!n) throw new Error(`--size ${text}: give e.g. 500MiB or 2GiB`);
  return Number(n) * (unit === "GiB" ? 1024 * MiB : MiB);
}

async function md5(path: string): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function writePayload(path: string): Promise<void> {
  const sink = Bun.file(path).writer({ highWaterMark: 8 * MiB });
  let written = 0;
  if (options.payload === "zip") {
    sink.write(Buffer.from("PK\x03\x04", "latin1"));
    written = 4;
  }
  let row = 0;
  while (written < size) {
    const chunk = options.payload === "zip"
      ? randomBytes(Math.min(8 * MiB, size - written))
      : Buffer.from(Array.from({ length: 20_000 }, () => `${++row},${(row * 7919) % 100_003}.25,partner order ${row % 977},2026-11-${String((row % 28) + 1).padStart(2, "0")}\n`).join("")).subarray(0, size - written);
    sink.write(chunk);
    written += chunk.length;
  }
  await sink.end();
}

/** Milliseconds `work` takes. */
async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** The parts of the job's decryption, each alone on the whole message. */
async function decryptionParts(cipherPath: string, keyring: Keyring): Promise<Record<string, number>> {
  const bytes = readFileSync(cipherPath).length;
  const overChunks = (each: (chunk: Buffer) => void) => timed(async () => {
    for await (const chunk of createReadStream(cipherPath, { highWaterMark: MiB })) each(chunk as Buffer);
  });
  const decipher = createDecipheriv("aes-256-cfb", randomBytes(32), Buffer.alloc(16));
  const sha1 = createHash("sha1");
  const decrypt = (write: (chunk: Uint8Array) => Promise<void>) => decryptMessage(createReadStream(cipherPath, { highWaterMark: MiB }), bytes, write, { keyring, maxOutputBytes: Number.MAX_SAFE_INTEGER, stallMs: 60_000 });
  const parts: Record<string, number> = {};
  parts["etag (MD5 of the message)"] = await timed(() => md5(cipherPath));
  parts["read in 1 MiB chunks"] = await overChunks(() => {});
  parts["AES-256-CFB, node:crypto"] = await overChunks((chunk) => decipher.update(chunk));
  parts["SHA-1 (the MDC), node:crypto"] = await overChunks((chunk) => sha1.update(chunk));
  parts["openpgp decrypt, plaintext discarded"] = await timed(() => decrypt(async () => {}));
  const spool = PlaintextSpool.open();
  try {
    parts["openpgp decrypt into the spool"] = await timed(() => decrypt((chunk) => spool.write(chunk)));
  } finally {
    spool.close();
  }
  return parts;
}

/** The top functions by self time from a `bun --cpu-prof-md` profile of one job run. */
async function profileJob(work: string, lakeFor: (name: string) => string, env: Record<string, string>): Promise<string> {
  const dir = join(work, "profile");
  await measureChild(["bun", "--cpu-prof-md", `--cpu-prof-dir=${dir}`, "jobs/decrypt_files.ts", "--bucket", `file:${lakeFor("profile")}`], { env });
  const markdown = readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith(".md"))!), "utf8");
  const table = markdown.slice(markdown.indexOf("## Hot Functions"));
  return table.split("\n").slice(0, 16).join("\n");
}

async function main(): Promise<void> {
  const stops: Array<() => unknown> = [];
  const work = await mkdtemp(join(tmpdir(), "etl-bench-decrypt-"));
  const gpg = GnuPG.create();
  try {
    if (!process.env.DATABASE_URL) stops.push((await startPostgres().then((pg) => ((process.env.DATABASE_URL = pg.url), pg))).stop);
    const db = await createBenchDatabase(process.env.DATABASE_URL!, `bench_decrypt_${process.pid}`, async () => {});
    stops.push(() => db.drop());
    const key = await gpg.generateKey("Bench Recipient <bench@example.com>", { type: "rsa" });
    const payloadPath = join(work, `payload.${options.payload}`);
    const cipherPath = join(work, `payload.${options.payload}.pgp`);
    await writePayload(payloadPath);
    await gpg.run(["--trust-model", "always", "--recipient", key.fingerprint, "--output", cipherPath, "--encrypt", payloadPath]);
    const expected = await md5(payloadPath);
    const cipherBytes = readFileSync(cipherPath).length;
    console.log(`payload ${options.payload}, ${(size / MiB).toFixed(0)} MiB; message ${(cipherBytes / MiB).toFixed(1)} MiB; ${rounds} rounds`);

    const env = { DATABASE_URL: db.url, ETL_PGP_PRIVATE_KEY: key.secretKey };
    /** A lake of its own per run (a new store URL, so the job never skips the message as processed). */
    const lakeFor = (name: string) => {
      const lake = join(work, `lake-${name}`);
      mkdirSync(join(lake, "inbox"), { recursive: true });
      linkSync(cipherPath, join(lake, "inbox", `payload.${options.payload}.pgp`));
      return lake;
    };
    const check = async (path: string, tool: string) => {
      if (!existsSync(path) || (await md5(path)) !== expected) throw new Error(`${tool}: ${path} is not the payload`);
      await rm(path, { force: true });
    };
    const tools: Record<"gpg" | "job", (round: number) => Promise<Measured>> = {
      gpg: async (round: number) => {
        const out = join(work, `gpg-${round}.out`);
        const run = await measureChild([GPG, "--homedir", gpg.home, "--batch", "--yes", "--output", out, "--decrypt", cipherPath]);
        await check(out, "gpg");
        return { run, phases: {} };
      },
      job: async (round: number) => {
        const lake = lakeFor(String(round));
        const run = await measureChild(["bun", "jobs/decrypt_files.ts", "--bucket", `file:${lake}`], { env });
        const events = run.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
        const decrypted = events.find((e) => e.msg === "decrypted");
        const summary = events.find((e) => e.event === "job.finished");
        if (summary?.counts?.decrypted !== 1 || summary.counts.bytes !== size) throw new Error(`job: unexpected summary ${JSON.stringify(summary)}`);
        await check(join(lake, `decrypted/payload.${options.payload}`), "job");
        await rm(lake, { recursive: true, force: true });
        return { run, phases: { "decrypt into the spool": decrypted.decryptMs, "publish (spool -> store), record": decrypted.publishMs, "rest of the run (list, ETag, keys, DB)": summary.durationMs - decrypted.decryptMs - decrypted.publishMs, "process start and exit": run.ms - summary.durationMs } };
      },
    };
    const results: Record<string, Measured[]> = { gpg: [], job: [] };
    const parts: Array<Record<string, number>> = [];
    const keyring = await loadKeyring({ ETL_PGP_PRIVATE_KEY: key.secretKey });
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["gpg", "job"] as const) : (["job", "gpg"] as const);
      for (const tool of order) results[tool]!.push(await tools[tool](round));
      parts.push(await decryptionParts(cipherPath, keyring));
      console.log(`round ${round + 1}: gpg ${(results.gpg!.at(-1)!.run.ms / 1000).toFixed(2)} s, job ${(results.job!.at(-1)!.run.ms / 1000).toFixed(2)} s`);
    }

    console.log(`\n${"tool".padEnd(6)}${"wall s".padStart(8)}${"MiB/s".padStart(8)}${"CPU s".padStart(8)}${"peak RSS MiB".padStart(14)}`);
    for (const [tool, runs] of Object.entries(results)) {
      const ms = median(runs.map((r) => r.run.ms));
      console.log(`${tool.padEnd(6)}${(ms / 1000).toFixed(2).padStart(8)}${(size / MiB / (ms / 1000)).toFixed(0).padStart(8)}${(median(runs.map((r) => r.run.cpuMs)) / 1000).toFixed(2).padStart(8)}${Math.max(...runs.map((r) => r.run.rssMiB)).toFixed(0).padStart(14)}`);
    }
    const ratio = median(results.job!.map((r) => r.run.ms)) / median(results.gpg!.map((r) => r.run.ms));
    console.log(`job / gpg: ${ratio.toFixed(2)}x wall time`);

    console.log("\nthe job's run (median ms):");
    for (const phase of Object.keys(results.job![0]!.phases)) console.log(`  ${phase.padEnd(44)}${median(results.job!.map((r) => r.phases[phase]!)).toFixed(0).padStart(8)}`);
    console.log("\nits decryption, part by part, each alone over the message (median ms):");
    for (const part of Object.keys(parts[0]!)) console.log(`  ${part.padEnd(44)}${median(parts.map((p) => p[part]!)).toFixed(0).padStart(8)}`);
    if (options.profile) console.log(`\n${await profileJob(work, lakeFor, env)}`);
  } finally {
    await gpg.close();
    await rm(work, { recursive: true, force: true });
    for (const stop of stops.reverse()) await stop();
    killTracked();
  }
}

await main();
