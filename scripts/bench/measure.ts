/**
 * What every benchmark script measures a tool with: a child process run to completion under
 * /usr/bin/time, for its wall time, CPU and peak RSS. Peak RSS comes from time(1): Bun.spawn's
 * resourceUsage().maxRSS never reads below this process's own RSS (Linux carries the pre-exec
 * hiwater mark into the child's ru_maxrss). And the median the scripts report over rounds.
 */
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const TIME = "/usr/bin/time";
const ROOT = resolve(import.meta.dir, "..", "..");

export interface ChildMeasure {
  ms: number;
  cpuMs: number;
  /** Peak RSS of the child's largest process. */
  rssMiB: number;
  /** stdout, or its last `stdoutTail` characters. */
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  /** Added to this process's environment (LOG_FORMAT=json unless given); undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Exit codes that are a run, not a failure; any other stops the benchmark. */
  okCodes?: number[];
  /** Keep only this many characters of stdout (a tool printing a line per key). */
  stdoutTail?: number;
}

let timings = 0;

/** Runs `argv` from the repository root under /usr/bin/time; throws with its output's end when it fails. */
export async function measureChild(argv: string[], options: MeasureOptions = {}): Promise<ChildMeasure> {
  const { okCodes = [0], stdoutTail } = options;
  const timeFile = join(tmpdir(), `etl-bench-time-${process.pid}-${++timings}`);
  const env = Object.fromEntries(Object.entries({ ...process.env, LOG_FORMAT: "json", ...options.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const started = performance.now();
  const child = Bun.spawn([TIME, "-f", "%U %S %M", "-o", timeFile, ...argv], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([readStdout(child.stdout, stdoutTail), new Response(child.stderr).text(), child.exited]);
  const ms = performance.now() - started;
  const [user = 0, sys = 0, maxRssKiB = 0] = (await Bun.file(timeFile).text()).trim().split("\n").pop()!.split(" ").map(Number);
  await rm(timeFile, { force: true });
  if (!okCodes.includes(exitCode)) throw new Error(`${argv.join(" ")} exited ${exitCode}\n${stderr.slice(-3000)}\n${stdout.slice(-3000)}`);
  return { ms, cpuMs: (user + sys) * 1000, rssMiB: maxRssKiB / 1024, stdout, stderr };
}

async function readStdout(stream: ReadableStream<Uint8Array>, tail: number | undefined): Promise<string> {
  if (tail === undefined) return new Response(stream).text();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text = (text + decoder.decode(chunk, { stream: true })).slice(-tail);
  return text;
}

/** The median: the middle value, or the mean of the two middle ones. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
