import type { ColumnSpec, ColumnType, Dataset } from "../../../core/dataset";
import { EtlError } from "../../../core/errors";
import { findUnreadable, openBronze, type BronzeRelation, type StagedFile, type UnreadableInput } from "./bronze_read";
import { quoteIdent, quoteText, type DuckSql } from "./duck_sql";

export type { DuckSql } from "./duck_sql";

/** A bronze partition whose shape does not fit its dataset: a required column missing in every file. */
export class SchemaMismatchError extends EtlError {
  constructor(message: string) {
    super("failed", message);
    this.name = "SchemaMismatchError";
  }
}

/** Rows read and rows rejected; the rows out are counted as they are written. */
export interface CheckedCounts {
  rowsIn: number;
  rejected: number;
}

export interface TransformCounts extends CheckedCounts {
  duplicates: number;
  rowsOut: number;
}

export interface EnrichmentRows {
  /** Per enrichment lookup (Dataset.enrich), the rows it found: key value to field values. */
  agency: Array<{ id: string; name: string; isActive: boolean }>;
}

const PARQUET_TYPE: Record<ColumnSpec["type"], string> = {
  string: "VARCHAR",
  integer: "BIGINT",
  number: "DOUBLE",
  boolean: "BOOLEAN",
  timestamp: "TIMESTAMPTZ",
  date: "DATE",
};

// RFC 5322 is larger; this is what a data contract can check: one @, a dot in the domain, no spaces.
const EMAIL = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$";

/** The rule an unreadable bronze file breaks, in the rejects file. */
export const UNREADABLE_FILE = "unreadable_file";

/**
 * Reads the bronze files (every column as text) and, in one pass materialised as `checked`:
 * normalises (trim, lower-case, empty to null), validates and casts against the dataset, and
 * marks each invalid row with the first rule it broke, keeping its raw values. Views over it:
 * `rejects` (the invalid rows, then the unreadable files), and `silver` (per key the row with the
 * greatest version, with the enrichment columns). One materialisation: DuckDB spills it past its
 * memory limit. A file DuckDB cannot read is left out and returned with its reason; the others
 * make the partition.
 */
export async function transformPartition(
  db: DuckSql,
  dataset: Dataset,
  files: readonly StagedFile[],
  lookups: (keys: { agency: string[] }) => Promise<EnrichmentRows>,
): Promise<{ counts: CheckedCounts; unreadable: UnreadableInput[] }> {
  await db.run("set TimeZone = 'UTC'");
  // In byte order of the keys, so that a row's file_index sorts as its file's key.
  let readable = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  let unreadable: UnreadableInput[] = [];
  let bronze: BronzeRelation;
  try {
    bronze = await checkBronze(db, dataset, readable);
  } catch (error) {
    // Reading every file alone costs a pass over them: only when reading them together failed.
    if (error instanceof EtlError) throw error;
    unreadable = await findUnreadable(db, dataset, readable);
    if (!unreadable.length) throw error;
    readable = readable.filter((file) => !unreadable.some((u) => u.key === file.key));
    bronze = await checkBronze(db, dataset, readable);
  }
  await requireColumns(db, dataset, bronze, readable.length);

  await db.run(`create or replace temp table unreadable_inputs (file varchar, detail varchar)`);
  if (unreadable.length) await db.run(`insert into unreadable_inputs values ${unreadable.map((u) => `(${quoteText(u.key)}, ${quoteText(u.reason)})`).join(", ")}`);
  const keys = readable.length ? `[${readable.map((f) => quoteText(f.key)).join(", ")}][file_index + 1]` : "null::varchar";
  await db.run(`
    create or replace temp view rejects as
    select ${keys} as file, broken.rule as rule, broken.column_name as "column", broken.value as value, raw_row as "row", null::varchar as detail
    from checked where broken is not null
    union all
    select file, ${quoteText(UNREADABLE_FILE)}, null, null, null, detail from unreadable_inputs`);
  await deduplicate(db, dataset);
  await enrich(db, dataset, lookups);

  // Not count(distinct key) for the rows out: on 10M rows that aggregate was the run's RSS peak.
  const [counts] = (await db.runAndReadAll(`select count(*)::double as "rowsIn", count(broken)::double as rejected from checked`)).getRowObjects();
  return { counts: counts as unknown as CheckedCounts, unreadable };
}

/** The files read as `checked` (see transformPartition); the relation they were read through. */
async function checkBronze(db: DuckSql, dataset: Dataset, files: readonly StagedFile[]): Promise<BronzeRelation> {
  const columns = Object.entries(dataset.columns);
  // Read in place, not through a view: read_csv sniffs every file again for each statement that
  // binds it, 330-370 ms for 6 files of 1M rows, and a view was bound four times.
  const bronze = await openBronze(db, dataset, files);
  if (bronze.csvColumns.has("file_index")) throw new SchemaMismatchError(`dataset ${dataset.name}: a bronze file has a column named file_index, a name this job reserves`);

  const raw = (name: string) => (bronze.columns.has(name) ? `raw.${quoteIdent(name)}` : "null::varchar");
  const firstBroken = columns.flatMap(([name, spec]) => ruleChecks(name, spec));
  // Each row keeps its file's index (4 bytes, not an 80-byte path) and its raw values only when
  // rejected, as one JSON value (a struct of nulls held 8 strings a row): 1M rows of
  // service_requests took 145 MiB instead of 236, under the default 256MB instead of spilling.
  await db.run(`
    create or replace temp table checked as
    select file_index, ${columns.map(([n]) => quoteIdent(n)).join(", ")}, broken, case when broken is not null then to_json(raw_row) end as raw_row
    from (
      select file_index, raw_row, ${columns.map(([name, spec]) => `${castExpression(`normalised.${quoteIdent(name)}`, spec.type)} as ${quoteIdent(name)}`).join(", ")},
             ${firstBroken.length ? `case ${firstBroken.join(" ")} else null end` : "null"} as broken
      from (
        select raw.file_index::integer as file_index,
               struct_pack(${columns.map(([n]) => `${quoteIdent(n)} := ${raw(n)}`).join(", ")}) as raw_row,
               ${columns.map(([name, spec]) => `${normaliseExpression(raw(name), spec)} as ${quoteIdent(name)}`).join(", ")}
        from ${bronze.sql} raw
      ) normalised
    )`);
  return bronze;
}

/**
 * `deduplicated`: the valid rows, per key the one with the greatest version (nulls last), of
 * equal versions the one from the file whose name sorts last. Only the keys with several valid
 * rows are ranked, the others pass through: ranking every row (all its columns) cost 0.3-0.5 s of
 * CPU more on 1M rows with 5% repeated keys, and held the 10M-row run's memory peak.
 */
async function deduplicate(db: DuckSql, dataset: Dataset): Promise<void> {
  const names = Object.keys(dataset.columns).map(quoteIdent).join(", ");
  const key = dataset.primaryKey.map(quoteIdent).join(", ");
  await db.run(`
    create or replace temp view deduplicated as
    with repeated as (select ${key} from checked where broken is null group by ${key} having count(*) > 1)
    select ${names} from (select ${names} from checked where broken is null) anti join repeated using (${key})
    union all
    select ${names} from (
      select ${names}, row_number() over (partition by ${key} order by ${quoteIdent(dataset.versionColumn)} desc nulls last, file_index desc) as rank
      from (select ${names}, file_index from checked where broken is null) semi join repeated using (${key})
    ) where rank = 1`);
}

/**
 * A required column no file has is the partition's fault, not a row's: named, and the run fails.
 * A CSV header says which columns a file has. JSON has no header: a required column no header
 * names and without one valid value is looked for in the JSON files again, and missing when no
 * record carries it at all. Without a readable file there is nothing to say.
 */
async function requireColumns(db: DuckSql, dataset: Dataset, bronze: BronzeRelation, files: number): Promise<void> {
  if (!files) return;
  const required = Object.entries(dataset.columns).filter(([, spec]) => spec.required).map(([name]) => name);
  let missing = required.filter((name) => !bronze.csvColumns.has(name));
  if (bronze.json && missing.length) {
    const count = (columns: string[]) => columns.map((c) => `count(${quoteIdent(c)})::double as ${quoteIdent(c)}`).join(", ");
    const valid = (await db.runAndReadAll(`select count(*)::double as total, ${count(missing)} from checked`)).getRowObjects()[0]!;
    const suspects = (valid.total as number) > 0 ? missing.filter((c) => valid[c] === 0) : [];
    const carried = suspects.length ? (await db.runAndReadAll(`select ${count(suspects)} from ${bronze.json}`)).getRowObjects()[0]! : {};
    missing = suspects.filter((c) => carried[c] === 0);
  }
  if (missing.length) throw new SchemaMismatchError(`dataset ${dataset.name}: required column${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing from every bronze file`);
}

function normaliseExpression(value: string, spec: ColumnSpec): string {
  let expression = spec.type === "string" && spec.trim === false ? value : trimSpaces(value);
  if (spec.lowercase || spec.email) expression = `lower(${expression})`;
  return `nullif(${expression}, '')`;
}

/**
 * trim(value), calling it only when it can change something: trim() decodes every character
 * (utf8proc) and copies the value, 0.85-1.0 s of CPU on 8 columns of 1M rows. It removes Unicode
 * space separators only, so an all-ASCII value (as many bytes as characters) without a space at
 * either end is already trimmed; the guard took that to 0.65 s on data where 3 of 8 columns have
 * spaces to trim.
 */
function trimSpaces(value: string): string {
  return `case when ${value} like ' %' or ${value} like '% ' or strlen(${value}) <> length(${value}) then trim(${value}) else ${value} end`;
}

/** A text value read as its declared type, null when it does not fit (profile_dataset reads bronze-typed text the same way). */
export function castExpression(value: string, type: ColumnType): string {
  switch (type) {
    case "string":
      return value;
    case "integer":
      // try_cast would round "3.5" to 4: an integer must look like one.
      return `case when regexp_full_match(${value}, '[+-]?[0-9]+') then try_cast(${value} as bigint) end`;
    case "boolean":
      return `case when lower(${value}) in ('true', 't', '1', 'yes', 'y') then true when lower(${value}) in ('false', 'f', '0', 'no', 'n') then false end`;
    default:
      return `try_cast(${value} as ${PARQUET_TYPE[type]})`;
  }
}

/** `when <broken> then {rule, column, value}` for each rule of the column, in the order they are checked. */
function ruleChecks(name: string, spec: ColumnSpec): string[] {
  const column = quoteIdent(name);
  const raw = `raw_row.${column}`;
  const broken = (condition: string, rule: string) => `when ${condition} then {'rule': ${quoteText(rule)}, 'column_name': ${quoteText(name)}, 'value': ${raw}}`;
  const checks: string[] = [];
  if (spec.required) checks.push(broken(`normalised.${column} is null`, "required"));
  if (spec.type !== "string") checks.push(broken(`normalised.${column} is not null and ${castExpression(`normalised.${column}`, spec.type)} is null`, `type: ${spec.type}`));
  if (spec.oneOf) checks.push(broken(`normalised.${column} not in (${spec.oneOf.map(quoteText).join(", ")})`, `one of: ${spec.oneOf.join(", ")}`));
  if (spec.email) checks.push(broken(`not regexp_full_match(normalised.${column}, ${quoteText(EMAIL)})`, "email"));
  return checks;
}

/** silver = deduplicated plus the enrichment columns, left-joined (unknown keys give nulls). */
async function enrich(db: DuckSql, dataset: Dataset, lookups: (keys: { agency: string[] }) => Promise<EnrichmentRows>): Promise<void> {
  const enrichments = dataset.enrich ?? [];
  if (!enrichments.length) {
    await db.run("create or replace temp view silver as select * from deduplicated");
    return;
  }
  const keys = new Set<string>();
  for (const e of enrichments) {
    const sql = `select distinct ${quoteIdent(e.key)}::varchar as k from checked where broken is null and ${quoteIdent(e.key)} is not null`;
    for (const row of (await db.runAndReadAll(sql)).getRowObjects()) keys.add(String(row.k));
  }
  const rows = await lookups({ agency: [...keys] });
  await db.run("create or replace temp table lookup_agency (id varchar, name varchar, is_active boolean)");
  for (let i = 0; i < rows.agency.length; i += 1000) {
    const values = rows.agency.slice(i, i + 1000).map((a) => `(${quoteText(a.id)}, ${quoteText(a.name)}, ${a.isActive})`);
    await db.run(`insert into lookup_agency values ${values.join(", ")}`);
  }
  const FIELDS: Record<string, string> = { name: "name", is_active: "is_active" };
  const added = enrichments.flatMap((e, i) => Object.entries(e.columns).map(([column, field]) => `l${i}.${quoteIdent(FIELDS[field] ?? field)} as ${quoteIdent(column)}`));
  const joins = enrichments.map((e, i) => `left join lookup_agency l${i} on l${i}.id = d.${quoteIdent(e.key)}::varchar`);
  await db.run(`create or replace temp view silver as select d.*, ${added.join(", ")} from deduplicated d ${joins.join(" ")}`);
}
