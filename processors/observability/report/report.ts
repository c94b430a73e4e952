/**
 * Gathers what `etl report` shows, from the run ledger, the dead letters, the declared sources
 * and the buckets' quarantine, each by the code that owns it: schedule_audit's judging,
 * freshness_monitor's checks, the DLQ's and quarantine's own readers.
 */
import type { Sql } from "../../../core/db/db";
import { DeadLetterAdmin } from "../../../core/ledger/dead_letters";
import { JobRunRepository } from "../../../core/ledger/job_runs";
import { LOST_AFTER_MS } from "../../../core/ledger/ledger";
import type { ScheduledJob } from "../../../core/runtime/contract";
import { locationUrl, parseLocation, type Location, type ObjectStore } from "../../../core/storage/object_store";
import { DeadLetterBacklogRepository } from "../../../repositories/dead_letter_backlog";
import { FreshnessRepository } from "../../../repositories/freshness";
import { SlotRunRepository } from "../../../repositories/slot_runs";
import { declaredBucketOpener } from "../freshness/probe";
import type { FreshnessSource } from "../freshness/sources";
import { backlogSection, quarantineBuckets } from "./backlog";
import { freshnessSection } from "./freshness";
import { overallStatus } from "./overall";
import type { StatusReport } from "./page";
import { reportDays, slotGrid } from "./slot_grid";

export interface StatusReportOptions {
  sql: Sql;
  /** What the database is, for the header: never its password. */
  database: string;
  /** Every job's schedules (the registry's, jobs/schedules.generated.ts in a binary). */
  schedules: readonly ScheduledJob[];
  sources: readonly FreshnessSource[];
  /** Where to read a declared bucket from instead (--bucket-map). */
  bucketMap: ReadonlyMap<string, Location>;
  openLocation: (location: Location) => Promise<ObjectStore>;
  days: number;
  graceMs: number;
  signal: AbortSignal;
  now?: Date;
}

export async function buildStatusReport(o: StatusReportOptions): Promise<StatusReport> {
  const now = o.now ?? new Date();
  const openStore = declaredBucketOpener(o.bucketMap, o.openLocation);
  const buckets = [...new Set([...o.sources.flatMap((s) => ("bucket" in s ? [s.bucket] : [])), ...quarantineBuckets(o.schedules)])].sort();
  const grid = await slotGrid({ schedules: o.schedules, runs: new SlotRunRepository(o.sql), days: o.days, graceMs: o.graceMs, lostAfterMs: LOST_AFTER_MS, now });
  const freshness = await freshnessSection({
    sources: o.sources,
    // The only identifiers the repository reads: the declared tables and columns.
    freshness: new FreshnessRepository(o.sql, o.sources.flatMap((s) => (s.kind === "table" ? [{ table: s.table, column: s.column }] : []))),
    openStore,
    jobRuns: new JobRunRepository(o.sql),
    signal: o.signal,
    now: () => now,
  });
  const backlog = await backlogSection({
    backlog: new DeadLetterBacklogRepository(o.sql),
    deadLetters: new DeadLetterAdmin(o.sql),
    quarantines: quarantineBuckets(o.schedules).map((bucket) => ({ bucket, open: () => openStore(bucket) })),
  });
  return {
    generatedAt: now,
    database: o.database,
    buckets: buckets.map((bucket) => ({ bucket, url: locationUrl(o.bucketMap.get(bucket) ?? parseLocation(bucket)) })),
    days: reportDays(o.days, now).days,
    graceMs: o.graceMs,
    grid,
    freshness,
    backlog,
    overall: overallStatus(grid, freshness, backlog),
  };
}
