import { createHash } from "node:crypto";
import { JobRunRepository, type NewRun, type RunOutcome } from "../repositories/job_runs";
import type { Sql } from "./db";
import { errorMessage } from "./errors";
import { hostName } from "./host";
import { formatLogicalDate } from "./logical_date";
import type { Logger } from "./log";
import { VERSION } from "./version";

// A live run moves its heartbeat every 30 s; one silent for 2 minutes was killed.
export const HEARTBEAT_MS = 30_000;
export const LOST_AFTER_MS = 120_000;
// Finishing the row may not hold up the exit for longer than this (the JSON event is logged anyway).
const FINISH_TIMEOUT_MS = 5_000;

/** The run as the ledger records it; host, version and the args' hash are added here. */
export type LedgerRun = Omit<NewRun, "argsHash" | "host" | "version">;

/** The run's row in etl_job_runs while it lives (DESIGN.md "The run ledger"). */
export interface RunLedger {
  finish(outcome: RunOutcome): Promise<void>;
}

export interface LedgerStart {
  ledger: RunLedger;
  /** Set when the run must not work: its key already succeeded, or a live run works on it. */
  skipReason?: string;
}

/**
 * Writes the run's row (status running) and starts its heartbeat; or, when the run's key (job,
 * logical date, shard, args) already succeeded or is being worked on by a live run, writes it
 * skipped and says why. Marks lost the runs of the job whose heartbeat stopped. Throws when the
 * row cannot be written: the caller does not start the run unaudited.
 */
export async function startLedger(sql: Sql, run: LedgerRun, log: Logger, heartbeatMs = HEARTBEAT_MS): Promise<LedgerStart> {
  const runs = new JobRunRepository(sql);
  const { lost, skipReason } = await runs.start(
    { ...run, argsHash: argsHash(run.args), host: hostName(), version: VERSION },
    {
      lostAfterMs: LOST_AFTER_MS,
      skipReason: (b) =>
        b.status === "running"
          ? `run ${b.runId} on ${b.host} is working on ${describeKey(run)} (started ${b.at.toISOString()})`
          : `${describeKey(run)} already succeeded in run ${b.runId} at ${b.at.toISOString()}; --force runs it again`,
    },
  );
  if (lost.length) log.warn("marked runs lost: their heartbeat stopped", { runIds: lost });
  // The skipped run's row is written finished.
  if (skipReason) return { ledger: { finish: async () => {} }, skipReason };

  let finished = false;
  const heartbeat = setInterval(() => {
    runs.heartbeat(run.runId).then(
      (alive) => alive || finished || log.warn("the run's ledger row is no longer running: another run marked it lost"),
      (error) => log.warn("could not move the run's heartbeat", { error: errorMessage(error) }),
    );
  }, heartbeatMs);
  heartbeat.unref?.();

  return {
    ledger: {
      async finish(outcome) {
        if (finished) return;
        finished = true;
        clearInterval(heartbeat);
        try {
          const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${FINISH_TIMEOUT_MS / 1000} s`)), FINISH_TIMEOUT_MS).unref?.());
          await Promise.race([runs.finish(run.runId, outcome), timeout]);
        } catch (error) {
          log.warn("could not finish the run's ledger row; it will be marked lost", { error: errorMessage(error) });
        }
      },
    },
  };
}

function describeKey(run: LedgerRun): string {
  return `${run.job} for ${formatLogicalDate(run.logicalDate!)}${run.shard ? ` shard ${run.shard}` : ""}`;
}

/** sha256 of the arguments in key order, so the same arguments in another order hash the same. */
export function argsHash(args: Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson(args)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
