import { TransientError } from "../../core/errors";
import type { Counts } from "../../core/runtime/job";
import type { Logger } from "../../core/log";
import { mapBounded } from "../../core/executor";
import { readUnlessMissing } from "../../core/db/missing_table";
import { selfCommand } from "../../core/runtime/self_command";
import type { JobRunRepository, SlotState } from "../../core/ledger/job_runs";

export type Reprocess = "missing" | "failed" | "all";

export interface PlannedSlot {
  /** YYYY-MM-DD */
  date: string;
  state: SlotState["state"];
  /** The latest run of the slot, when there is one. */
  lastRunId?: string;
}

/** Every day from `from` to `to`, both included (UTC dates). */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/**
 * The slots to run, from the ledger: `missing` (the default) every day without a success,
 * `failed` only the days whose runs all failed, `all` every day (run with --force). With a shard,
 * only the days whose index in the range falls to it, so n pods split the range without overlap.
 */
export async function planBackfill(o: {
  runs: JobRunRepository;
  job: string;
  argsHash: string;
  days: string[];
  reprocess: Reprocess;
  shard?: { index: number; count: number };
}): Promise<PlannedSlot[]> {
  const days = o.shard ? o.days.filter((_, i) => i % o.shard!.count === o.shard!.index) : o.days;
  // A database without the ledger yet (a dry run does not migrate) has no runs of any day.
  const states = new Map((await readUnlessMissing(true, () => o.runs.slotStates(o.job, o.argsHash, days), [])).map((s) => [s.date, s]));
  const slots = days.map((date): PlannedSlot => {
    const s = states.get(date);
    return { date, state: s?.state ?? "missing", ...(s?.lastRunId && { lastRunId: s.lastRunId }) };
  });
  return slots.filter((s) => (o.reprocess === "all" ? true : o.reprocess === "failed" ? s.state === "failed" : s.state !== "succeeded"));
}

// Day runs that failed for want of a dependency (75), were interrupted (130, 143) or killed
// (137, SIGKILL: the OOM killer's, which Kubernetes retries in a pod): a rerun may succeed.
// Any other failure (a bad argument, recorded items, an error in the data) stays.
const TRANSIENT = new Set([75, 130, 137, 143]);

/**
 * Runs the planned slots as child runs of the job (`run(date)` spawns one and returns its exit
 * code), `parallel` at a time. On SIGTERM no new slot starts; the ones running are told to stop
 * by the caller's `run`. A killed backfill rerun continues where it stopped: the ledger knows.
 * When every failed day failed transiently, so does the backfill (exit 75): Kubernetes retries a
 * backfill whose days met a stopped or frozen PostgreSQL, where partial (exit 3, FailJob) left
 * them undone; a day that failed for good makes it partial.
 */
export async function runBackfill(o: { slots: PlannedSlot[]; parallel: number; run: (date: string) => Promise<number>; log: Logger; counts: Counts; signal: AbortSignal }): Promise<Counts> {
  const { counts } = o;
  Object.assign(counts, { planned: o.slots.length, succeeded: 0, failed: 0 });
  const failures: Array<{ date: string; exitCode: number }> = [];
  await mapBounded(
    o.slots,
    o.parallel,
    async (slot) => {
      const exitCode = await o.run(slot.date);
      if (exitCode === 0) counts.succeeded!++;
      else {
        counts.failed!++;
        failures.push({ date: slot.date, exitCode });
        o.log.warn("a slot failed; a rerun of the backfill retries it", { date: slot.date, exitCode });
      }
    },
    o.signal,
  );
  if (failures.length === 0 || !failures.every((f) => TRANSIENT.has(f.exitCode))) return counts;
  const days = failures
    .sort((a, b) => (a.date < b.date ? -1 : 1))
    .map((f) => `${f.date} (exit ${f.exitCode})`)
    .join(", ");
  throw new TransientError(`${failures.length} of ${o.slots.length} day(s) failed transiently: ${days}; a rerun of the backfill retries them`);
}

/**
 * One slot's run as a child process of the dispatcher (`etl run <job> ... --logical-date D`),
 * its logs on this process's stdout. SIGTERM here is passed on; the child drains and exits.
 */
export async function spawnSlotRun(o: { job: string; jobArgs: readonly string[]; date: string; force: boolean; signal: AbortSignal }): Promise<number> {
  // The Indexed Job's index is the backfill's shard, not the child's.
  const { JOB_COMPLETION_INDEX: _index, JOB_COMPLETION_COUNT: _count, ...env } = process.env;
  const child = Bun.spawn([...selfCommand(), "run", o.job, ...o.jobArgs, "--logical-date", o.date, ...(o.force ? ["--force"] : [])], {
    env,
    stdout: "inherit",
    stderr: "inherit",
  });
  const stop = () => child.kill("SIGTERM");
  o.signal.addEventListener("abort", stop, { once: true });
  try {
    return await child.exited;
  } finally {
    o.signal.removeEventListener("abort", stop);
  }
}
