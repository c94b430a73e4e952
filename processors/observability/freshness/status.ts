/**
 * A source's freshness in the terms of dbt's `source freshness` (sources.json v3, `results[]`):
 * its field names, statuses and thresholds, plus what was measured. The events carry this; the
 * artefact dbt's tools read is sources_json.ts, which keeps to what dbt's schema allows.
 */
import { formatDuration } from "../../../core/duration";

/** dbt's criteria period: freshness is declared in minutes, hours or days, as in dbt. */
export type FreshnessPeriod = "minute" | "hour" | "day";

export interface FreshnessThreshold {
  count: number;
  period: FreshnessPeriod;
}

const PERIOD_SECONDS: Record<FreshnessPeriod, number> = { minute: 60, hour: 3600, day: 86_400 };
const PERIOD_OF_UNIT: Record<string, FreshnessPeriod> = { m: "minute", h: "hour", d: "day" };

/** "26h" as dbt's `{count: 26, period: "hour"}`; throws naming the text when it is not `<n>m`, `<n>h` or `<n>d`. */
export function parseThreshold(text: string): FreshnessThreshold {
  const match = /^(\d+)([mhd])$/.exec(text);
  if (!match || Number(match[1]) === 0) throw new Error(`"${text}" is not a duration such as 90m, 26h or 2d`);
  return { count: Number(match[1]), period: PERIOD_OF_UNIT[match[2]!]! };
}

export function thresholdSeconds(threshold: FreshnessThreshold): number {
  return threshold.count * PERIOD_SECONDS[threshold.period];
}

export interface FreshnessCriteria {
  warn_after: FreshnessThreshold;
  error_after: FreshnessThreshold;
}

/**
 * dbt's statuses (`runtime error` when the source could not be measured), and ours: `never
 * delivered` for a source that has no data at all yet. That is worth a line, not a page: it
 * does not hold the monitor red for good (dbt would say error), which would hide every new problem.
 */
export type FreshnessStatus = "pass" | "warn" | "error" | "runtime error" | "never delivered";

/** One source's result: dbt's fields of a `results` entry, plus what was measured (`name`, `kind`, `detail`). */
export interface FreshnessResult {
  unique_id: string;
  name: string;
  kind: string;
  /** ISO 8601 UTC; null when the source was never loaded or could not be measured. */
  max_loaded_at: string | null;
  snapshotted_at: string;
  max_loaded_at_time_ago_in_s: number | null;
  status: FreshnessStatus;
  criteria: FreshnessCriteria;
  /** Seconds spent measuring the source. */
  execution_time: number;
  /** Why the source could not be measured (status `runtime error`). */
  error?: string;
  /**
   * Of a silver partition: the oldest bronze file of the last days that its day's partition was
   * not built from (late data, or a day never built), and how long it has waited. Judged by the
   * same thresholds: silver that lags its bronze is stale, however recent its last commit.
   */
  unbuilt?: { since: string; partition: string; files: number; waiting_in_s: number };
  /** What the measurement found: the partition, the newest key, the run, or why there is nothing. */
  detail?: Record<string, string | number>;
}

/** pass, warn or error, as dbt decides it: stale once the lag is strictly over a threshold; no lag at all is `never delivered`. */
export function freshnessStatus(lagSeconds: number | null, criteria: FreshnessCriteria): Exclude<FreshnessStatus, "runtime error"> {
  if (lagSeconds === null) return "never delivered";
  if (lagSeconds > thresholdSeconds(criteria.error_after)) return "error";
  if (lagSeconds > thresholdSeconds(criteria.warn_after)) return "warn";
  return "pass";
}

const RANK: Record<Exclude<FreshnessStatus, "runtime error">, number> = { pass: 0, "never delivered": 1, warn: 2, error: 3 };

/** The worse of two statuses: a source is as stale as its stalest measure. */
export function worseStatus<T extends Exclude<FreshnessStatus, "runtime error">>(a: T, b: T): T {
  return RANK[a] >= RANK[b] ? a : b;
}

/** The value of etl_freshness_status: 0 ok, 1 warn, 2 error (a source that could not be measured included), 3 never delivered. */
export const STATUS_GAUGE: Record<FreshnessStatus, number> = { pass: 0, warn: 1, error: 2, "runtime error": 2, "never delivered": 3 };

/**
 * One source's result as a terminal shows it, one line, e.g. "bronze_service_requests error: last
 * loaded 7h00m ago (warn after 2h, error after 6h)". The event keeps every field.
 */
export function freshnessLine(result: FreshnessResult): string {
  const threshold = (t: FreshnessThreshold) => `${t.count}${t.period[0]}`;
  const criteria = `warn after ${threshold(result.criteria.warn_after)}, error after ${threshold(result.criteria.error_after)}`;
  const status = result.status === "pass" ? "ok" : result.status;
  if (result.status === "runtime error") return `${result.name} could not be measured: ${result.error}`;
  const reason = result.detail?.reason;
  const lag = result.max_loaded_at_time_ago_in_s;
  const loaded = lag === null ? (reason ?? "nothing loaded yet") : `last loaded ${formatDuration(lag * 1000)} ago`;
  const unbuilt = result.unbuilt ? `; bronze of ${result.unbuilt.partition} waiting ${formatDuration(result.unbuilt.waiting_in_s * 1000)} to be built (${result.unbuilt.files} file(s))` : "";
  return `${result.name} ${status}: ${loaded}${unbuilt} (${criteria})`;
}
