import type { DuplicateProfile } from "./profile_document";
import { quoteIdent, type ProfileSql } from "./relation";

/** Values held by more than one row, for one set of columns (a key, a unique check's columns). */
export interface DuplicatedValues {
  columns: string[];
  /** Distinct values (rows with a null in the columns aside) that more than one row holds. */
  values: number;
  /** Rows holding them. */
  rows: number;
  /** A condition on `profiled` true for exactly those rows. */
  condition: string;
  /** The set's rows in `duplicated_values`. */
  gid: string;
}

/**
 * Duplicated values of each column set (deduplicated) in one GROUPING SETS scan; only the groups
 * with more than one row are kept, in temp table `duplicated_values`, which the conditions read.
 * A key of 10M distinct values is a hash table DuckDB spills past its memory limit.
 */
export async function findDuplicatedValues(db: ProfileSql, sets: ReadonlyArray<readonly string[]>): Promise<DuplicatedValues[]> {
  const unique = [...new Map(sets.map((s) => [s.join("\u0000"), [...s]])).values()];
  if (!unique.length) return [];
  const columns = [...new Set(unique.flat())];
  const set = (s: string[]) => `(${s.map(quoteIdent).join(", ")})`;
  const all = (1n << BigInt(columns.length)) - 1n;
  // grouping_id sets the bit of each column not grouped, the first column's the highest.
  const gidOf = (s: string[]) => String(s.reduce((gid, c) => gid ^ (1n << BigInt(columns.length - 1 - columns.indexOf(c))), all));
  const complete = unique.map((s) => `(grouping_id(${columns.map(quoteIdent).join(", ")}) = ${gidOf(s)} and ${s.map((c) => `${quoteIdent(c)} is not null`).join(" and ")})`);
  await db.run(`
    create or replace temp table duplicated_values as
    select grouping_id(${columns.map(quoteIdent).join(", ")})::varchar as gid, ${columns.map(quoteIdent).join(", ")}, count(*)::double as n
    from profiled
    group by grouping sets (${unique.map(set).join(", ")})
    having count(*) > 1 and (${complete.join(" or ")})`);
  const totals = (await db.runAndReadAll(`select gid, count(*)::double as "values", sum(n)::double as rows from duplicated_values group by gid`)).getRowObjectsJson();
  return unique.map((s) => {
    const gid = gidOf(s);
    const found = totals.find((t: Record<string, unknown>) => t.gid === gid);
    return {
      columns: s,
      values: Number(found?.values ?? 0),
      rows: Number(found?.rows ?? 0),
      condition: `${set(s)} in (select ${s.map(quoteIdent).join(", ")} from duplicated_values where gid = '${gid}')`,
      gid,
    };
  });
}

/**
 * The dataset-level duplicates: rows that repeat an earlier row in every column, and the key's
 * duplicated values with a sample. With a key, identical rows can only be among the rows of a
 * duplicated key, so only those are compared, exactly; without one, every row is grouped by a
 * 64-bit hash of all its columns (a collision among 10M distinct rows has odds of about 3 in a
 * million).
 */
export async function profileDuplicates(db: ProfileSql, columnNames: readonly string[], key: DuplicatedValues | undefined, sampleRows: number): Promise<DuplicateProfile> {
  const all = columnNames.map(quoteIdent).join(", ");
  if (!columnNames.length) return { rows: 0, keys: null };
  if (!key) {
    const [row] = (await db.runAndReadAll(`select coalesce(sum(n - 1), 0)::double as rows from (select count(*) as n from profiled group by hash(${all}) having count(*) > 1)`)).getRowObjectsJson();
    return { rows: Number(row!.rows), keys: null };
  }
  let rows = 0;
  let sample: Array<Record<string, unknown>> = [];
  if (key.values) {
    const [row] = (await db.runAndReadAll(`select coalesce(sum(n - 1), 0)::double as rows from (select count(*) as n from profiled where ${key.condition} group by ${all} having count(*) > 1)`)).getRowObjectsJson();
    rows = Number(row!.rows);
    const keyColumns = key.columns.map(quoteIdent).join(", ");
    sample = (await db.runAndReadAll(`select ${keyColumns}, n::double as "rows" from duplicated_values where gid = '${key.gid}' order by n desc, ${keyColumns} limit ${sampleRows}`)).getRowObjectsJson();
  }
  return { rows, keys: { columns: key.columns, duplicatedKeys: key.values, rowsWithDuplicatedKey: key.rows, sample } };
}
