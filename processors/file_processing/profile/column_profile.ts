import type { ColumnProfile } from "./profile_document";
import { quoteText, type ProfiledColumn, type ProfileSql } from "./relation";

export interface ColumnScanOptions {
  /** Most frequent values kept per column. */
  topValues: number;
  /** Columns with at most about this many distinct values are counted exactly; above it, estimated. */
  exactDistinctUpTo: number;
}

const QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95];
const QUANTILE_NAMES = QUANTILES.map((q) => `p${String(Math.round(q * 100)).padStart(2, "0")}`);
// GROUPING SETS take at most 64 columns; the exact pass goes through the columns in batches of this many.
const GROUPING_BATCH = 60;
// The main scan's aggregate states are held in memory (they do not spill): all of a 300-column
// table's at once ran out of 256MB; 100 columns at a time fit.
const SCAN_BATCH = 100;
// Columns with at most this many values (estimated) are grouped by value for their top values (countValues).
const TOP_GROUPED_UP_TO = 10_000;
// count(distinct) columns per scan (countValues).
const DISTINCT_BATCH = 10;
// Rows the top-value candidates of the other columns come from (topCandidates).
const CANDIDATE_ROWS = 100_000;

/** Alias of column i's typed value in `projected` (clear of any column's own name). */
export const valueAlias = (i: number) => `"__v${i}"`;

/**
 * `profiled` with each column's typed value beside its raw one, so a cast is written once and
 * check conditions (over the raw columns) read the same relation.
 */
export function projectedRelation(columns: readonly ProfiledColumn[]): string {
  const values = columns.map((c, i) => `${c.kind === "other" ? `${c.value}::varchar` : c.value} as ${valueAlias(i)}`);
  return `(select *${values.length ? ", " + values.join(", ") : ""} from profiled)`;
}

export interface MainPass {
  rows: number;
  columns: Record<string, ColumnProfile>;
  /** The caller's extra aggregates (check counts), by alias. */
  extras: Record<string, unknown>;
  /** Per numeric or temporal column with a value, its least and greatest value as a number (seconds since the epoch for temporal ones): the histograms' range. */
  ranges: Map<string, { min: number; max: number }>;
}

/**
 * The scan every profile makes (one per 100 columns): per column counts, nulls, blanks, a
 * distinct estimate, min/max, mean/stddev, quantiles, lengths, zeros and negatives and misfits of
 * the declared type, plus `extras` (aggregates over `profiled`'s columns, e.g. a check's count_if).
 */
export async function scanColumns(db: ProfileSql, columns: readonly ProfiledColumn[], extras: Record<string, string>): Promise<MainPass> {
  const row: Record<string, unknown> = {};
  for (let start = 0; start < Math.max(columns.length, 1); start += SCAN_BATCH) {
    const aggregates = start ? [] : ["count(*)::double as rows", ...Object.entries(extras).map(([alias, sql]) => `${sql} as "x_${alias}"`)];
    for (let i = start; i < Math.min(start + SCAN_BATCH, columns.length); i++) aggregates.push(...columnAggregates(columns[i]!, i));
    Object.assign(row, (await db.runAndReadAll(`select ${aggregates.join(",\n")} from ${projectedRelation(columns)}`)).getRowObjectsJson()[0]);
  }
  const rows = Number(row.rows);
  const profiles: Record<string, ColumnProfile> = {};
  const ranges = new Map<string, { min: number; max: number }>();
  for (const [i, c] of columns.entries()) {
    const get = (metric: string) => row[`a${i}_${metric}`];
    const count = Number(get("count"));
    const profile: ColumnProfile = {
      type: c.casts ? `${c.readType} read as ${c.declaredType}` : c.readType,
      ...(c.declaredType ? { declaredType: c.declaredType } : {}),
      count,
      nulls: rows - count,
      nullRatio: rows ? (rows - count) / rows : 0,
      ...(c.readType === "VARCHAR" ? { empty: Number(get("empty")) } : {}),
      // The estimate can exceed the values there are (1.18M for 1M distinct titles here).
      distinct: Math.min(Number(get("distinct")), count),
      distinctExact: false,
      min: (get("min") ?? null) as ColumnProfile["min"],
      max: (get("max") ?? null) as ColumnProfile["max"],
      topValues: [],
    };
    if (c.kind === "numeric") Object.assign(profile, { mean: finite(get("mean")), stddev: finite(get("stddev")), zeros: Number(get("zeros")), negatives: Number(get("negatives")) });
    if (c.kind === "numeric" || c.kind === "temporal") {
      const q = (get("quantiles") as Array<number | string | null> | null) ?? [];
      profile.quantiles = Object.fromEntries(QUANTILE_NAMES.map((name, k) => [name, q[k] ?? null]));
      const [min, max] = c.kind === "numeric" ? [finite(get("min")), finite(get("max"))] : [finite(get("epoch_min")), finite(get("epoch_max"))];
      if (min !== null && max !== null) ranges.set(c.name, { min, max });
    }
    if (c.kind === "text") profile.length = { min: finite(get("len_min")), mean: finite(get("len_mean")), max: finite(get("len_max")) };
    if (c.casts) profile.notFit = Number(get("not_fit"));
    profiles[c.name] = profile;
  }
  const extraValues = Object.fromEntries(Object.keys(extras).map((alias) => [alias, row[`x_${alias}`]]));
  return { rows, columns: profiles, extras: extraValues, ranges };
}

function columnAggregates(c: ProfiledColumn, i: number): string[] {
  const v = valueAlias(i);
  const a = (sql: string, metric: string) => `${sql} as a${i}_${metric}`;
  const out = [a(`count(${c.raw})::double`, "count"), a(`approx_count_distinct(${v})::double`, "distinct")];
  // trim() on every value cost half a second per 1M strings; a blank one sorts below "!" (it is
  // empty or starts with a space), and that comparison reads only a value's inlined prefix.
  if (c.readType === "VARCHAR") out.push(a(`count_if(${c.raw} < '!' and trim(${c.raw}) = '')::double`, "empty"));
  if (c.casts) out.push(a(`count_if(${c.raw} is not null and trim(${c.raw}) <> '' and ${v} is null)::double`, "not_fit"));
  const quantiles = `[${QUANTILES.join(", ")}]`;
  switch (c.kind) {
    case "numeric":
      out.push(
        a(`min(${v})::double`, "min"),
        a(`max(${v})::double`, "max"),
        a(`avg(${v})::double`, "mean"),
        a(`stddev_samp(${v})::double`, "stddev"),
        a(`approx_quantile(${v}, ${quantiles})::double[]`, "quantiles"),
        a(`count_if(${v} = 0)::double`, "zeros"),
        a(`count_if(${v} < 0)::double`, "negatives"),
      );
      break;
    case "temporal":
      out.push(
        a(`min(${v})::varchar`, "min"),
        a(`max(${v})::varchar`, "max"),
        a(`approx_quantile(${v}, ${quantiles})::varchar[]`, "quantiles"),
        a(`epoch(min(${v}))::double`, "epoch_min"),
        a(`epoch(max(${v}))::double`, "epoch_max"),
      );
      break;
    case "text":
      out.push(
        a(`min(${v})`, "min"),
        a(`max(${v})`, "max"),
        a(`min(length(${v}))::double`, "len_min"),
        a(`avg(length(${v}))::double`, "len_mean"),
        a(`max(length(${v}))::double`, "len_max"),
      );
      break;
    case "boolean":
      out.push(a(`min(${v})`, "min"), a(`max(${v})`, "max"));
      break;
  }
  return out;
}

/**
 * Into the main pass's profiles: the top values with exact counts, in one GROUPING SETS scan per
 * 60 columns: a column of at most TOP_GROUPED_UP_TO estimated values is grouped by its values
 * (which counts them exactly too), any other only by its top candidates (the rest fall in one null
 * group), so every hash table stays small whatever the data. Grouping 100k-value columns by value
 * instead cost 1.2 s on 100k rows (ranking half a million groups); their exact count, if within
 * the bound, comes from count(distinct), 0.1 s.
 */
export async function countValues(db: ProfileSql, columns: readonly ProfiledColumn[], main: MainPass, o: ColumnScanOptions): Promise<void> {
  const indexed = columns.map((c, i) => ({ i, profile: main.columns[c.name]! }));
  const candidates = await topCandidates(db, columns, indexed.filter(({ profile }) => !grouped(profile, o)).map(({ i }) => i), o.topValues);
  for (let start = 0; start < indexed.length; start += GROUPING_BATCH) {
    const batch = indexed.slice(start, start + GROUPING_BATCH);
    // Grouped on the typed values and compared with typed candidates (the literals are cast once):
    // casting every value to text first made this pass 1.2 s of a 1M-row profile.
    const groups = batch.map(({ i, profile }, k) => {
      const v = valueAlias(i);
      if (grouped(profile, o)) return `${v} as g${k}`;
      const top = candidates.get(i) ?? [];
      return `${top.length ? `case when ${v} in (${top.map(quoteText).join(", ")}) then ${v} end` : "null"} as g${k}`;
    });
    const names = batch.map((_, k) => `g${k}`);
    const sql = `
      select gid::varchar as gid, v, n::double as n, count(*) over (partition by gid)::double as values_seen
      from (
        select grouping_id(${names.join(", ")}) as gid, coalesce(${names.map((n) => `${n}::varchar`).join(", ")}) as v, count(*) as n
        from (select ${groups.join(", ")} from ${projectedRelation(columns)})
        group by grouping sets (${names.map((n) => `(${n})`).join(", ")})
      )
      where v is not null
      qualify row_number() over (partition by gid order by n desc, v) <= ${o.topValues}`;
    const rows = (await db.runAndReadAll(sql)).getRowObjectsJson() as Array<{ gid: string; v: string; n: number; values_seen: number }>;
    // grouping_id sets the bit of each column not grouped, the first column's the highest.
    const all = (1n << BigInt(batch.length)) - 1n;
    for (const [k, { profile }] of batch.entries()) {
      const gid = String(all ^ (1n << BigInt(batch.length - 1 - k)));
      const mine = rows.filter((r) => r.gid === gid);
      if (grouped(profile, o)) Object.assign(profile, { distinct: mine[0]?.values_seen ?? 0, distinctExact: true });
      // A value seen once is one of many (ids, timestamps) unless the column has no more values than are kept.
      profile.topValues = mine.filter((r) => r.n > 1 || profile.distinct <= o.topValues).map((r) => ({ value: r.v, count: r.n }));
    }
  }
  // count(distinct) holds a hash table per column and thread from the start: 100 at once ran out of 256MB.
  const counted = indexed.filter(({ profile }) => !profile.distinctExact && profile.distinct <= o.exactDistinctUpTo);
  for (let start = 0; start < counted.length; start += DISTINCT_BATCH) {
    const batch = counted.slice(start, start + DISTINCT_BATCH);
    const [row] = (await db.runAndReadAll(`select ${batch.map(({ i }) => `count(distinct ${valueAlias(i)})::double as d${i}`).join(", ")} from ${projectedRelation(columns)}`)).getRowObjectsJson();
    for (const { i, profile } of batch) Object.assign(profile, { distinct: Number(row![`d${i}`]), distinctExact: true });
  }
}

/**
 * The most frequent values of the first CANDIDATE_ROWS rows of each column of `indices`: the
 * values whose exact counts the top-value pass takes, for the columns with too many values to be
 * grouped by value. A value frequent across the data is frequent in its first rows too (silver
 * parts are not sorted); one that only becomes frequent later is missed. A column with no value
 * twice in those rows (ids, titles) has none: counting 10M ids, titles and e-mails against their
 * candidates cost 2.2 s of a 10M-row profile. The first rows cost 0.1 s; a random 1% of every row,
 * sampled in the main scan, cost 1-3 s of 1M rows.
 */
async function topCandidates(db: ProfileSql, columns: readonly ProfiledColumn[], indices: readonly number[], topValues: number): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>();
  for (let start = 0; start < indices.length; start += DISTINCT_BATCH) {
    const batch = indices.slice(start, start + DISTINCT_BATCH);
    const aggregates = batch.map((i) => `approx_top_k(${valueAlias(i)}, ${topValues})::varchar[] as t${i}, count(${valueAlias(i)}) > count(distinct ${valueAlias(i)}) as r${i}`);
    const [row] = (await db.runAndReadAll(`select ${aggregates.join(", ")} from (select * from ${projectedRelation(columns)} limit ${CANDIDATE_ROWS})`)).getRowObjectsJson();
    for (const i of batch) if (row![`r${i}`]) found.set(i, ((row![`t${i}`] as Array<string | null> | null) ?? []).filter((v): v is string => v !== null));
  }
  return found;
}

/** Whether the column is grouped by its values (few enough of them) rather than by its top candidates. */
function grouped(profile: ColumnProfile, o: ColumnScanOptions): boolean {
  return profile.distinct <= Math.min(TOP_GROUPED_UP_TO, o.exactDistinctUpTo);
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
