import { createHash } from "node:crypto";
import { JobRunRepository, type NewRun, type RunOutcome } from "./job_runs";
import type { Sql } from "../db/db";
import { errorMessage } from "../errors";
import { hostName } from "../host";
import type { Lease, LeaseHolder } from "./lease";
import { formatLogicalDate } from "../runtime/logical_date";
import type { Logger } from "../log";
import { isLocation, locationUrl } from "../storage/object_store";
import { redactValue } from "../redact";
import { VERSION } from "../version";

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
  /** Aborts when the run loses its slot's lease: it stops starting work, as on SIGTERM. */
  signal?: AbortSignal;
}

export interface LedgerOptions {
  /** Takes a lease (core/ledger/lease.ts) for the slot of a run with a logical date. */
  acquireLease: (name: string) => Promise<Lease | { heldBy: LeaseHolder }>;
  heartbeatMs?: number;
}

/**
 * Writes the run's row (status running) and starts its heartbeat; or writes it skipped and says
 * why. A run with a logical date first takes its slot's lease (job, logical date, shard, args):
 * a live holder means another run works on the slot (skipped); a holder that died (SIGKILL, OOM)
 * stops renewing, and this run waits out its lease and takes over, so a retried pod does the work
 * instead of exiting 0 behind a ghost. Then a success of the slot skips the run, unless forced.
 * Marks lost the runs of the job whose heartbeat stopped. Throws when the row cannot be written:
 * the caller does not start the run unaudited.
 */
export async function startLedger(sql: Sql, run: LedgerRun, log: Logger, options: LedgerOptions): Promise<LedgerStart> {
  const runs = new JobRunRepository(sql);
  const row = { ...run, argsHash: argsHash(run.args), host: hostName(), version: VERSION };
  const keyed = run.logicalDate !== undefined && !run.dryRun;
  const lease = keyed ? await options.acquireLease(`run-slot:${run.job}:${argsHash({ at: run.logicalDate!.toISOString(), shard: run.shard ?? null, args: row.argsHash })}`) : undefined;
  if (lease && "heldBy" in lease) {
    const reason = `run ${lease.heldBy.runId} on ${lease.heldBy.host} is working on ${describeKey(run)}`;
    await runs.recordSkipped(row, reason);
    return { ledger: { finish: async () => {} }, skipReason: reason };
  }
  let started: { lost: string[]; skipReason?: string };
  try {
    started = await runs.start(row, {
      lostAfterMs: LOST_AFTER_MS,
      skipReason: (b) => `${describeKey(run)} already succeeded in run ${b.runId} at ${b.at.toISOString()}; --force runs it again`,
    });
  } catch (error) {
    await lease?.release();
    throw error;
  }
  if (started.lost.length) log.warn("marked runs lost: their heartbeat stopped or their process died", { runIds: started.lost });
  // The skipped run's row is written finished.
  if (started.skipReason) {
    await lease?.release();
    return { ledger: { finish: async () => {} }, skipReason: started.skipReason };
  }

  let finished = false;
  const heartbeat = setInterval(() => {
    runs.heartbeat(run.runId).then(
      (alive) => alive || finished || log.warn("the run's ledger row is no longer running: another run marked it lost"),
      (error) => log.warn("could not move the run's heartbeat", { error: errorMessage(error) }),
    );
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref?.();

  return {
    signal: lease?.signal,
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
        } finally {
          await lease?.release();
        }
      },
    },
  };
}

function describeKey(run: LedgerRun): string {
  return `${run.job} for ${formatLogicalDate(run.logicalDate!)}${run.shard ? ` shard ${run.shard}` : ""}`;
}

/**
 * Arguments as the start event and the ledger record them (and as the slot's key hashes them):
 * locations as URLs, secrets redacted, everything else as parsed.
 */
export function recordedArgs(args: Record<string, unknown>, secrets: readonly string[]): Record<string, unknown> {
  const described = Object.fromEntries(Object.entries(args).map(([key, value]) => [key, isLocation(value) ? locationUrl(value) : value]));
  return redactValue(described, secrets) as Record<string, unknown>;
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
