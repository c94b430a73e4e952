import type { Metrics } from "../../../core/metrics/metrics";
import type { ProfileDocument } from "./profile_document";

/**
 * The profile's figures as labelled gauges pushed with the run. No partition label: a label per
 * day would leave a new series in the Pushgateway every day; the values are the latest profile's.
 */
export function publishProfileGauges(metrics: Metrics, document: ProfileDocument, dataset: string): void {
  const labels = { dataset };
  metrics.gauge("etl_profile_rows", "Rows in the latest profiled partition or files", labels, document.rows);
  metrics.gauge("etl_profile_duplicate_rows", "Rows repeating an earlier row in every column", labels, document.duplicates.rows);
  if (document.duplicates.keys) metrics.gauge("etl_profile_duplicate_keys", "Primary-key values held by more than one row", labels, document.duplicates.keys.duplicatedKeys);
  for (const [column, c] of Object.entries(document.columns)) {
    metrics.gauge("etl_profile_null_ratio", "Share of a column's values that are null", { ...labels, column }, c.nullRatio);
    metrics.gauge("etl_profile_distinct_values", "Distinct non-null values of a column (estimated above the exact bound)", { ...labels, column }, c.distinct);
  }
  for (const check of document.checks) {
    if (check.status === "skipped") continue;
    const checkLabels = { ...labels, check: check.name, severity: check.severity };
    metrics.gauge("etl_profile_check_passing_ratio", "Share of rows passing a declared check (table checks: 1 or 0)", checkLabels, check.passingShare);
    metrics.gauge("etl_profile_check_failed", "1 when a declared check fails (at its severity), else 0", checkLabels, check.status === "passed" ? 0 : 1);
  }
}
