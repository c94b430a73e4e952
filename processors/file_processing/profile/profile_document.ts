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
}

export interface ProfileSource {
  /** s3://bucket or file:///dir. */
  store: string;
  format: "parquet" | "csv" | "ndjson";
  files: string[];
  /** The committed partition's manifest and the run that built it. */
  manifest?: { key: string; runId: string; committedAt: string };
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
