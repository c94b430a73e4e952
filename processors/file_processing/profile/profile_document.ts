/**
 * `profile.json`, version 1: what profile_dataset writes beside a partition (or a prefix of files)
 * and what the next profile diffs against. Fields are added, never renamed or retyped, within a
 * version; a reader checks `version` first.
 */
export const PROFILE_VERSION = 1;

export interface ProfileDocument {
  version: typeof PROFILE_VERSION;
  /** The dataset whose declaration (types, key, checks) applied; null for files profiled without one. */
  dataset: string | null;
  /** YYYY-MM-DD of a silver partition; null for files under a prefix. */
  partition: string | null;
  source: ProfileSource;
  generatedAt: string;
  runId: string;
  rows: number;
  columns: Record<string, ColumnProfile>;
  duplicates: DuplicateProfile;
  checks: CheckResult[];
  diff: ProfileDiff;
  /** Milliseconds per query, to see what a profile costs. */
  timings: Record<string, number>;
  /** bronze_to_silver's rejects of the partition, by rule; absent for files under a prefix. */
  rejects?: PartitionRejects;
  /** The earlier profiles, oldest first (a partition's: the last partitions before it; a prefix's: the one it replaced). */
  trend?: TrendPoint[];
}

/** What bronze_to_silver left out of the partition (silver/<dataset>/dt=<date>/<run>/_rejects.ndjson). */
export interface PartitionRejects {
  /** The rejects file; null when no row nor input was rejected. */
  key: string | null;
  /** Rows read from bronze and rows rejected (the manifest's rows.in and rows.rejected). */
  rowsIn: number;
  rows: number;
  /** Per rule and column, most rows first, with a few of its rows. */
  byRule: Array<{ rule: string; column: string | null; rows: number; sample: Array<{ file: string | null; value: string | null; row: Record<string, unknown> | null }> }>;
  /** Bronze files left out because they could not be read. */
  inputs: Array<{ key: string; rule: string; reason: string }>;
}

/** One earlier profile, reduced to what a trend shows. */
export interface TrendPoint {
  partition: string | null;
  generatedAt: string;
  runId: string;
  key: string;
  rows: number;
  /** Per column, its share of nulls. */
  nullRatio: Record<string, number>;
  /** Per check, its status. */
  checks: Record<string, CheckStatus>;
  /** The rows bronze_to_silver rejected, when the profile recorded them. */
  rejected?: number;
}

export interface ProfileSource {
  /** s3://bucket or file:///dir. */
  store: string;
  format: "parquet" | "csv" | "ndjson";
  files: string[];
  /** The committed partition's manifest and the run that built it (`rows`: its rows in, out, rejected and duplicate). */
  manifest?: { key: string; runId: string; committedAt: string; rows?: { in: number; out: number; rejected: number; duplicates: number } };
}

export interface ColumnProfile {
  /** DuckDB's type of the values read (VARCHAR for text files profiled against a dataset). */
  type: string;
  /** The dataset's type for the column; absent without a dataset or for an undeclared column. */
  declaredType?: string;
  /** Non-null values. */
  count: number;
  nulls: number;
  nullRatio: number;
  /** Empty or blank strings, apart from nulls (text columns). */
  empty?: number;
  distinct: number;
  /** false above the exact-distinct bound: DuckDB's HyperLogLog estimate (a few % off). */
  distinctExact: boolean;
  /** Numbers for numeric columns, text (UTC for timestamps) for the others. */
  min: number | string | boolean | null;
  max: number | string | boolean | null;
  mean?: number | null;
  stddev?: number | null;
  /** Approximate (t-digest) p05, p25, p50, p75, p95 of numeric and temporal columns. */
  quantiles?: Record<string, number | string | null>;
  /**
   * Numeric and temporal columns with a value: `counts[i]` values in [edges[i], edges[i + 1]) (the
   * last bin includes its upper edge); edges are numbers, or ISO times for temporal columns.
   */
  histogram?: { edges: Array<number | string>; counts: number[] };
  /**
   * The most frequent values with exact counts, most frequent first (values as text). Above 10,000
   * values, a column's candidates are the frequent values (approx_top_k) of its first 100,000 rows;
   * a value seen once is kept only when the column has no more values than are kept.
   */
  topValues: Array<{ value: string | null; count: number }>;
  /** Characters per value, of text columns. */
  length?: { min: number | null; mean: number | null; max: number | null };
  zeros?: number;
  negatives?: number;
  /** Non-blank values that do not read as the declared type; present when the files hold the column as text. */
  notFit?: number;
}

export interface DuplicateProfile {
  /** Rows that repeat an earlier row in every column (the extra copies). */
  rows: number;
  /** Without a dataset there is no key: null. */
  keys: { columns: string[]; duplicatedKeys: number; rowsWithDuplicatedKey: number; sample: Array<Record<string, unknown>> } | null;
}

/** passed; failed at warn severity (warned) or at error severity (failed); skipped: it cannot apply to these files. */
export type CheckStatus = "passed" | "warned" | "failed" | "skipped";

export interface CheckResult {
  name: string;
  kind: string;
  columns: string[];
  severity: "warn" | "error";
  status: CheckStatus;
  /** Rows (or, for a table check, problems) that failed it. */
  failing: number;
  /** Rows it was evaluated on; the table checks: 1. */
  evaluated: number;
  passingShare: number;
  mostly: number;
  /** What was measured, in words: "3 values out of the set: maybe, ...", "newest 2026-11-01 10:00:00+00, 50.2 h old". */
  detail: string;
  /** Up to --sample-rows failing rows: the key columns and the checked ones. */
  sample?: Array<Record<string, unknown>>;
  /** Where every failing row was written (key in the profile's store). */
  failuresKey?: string;
  /** A between check's bounds, as declared. */
  range?: { min?: number | string; max?: number | string };
}

export interface ProfileDiff {
  /** The profile compared with; null when there was none. */
  against: { partition: string | null; runId: string; generatedAt: string; key: string } | null;
  changes: ProfileChange[];
}

export interface ProfileChange {
  /** "rows", a column's metric ("nullRatio", "distinct", "uniqueness", "mean", "notFit", "type", "added", "removed"), "duplicateKeys" or "check". */
  metric: string;
  column?: string;
  check?: string;
  before: number | string | null;
  after: number | string | null;
  /** For a person: "null % of priority 0.2% -> 31.0%". */
  message: string;
}
