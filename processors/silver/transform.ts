import type { ColumnSpec, Dataset } from "../../core/dataset";
import { EtlError } from "../../core/errors";

/** The part of a DuckDB connection the transform uses. */
export interface DuckSql {
  run(sql: string): Promise<unknown>;
  runAndReadAll(sql: string): Promise<{ getRowObjects(): Array<Record<string, unknown>> }>;
}

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

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteText = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * Reads the staged bronze files (every column as text) and, in one pass materialised as
 * `checked`: normalises (trim, lower-case, empty to null), validates and casts against the
 * dataset, and marks each invalid row with the first rule it broke, keeping its raw values.
 * Views over it: `rejects`, and `silver` (per key the row with the greatest version, with the
 * enrichment columns). One materialisation: DuckDB spills it past its memory limit.
 */
export async function transformPartition(db: DuckSql, dataset: Dataset, files: readonly string[], lookups: (keys: { agency: string[] }) => Promise<EnrichmentRows>): Promise<CheckedCounts> {
  const columns = Object.entries(dataset.columns);
  await db.run("set TimeZone = 'UTC'");
  const present = await readColumns(db, dataset, files);

  const raw = (name: string) => (present.has(name) ? `raw.${quoteIdent(name)}` : "null::varchar");
  await db.run(`
    create or replace temp view normalised as
    select filename,
           struct_pack(${columns.map(([n]) => `${quoteIdent(n)} := ${raw(n)}`).join(", ")}) as raw_row,
           ${columns.map(([name, spec]) => `${normaliseExpression(raw(name), spec)} as ${quoteIdent(name)}`).join(", ")}
    from raw`);
  const firstBroken = columns.flatMap(([name, spec]) => ruleChecks(name, spec));
  await db.run(`
    create or replace temp table checked as
    select filename, ${columns.map(([n]) => quoteIdent(n)).join(", ")}, broken, case when broken is not null then raw_row end as raw_row
    from (
      select filename, raw_row, ${columns.map(([name, spec]) => `${castExpression(`normalised.${quoteIdent(name)}`, spec)} as ${quoteIdent(name)}`).join(", ")},
             ${firstBroken.length ? `case ${firstBroken.join(" ")} else null end` : "null"} as broken
      from normalised
    )`);
  await requireColumns(db, dataset, present);

  await db.run(`
    create or replace temp view rejects as
    select filename as file, broken.rule as rule, broken.column_name as "column", broken.value as value, raw_row as "row"
    from checked where broken is not null`);
  const key = dataset.primaryKey.map(quoteIdent).join(", ");
  await db.run(`
    create or replace temp view deduplicated as
    select * exclude (rank) from (
      select ${columns.map(([n]) => quoteIdent(n)).join(", ")},
             row_number() over (partition by ${key} order by ${quoteIdent(dataset.versionColumn)} desc nulls last, filename desc) as rank
      from checked where broken is null
    ) where rank = 1`);
  await enrich(db, dataset, lookups);

  // Not count(distinct key) for the rows out: on 10M rows that aggregate was the run's RSS peak.
  const [counts] = (await db.runAndReadAll(`select count(*)::double as "rowsIn", count(broken)::double as rejected from checked`)).getRowObjects();
  return counts as unknown as CheckedCounts;
}

/** The bronze files as view `raw`; the columns they have. */
async function readColumns(db: DuckSql, dataset: Dataset, files: readonly string[]): Promise<Set<string>> {
  await db.run(`create or replace temp view raw as select * from ${readBronze(dataset, files)}`);
  return new Set((await db.runAndReadAll("describe raw")).getRowObjects().map((r) => String(r.column_name)));
}

/** Every staged file as one table of text columns, with the file each row came from. */
function readBronze(dataset: Dataset, files: readonly string[]): string {
  const list = `[${files.map(quoteText).join(", ")}]`;
  if (dataset.format === "csv") return `read_csv(${list}, header = true, all_varchar = true, union_by_name = true, filename = true, hive_partitioning = false)`;
  const columns = Object.keys(dataset.columns).map((c) => `${quoteIdent(c)}: 'VARCHAR'`).join(", ");
  return `read_json(${list}, format = 'newline_delimited', columns = {${columns}}, filename = true, hive_partitioning = false)`;
}

/**
 * A required column no file has is the partition's fault, not a row's: named, and the run fails.
 * A CSV header says which columns a file has. JSON has no header: a required column without one
 * valid value is looked for in the files again, and missing when no record carries it at all.
 */
async function requireColumns(db: DuckSql, dataset: Dataset, present: Set<string>): Promise<void> {
  const required = Object.entries(dataset.columns).filter(([, spec]) => spec.required).map(([name]) => name);
  let missing = required.filter((name) => !present.has(name));
  if (dataset.format === "ndjson") {
    const valid = (await db.runAndReadAll(`select count(*)::double as total, ${required.map((c) => `count(${quoteIdent(c)})::double as ${quoteIdent(c)}`).join(", ")} from checked`)).getRowObjects()[0]!;
    const suspects = (valid.total as number) > 0 ? required.filter((c) => valid[c] === 0) : [];
    if (suspects.length) {
      const carried = (await db.runAndReadAll(`select ${suspects.map((c) => `count(${quoteIdent(c)})::double as ${quoteIdent(c)}`).join(", ")} from raw`)).getRowObjects()[0]!;
      missing = suspects.filter((c) => carried[c] === 0);
    }
  }
  if (missing.length) throw new SchemaMismatchError(`dataset ${dataset.name}: required column${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing from every bronze file`);
}

function normaliseExpression(value: string, spec: ColumnSpec): string {
  let expression = spec.type === "string" && spec.trim === false ? value : `trim(${value})`;
  if (spec.lowercase || spec.email) expression = `lower(${expression})`;
  return `nullif(${expression}, '')`;
}

function castExpression(value: string, spec: ColumnSpec): string {
  switch (spec.type) {
    case "string":
      return value;
    case "integer":
      // try_cast would round "3.5" to 4: an integer must look like one.
      return `case when regexp_full_match(${value}, '[+-]?[0-9]+') then try_cast(${value} as bigint) end`;
    case "boolean":
      return `case when lower(${value}) in ('true', 't', '1', 'yes', 'y') then true when lower(${value}) in ('false', 'f', '0', 'no', 'n') then false end`;
    default:
      return `try_cast(${value} as ${PARQUET_TYPE[spec.type]})`;
  }
}

/** `when <broken> then {rule, column, value}` for each rule of the column, in the order they are checked. */
function ruleChecks(name: string, spec: ColumnSpec): string[] {
  const column = quoteIdent(name);
  const raw = `raw_row.${column}`;
  const broken = (condition: string, rule: string) => `when ${condition} then {'rule': ${quoteText(rule)}, 'column_name': ${quoteText(name)}, 'value': ${raw}}`;
  const checks: string[] = [];
  if (spec.required) checks.push(broken(`normalised.${column} is null`, "required"));
  if (spec.type !== "string") checks.push(broken(`normalised.${column} is not null and ${castExpression(`normalised.${column}`, spec)} is null`, `type: ${spec.type}`));
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
