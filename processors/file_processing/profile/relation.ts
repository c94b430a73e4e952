import type { ColumnSpec, ColumnType, Dataset } from "../../../core/dataset";
import { castExpression } from "../../data_pipeline/silver/transform";
import type { InputFormat } from "./inputs";

/** The part of a DuckDB connection the profile uses: rows as JSON values (BIGINT as text, lists as arrays). */
export interface ProfileSql {
  run(sql: string): Promise<unknown>;
  runAndReadAll(sql: string): Promise<{ getRowObjectsJson(): Array<Record<string, unknown>> }>;
}

/** How a column's values are profiled: the statistics that make sense for them. */
export type ValueKind = "numeric" | "temporal" | "text" | "boolean" | "other";

/** One column of the profiled relation, with the SQL the profile reads it through. */
export interface ProfiledColumn {
  name: string;
  /** DuckDB's type of the column as read. */
  readType: string;
  declaredType?: ColumnType;
  /** The column as read (quoted identifier). */
  raw: string;
  /** The typed value: `raw`, or the declared type's cast of the trimmed text when the files hold the column as text. */
  value: string;
  kind: ValueKind;
  /** Whether `value` casts text: the profile then counts what does not fit the declared type. */
  casts: boolean;
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const quoteText = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The declared types as silver writes them (processors/data_pipeline/silver/transform.ts). */
export const DECLARED_DUCKDB_TYPE: Record<ColumnType, string> = {
  string: "VARCHAR",
  integer: "BIGINT",
  number: "DOUBLE",
  boolean: "BOOLEAN",
  timestamp: "TIMESTAMP WITH TIME ZONE",
  date: "DATE",
};

function kindOf(duckType: string): ValueKind {
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\b.*)$/.test(duckType)) return "numeric";
  if (/^(DATE|TIME\b.*|TIMESTAMP\b.*)$/.test(duckType)) return "temporal";
  if (duckType === "VARCHAR") return "text";
  if (duckType === "BOOLEAN") return "boolean";
  return "other";
}

export interface RelationOptions {
  files: readonly string[];
  format: InputFormat;
  /** Whose types apply; text files are then read as text and cast here, so a bad value is counted, not fatal. */
  dataset?: Dataset;
  /** A partition without files still has these columns (its manifest's). */
  emptyColumns?: ReadonlyArray<{ name: string; type: string }>;
  /** Text files without a dataset: every column as text (after DuckDB's type detection failed on a later value). */
  allText?: boolean;
}

/**
 * The files as `profiled`; its columns, in file order. Parquet is a view (each scan reads only
 * the columns it needs); CSV and JSON are parsed once into a temp table (DuckDB spills it past its
 * memory limit), since the profile scans its input three or four times.
 */
export async function createProfiledRelation(db: ProfileSql, o: RelationOptions): Promise<ProfiledColumn[]> {
  const select = await selectFiles(db, o);
  if (o.format === "parquet" || !o.files.length) await db.run(`create or replace temp view profiled as ${select}`);
  else await db.run(`create or replace temp table profiled as ${select}`);
  const described = (await db.runAndReadAll("describe profiled")).getRowObjectsJson();
  return described.map((row) => {
    const name = String(row.column_name);
    const readType = String(row.column_type);
    const spec: ColumnSpec | undefined = o.dataset?.columns[name];
    const raw = quoteIdent(name);
    const casts = readType === "VARCHAR" && !!spec && spec.type !== "string";
    const valueType = casts ? DECLARED_DUCKDB_TYPE[spec!.type] : readType;
    return { name, readType, declaredType: spec?.type, raw, value: casts ? castExpression(`trim(${raw})`, spec!.type) : raw, kind: kindOf(valueType), casts };
  });
}

async function selectFiles(db: ProfileSql, o: RelationOptions): Promise<string> {
  if (!o.files.length) {
    const columns = (o.emptyColumns ?? []).map((c) => `null::${c.type} as ${quoteIdent(c.name)}`);
    return `select ${columns.join(", ")} where false`;
  }
  const list = `[${o.files.map(quoteText).join(", ")}]`;
  const asText = !!o.dataset || !!o.allText;
  switch (o.format) {
    case "parquet":
      return `select * from read_parquet(${list}, union_by_name = true, hive_partitioning = false)`;
    case "csv":
      return `select * from read_csv(${list}, header = true, union_by_name = true, hive_partitioning = false${asText ? ", all_varchar = true" : ""})`;
    case "ndjson": {
      const detect = `read_json(${list}, format = 'newline_delimited', union_by_name = true, hive_partitioning = false)`;
      if (!asText) return `select * from ${detect}`;
      // JSON has no header: the columns are those DuckDB's detection sees (a sample of each file), read as text.
      const names = (await db.runAndReadAll(`describe select * from ${detect}`)).getRowObjectsJson().map((r) => String(r.column_name));
      return `select * from read_json(${list}, format = 'newline_delimited', hive_partitioning = false, columns = {${names.map((n) => `${quoteText(n)}: 'VARCHAR'`).join(", ")}})`;
    }
  }
}
