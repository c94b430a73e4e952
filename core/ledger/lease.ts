import type { Sql } from "../db/db";
import { TransientError, errorMessage } from "../errors";
import { hostName } from "../host";
import type { Logger } from "../log";
import { sleep } from "../http/retry";

/**
 * Exclusive work held through a row in etl_leases (migrations/0002). A session advisory lock was
 * lost silently with its connection and a second run copied alongside the first; a lease survives
 * a dropped connection, and its holder stops by itself before it could expire:
 * - the holder renews it every ttl/6;
 * - when no renewal has succeeded for ttl/2 (database unreachable), or a renewal finds the row
 *   taken, `signal` aborts with a TransientError: the run starts no new work and exits 75, at
 *   least ttl/2 before anyone else may take the lease;
 * - a lease nobody renewed for ttl is free. A run that finds the lease held watches the holder
 *   for two renewal periods: a holder that renews is alive (the run is skipped); one that does not
 *   was killed (SIGKILL, OOM), and the run waits for its lease to expire and takes it, instead of
 *   exiting 0 as "skipped" and leaving the work undone until the next schedule.
 * All times are the database's clock, so hosts with skewed clocks agree.
 */
export interface Lease {
  /** Aborts when the lease is lost; the reason is a TransientError saying why. */
  signal: AbortSignal;
  /** Gives the lease back (best effort: an unreleased lease expires after ttl). */
  release(): Promise<void>;
}

export interface LeaseHolder {
  runId: string;
  host: string;
  renewedSecondsAgo: number;
}

export interface LeaseOptions {
  name: string;
  runId: string;
  job: string;
  ttlMs: number;
  log: Logger;
  /** Stops the wait for an abandoned lease (SIGTERM). */
  signal?: AbortSignal;
}

// A holder that let two renewals pass is taken for dead.
const MISSED_RENEWALS_FOR_DEAD = 2;

/**
 * Takes the lease, or returns its live holder. A holder is live only when it renews while we
 * watch: a killed run's lease looks fresh for a moment after the kill, and a retry started in
 * that moment must not exit 0 as "skipped" and leave the work undone.
 */
export async function acquireLease(sql: Sql, options: LeaseOptions): Promise<Lease | { heldBy: LeaseHolder }> {
  const { name, runId, ttlMs, log } = options;
  const renewEveryMs = Math.max(50, Math.floor(ttlMs / 6));
  const deadAfterMs = renewEveryMs * MISSED_RENEWALS_FOR_DEAD;
  let watched: { runId: string; renewals: number; since: number } | undefined;
  for (;;) {
    const [taken] = await sql`
      insert into etl_leases as l (name, run_id, job, host, acquired_at, renewed_at, expires_at)
      values (${name}, ${runId}::uuid, ${options.job}, ${hostName()}, now(), now(), now() + ${ttlMs} * interval '1 millisecond')
      on conflict (name) do update
        set run_id = excluded.run_id, job = excluded.job, host = excluded.host,
            acquired_at = now(), renewed_at = now(), renewals = 0, expires_at = excluded.expires_at
        where l.expires_at < now()
      returning run_id`;
    if (taken) return holdLease(sql, options, renewEveryMs);
    const [holder] = await sql`
      select run_id::text as "runId", host, renewals::float8 as renewals,
             extract(epoch from now() - renewed_at)::float8 * 1000 as "renewedMsAgo",
             greatest(0, extract(epoch from expires_at - now()))::float8 * 1000 as "expiresInMs"
      from etl_leases where name = ${name}`;
    if (!holder) continue; // released between the two statements
    const heldBy = { runId: holder.runId, host: holder.host, renewedSecondsAgo: Math.round(holder.renewedMsAgo / 100) / 10 };
    if (watched && watched.runId === holder.runId) {
      if (holder.renewals > watched.renewals) return { heldBy };
    } else {
      watched = { runId: holder.runId, renewals: holder.renewals, since: performance.now() };
    }
    if (holder.renewedMsAgo < deadAfterMs && performance.now() - watched.since < deadAfterMs) {
      await sleep(renewEveryMs / 2, options.signal);
      continue;
    }
    log.warn("waiting for the lease of a run that stopped renewing it to expire", {
      lease: name,
      holder: holder.runId,
      host: holder.host,
      renewedSecondsAgo: heldBy.renewedSecondsAgo,
      expiresInSeconds: Math.round(holder.expiresInMs / 100) / 10,
    });
    await sleep(holder.expiresInMs + 50, options.signal);
  }
}

function holdLease(sql: Sql, options: LeaseOptions, renewEveryMs: number): Lease {
  const { name, runId, ttlMs, log } = options;
  const controller = new AbortController();
  // Counted from when the last successful renewal was sent: the row's expiry is later than that.
  let renewedAt = performance.now();
  let renewing = false;
  const lose = (why: string) => {
    if (controller.signal.aborted) return;
    clearInterval(timer);
    log.error("lease lost: starting no new work", { lease: name, reason: why });
    controller.abort(new TransientError(`lost the lease on ${name}: ${why}`));
  };
  const timer = setInterval(async () => {
    if (performance.now() - renewedAt > ttlMs / 2) return lose(`not renewed for ${Math.round((performance.now() - renewedAt) / 1000)} s`);
    if (renewing) return;
    renewing = true;
    const sentAt = performance.now();
    try {
      const rows = await sql`
        update etl_leases set renewed_at = now(), renewals = renewals + 1, expires_at = now() + ${ttlMs} * interval '1 millisecond'
        where name = ${name} and run_id = ${runId}::uuid
        returning 1`;
      if (rows.length === 0) lose("another run took it over");
      else renewedAt = sentAt;
    } catch (error) {
      log.warn("lease renewal failed", { lease: name, error: errorMessage(error) });
    } finally {
      renewing = false;
    }
  }, renewEveryMs);
  return {
    signal: controller.signal,
    async release() {
      clearInterval(timer);
      if (controller.signal.aborted) return;
      await sql`delete from etl_leases where name = ${name} and run_id = ${runId}::uuid`.catch((error) =>
        log.warn("could not release the lease; it expires by itself", { lease: name, error: errorMessage(error) }),
      );
    },
  };
}

/** Whether the run `runId` holds a lease that has not expired, i.e. it may still be working. */
export async function holdsLiveLease(sql: Sql, runId: string): Promise<boolean> {
  const [row] = await sql`select exists (select 1 from etl_leases where run_id::text = ${runId} and expires_at > now()) as live`;
  return row?.live === true;
}
