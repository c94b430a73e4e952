import { errorMessage } from "../../../core/errors";
import { mapBounded } from "../../../core/executor";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import { writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { measureSource, type ProbeDependencies } from "./probe";
import { criteriaOf, type FreshnessSource } from "./sources";
import { sourcesArtefact, type MeasuredSource } from "./sources_json";
import { STATUS_GAUGE, freshnessLine, freshnessStatus, worseStatus, type FreshnessResult } from "./status";

// Sources are measured side by side: most are one query, an s3_prefix is a listing that runs its
// own 8 requests at once (probe.ts), so 4 keeps a run under 40 requests in flight.
const SOURCES_AT_ONCE = 4;

export interface FreshnessCheckOptions {
  sources: readonly FreshnessSource[];
  probe: ProbeDependencies;
  log: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** The run's clock; tests move it. */
  now?: () => Date;
  /** Where to write dbt's sources.json artefact (sources_json.ts), and the run id it names. */
  sourcesJson?: { store: ObjectStore; key: string; invocationId: string };
}

/**
 * Measures every source and judges it against its thresholds, as dbt's `source freshness` does:
 * one `freshness.source` event per source (info when it passes, warn, error), one
 * `freshness.result` event with dbt's result fields and ours (`name`, `kind`, `detail`,
 * `unbuilt`), three gauges per source (four for a silver one), the counts, and with `sourcesJson`
 * dbt's artefact itself. `failed` is the sources at error plus those that could not be measured:
 * the runner makes the run partial (exit 3) when it is above zero; warnings and sources that
 * never delivered alone exit 0.
 */
export async function checkFreshness(o: FreshnessCheckOptions): Promise<Counts> {
  const now = o.now ?? (() => new Date());
  const started = performance.now();
  // dbt's thread_id: which of the SOURCES_AT_ONCE measurements in flight ran a source.
  const idleThreads = Array.from({ length: SOURCES_AT_ONCE }, (_, i) => `Thread-${SOURCES_AT_ONCE - i}`);
  const measured = await mapBounded(o.sources, SOURCES_AT_ONCE, async (source) => {
    const threadId = idleThreads.pop()!;
    try {
      const startedAt = now();
      const result = await checkSource(source, o.probe, now);
      return { result, startedAt, completedAt: now(), threadId } satisfies MeasuredSource;
    } finally {
      idleThreads.push(threadId);
    }
  }, o.signal);
  const results = measured.map((m) => m.result);
  const counts = { sources: results.length, ok: 0, warn: 0, neverDelivered: 0, error: 0, runtimeError: 0, failed: 0 };
  for (const [i, result] of results.entries()) {
    if (result.status === "pass") counts.ok++;
    else if (result.status === "warn") counts.warn++;
    else if (result.status === "never delivered") counts.neverDelivered++;
    else if (result.status === "error") counts.error++;
    else counts.runtimeError++;
    publishGauges(o.metrics, result);
    const level = result.status === "pass" ? "info" : result.status === "warn" || result.status === "never delivered" ? "warn" : "error";
    o.log[level]("freshness source", { event: "freshness.source", ...result, description: o.sources[i]!.description }, { pretty: freshnessLine(result) });
  }
  counts.failed = counts.error + counts.runtimeError;
  const elapsedTime = round((performance.now() - started) / 1000);
  // dbt's result document, for machines: a terminal has shown each of its results as a line already.
  o.log.info("freshness", { event: "freshness.result", elapsed_time: elapsedTime, results }, { pretty: false });
  if (o.sourcesJson) {
    const { store, key, invocationId } = o.sourcesJson;
    const body = new TextEncoder().encode(JSON.stringify(sourcesArtefact(measured, { invocationId, generatedAt: now(), elapsedTime }), null, 2) + "\n");
    await writeBytes(store, key, body, "application/json");
    o.log.info("wrote dbt's sources.json", { url: `${store.url}/${key}`, results: results.length });
  }
  return counts;
}

/** One source measured and judged against its thresholds; a source that cannot be measured is its `runtime error`. */
export async function checkSource(source: FreshnessSource, probe: ProbeDependencies, now: () => Date): Promise<FreshnessResult> {
  const started = performance.now();
  const criteria = criteriaOf(source);
  // dbt's source.<project>.<source>.<table>: the kind stands for dbt's source, the name for its table.
  const identity = { unique_id: `source.etl.${source.kind}.${source.name}`, name: source.name, kind: source.kind };
  try {
    const measured = await measureSource(source, { ...probe, now });
    const snapshottedAt = now();
    const lag = measured.maxLoadedAt ? round((snapshottedAt.getTime() - measured.maxLoadedAt.getTime()) / 1000) : null;
    const unbuilt = measured.unbuilt && { since: measured.unbuilt.since.toISOString(), partition: measured.unbuilt.partition, files: measured.unbuilt.files, waiting_in_s: round((snapshottedAt.getTime() - measured.unbuilt.since.getTime()) / 1000) };
    // Bronze waiting to be built is judged as a lag of its own: waiting is stale whatever the last commit.
    const waiting = unbuilt ? freshnessStatus(unbuilt.waiting_in_s, criteria) : "pass";
    return {
      ...identity,
      max_loaded_at: measured.maxLoadedAt?.toISOString() ?? null,
      snapshotted_at: snapshottedAt.toISOString(),
      max_loaded_at_time_ago_in_s: lag,
      status: measured.gone ? "error" : worseStatus(freshnessStatus(lag, criteria), waiting),
      criteria,
      execution_time: round((performance.now() - started) / 1000),
      detail: measured.detail,
      ...(unbuilt && { unbuilt }),
    };
  } catch (error) {
    // SIGTERM stops the run; anything else is this source's runtime error and the others go on.
    probe.signal.throwIfAborted();
    return {
      ...identity,
      max_loaded_at: null,
      snapshotted_at: now().toISOString(),
      max_loaded_at_time_ago_in_s: null,
      status: "runtime error",
      criteria,
      execution_time: round((performance.now() - started) / 1000),
      error: errorMessage(error),
    };
  }
}

/**
 * Every source has all three series in every push, so the Pushgateway keeps no stale value for
 * it: a source never loaded has max_loaded_at 0 and an infinite lag (it is as stale as can be);
 * one that could not be measured has NaN for both (unknown), and status 2.
 */
function publishGauges(metrics: Metrics, result: FreshnessResult): void {
  const labels = { source: result.name };
  const measured = result.status !== "runtime error";
  const loadedAt = result.max_loaded_at ? Date.parse(result.max_loaded_at) / 1000 : measured ? 0 : Number.NaN;
  const lag = result.max_loaded_at_time_ago_in_s ?? (measured ? Number.POSITIVE_INFINITY : Number.NaN);
  metrics.gauge("etl_freshness_status", "Freshness of the source: 0 ok, 1 warn, 2 error (stale or could not be measured), 3 never delivered", labels, STATUS_GAUGE[result.status]);
  if (result.kind === "silver_partition") {
    metrics.gauge("etl_freshness_unbuilt_seconds", "Seconds the oldest bronze file its silver partitions were not built from has waited (0: silver holds all of the last days' bronze)", labels, result.unbuilt?.waiting_in_s ?? (measured ? 0 : Number.NaN));
  }
  metrics.gauge("etl_freshness_lag_seconds", "Seconds since the source's data last landed (+Inf: never; NaN: could not be measured)", labels, lag);
  metrics.gauge("etl_freshness_max_loaded_at_timestamp_seconds", "When the source's data last landed, in Unix seconds (0: never; NaN: could not be measured)", labels, loadedAt);
}

/** Seconds to the millisecond, as dbt's floats. */
function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
