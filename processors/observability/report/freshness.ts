/**
 * Freshness and completeness for `etl report`. freshness_monitor keeps no per-source result in
 * the ledger (its run's counts only say how many passed), so each declared source is measured now
 * by the monitor's own processors (freshness/check.ts checkSource), as a freshness_monitor run would; the
 * last monitor runs are read from the ledger beside it. Completeness is the last completeness
 * check's counts from the ledger: checking it again lists a whole destination, a job's work.
 */
import { mapBounded } from "../../../core/executor";
import type { JobRun, JobRunRepository } from "../../../core/ledger/job_runs";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { FreshnessRepository } from "../../../repositories/freshness";
import { checkSource } from "../freshness/check";
import type { FreshnessSource } from "../freshness/sources";
import type { FreshnessResult } from "../freshness/status";

export const MONITOR_JOB = "freshness_monitor";
// The newest monitor runs searched for the last completeness check: the sources schedule runs 96
// times a day beside the daily completeness one, so 500 reach back five days.
const MONITOR_RUNS_SEARCHED = 500;
const SOURCES_AT_ONCE = 4;

export interface MeasuredFreshness {
  source: FreshnessSource;
  result: FreshnessResult;
}

export interface CompletenessSummary {
  run: JobRun;
  expected: number;
  present: number;
  missing: number;
  sizeMismatch: number;
  unexpected: number;
  /** present / expected (1 when none is expected). */
  ratio: number;
  /** Of an --all-agencies check: each agency's counts (metrics.byAgency). */
  byAgency: Array<{ agencyId: string; expected: number; present: number; missing: number; sizeMismatch: number; unexpected: number }>;
}

export interface FreshnessSection {
  measuredAt: Date;
  sources: MeasuredFreshness[];
  /** The ledger's last freshness_monitor run over the sources, and the last completeness check. */
  lastSourcesRun: JobRun | undefined;
  completeness: CompletenessSummary | undefined;
}

export interface FreshnessSectionOptions {
  sources: readonly FreshnessSource[];
  freshness: FreshnessRepository;
  openStore: (bucket: string) => Promise<ObjectStore>;
  jobRuns: JobRunRepository;
  signal: AbortSignal;
  now?: () => Date;
}

export async function freshnessSection(o: FreshnessSectionOptions): Promise<FreshnessSection> {
  const now = o.now ?? (() => new Date());
  const measuredAt = now();
  const probe = { freshness: o.freshness, openStore: o.openStore, signal: o.signal, now };
  // As many at once as the monitor measures (freshness/check.ts); its events and gauges are its run's, not the report's.
  const results = await mapBounded(o.sources, SOURCES_AT_ONCE, (source) => checkSource(source, probe, now), o.signal);
  const runs = await o.jobRuns.listRuns({ job: MONITOR_JOB, limit: MONITOR_RUNS_SEARCHED });
  const finished = runs.filter((r) => r.status !== "running" && r.status !== "skipped" && !r.dryRun);
  const completenessRun = finished.find(isCompletenessRun);
  return {
    measuredAt,
    sources: o.sources.map((source, i) => ({ source, result: results[i]! })),
    lastSourcesRun: finished.find((r) => !isCompletenessRun(r)),
    completeness: completenessRun && completenessOf(completenessRun),
  };
}

/** A completeness check's counts carry `expected` (completeness/merge.ts); a check of the sources' do not. */
function isCompletenessRun(run: JobRun): boolean {
  return typeof run.counts.expected === "number";
}

function completenessOf(run: JobRun): CompletenessSummary {
  const n = (counts: Record<string, unknown>, key: string) => Number(counts[key] ?? 0);
  const figures = (counts: Record<string, unknown>) => ({ expected: n(counts, "expected"), present: n(counts, "present"), missing: n(counts, "missing"), sizeMismatch: n(counts, "sizeMismatch"), unexpected: n(counts, "unexpected") });
  const total = figures(run.counts);
  const parts = (run.metrics.byAgency as { parts?: Record<string, Record<string, number>> } | undefined)?.parts ?? {};
  return {
    run,
    ...total,
    ratio: total.expected === 0 ? 1 : total.present / total.expected,
    byAgency: Object.entries(parts)
      .map(([agencyId, counts]) => ({ agencyId, ...figures(counts) }))
      .sort((a, b) => Number(a.agencyId) - Number(b.agencyId)),
  };
}
