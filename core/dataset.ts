/**
 * A dataset's declaration (one file per dataset under processors/datasets/): its columns and
 * types, key, which duplicate wins, normalisation, enrichment, the checks profile_dataset
 * evaluates and, when an API feeds it, how ingest_api pages through that API. The same
 * declaration drives validation, the Parquet types, `--help` and the docs.
 */
export type ColumnType = "string" | "integer" | "number" | "boolean" | "timestamp" | "date";

export interface ColumnSpec {
  type: ColumnType;
  description: string;
  /** A row without a value here is rejected. */
  required?: boolean;
  /** Applied before validation: strings are trimmed unless `trim: false`. */
  trim?: boolean;
  lowercase?: boolean;
  /** The value must look like an e-mail address (after trimming and lower-casing). */
  email?: boolean;
  /** The value must be one of these (after normalisation). */
  oneOf?: readonly string[];
}

/** How ingest_api walks the pages of a resource. */
export type Pagination =
  /** `{items, <cursorPath>: "abc"}` then `?<cursorParam>=abc`; a missing or null cursor ends it. */
  | { style: "cursor"; cursorPath: string; cursorParam: string }
  /** `{items, <nextPath>: "https://…?page=2"}`: follow the URL; a missing one ends it. */
  | { style: "next_url"; nextPath: string }
  /** RFC 8288 `Link: <…>; rel="next"`: follow it; no next link ends it. */
  | { style: "link_header" }
  /** `?<pageParam>=1&<sizeParam>=N`, pages numbered from `firstPage`. */
  | { style: "page"; pageParam: string; sizeParam: string; firstPage?: number; totalPath?: string }
  /** `?<offsetParam>=0&<limitParam>=N`. */
  | { style: "offset"; offsetParam: string; limitParam: string; totalPath?: string };

export interface ApiSource {
  /** The resource's path below the API's base URL, e.g. `/v1/service-requests`. */
  path: string;
  /** Environment variables holding the base URL and the bearer token. */
  baseUrlEnv: string;
  tokenEnv: string;
  /** Where the records sit in a page's body (dot path; "" when the body is the array). */
  itemsPath: string;
  pagination: Pagination;
  /** Items a page asks for, and the query parameter that asks (the page and offset styles name their own). */
  pageSize: number;
  pageSizeParam?: string;
  /**
   * Incremental pulls: only records whose `field` is at or after the watermark minus `lagSeconds`,
   * asked for with `?<param>=<ISO time>`. `sorted`: the API returns them in `field` order, so the
   * watermark may move after every landed file instead of only at the end of the pull.
   */
  incremental?: { field: string; param: string; lagSeconds: number; sorted: boolean };
}

export interface Enrichment {
  /** A lookup the pipeline's repositories provide, keyed by a column of this dataset. */
  lookup: "agency";
  key: string;
  /** New column name to the lookup's field. */
  columns: Record<string, string>;
}

/**
 * What profile_dataset checks on every profile of the dataset. `warn` is logged and pushed;
 * `error` makes the run partial (exit 3). A row check passes when the share of rows passing is at
 * least `mostly` (default 1): over every row for not_null and unique (nulls are not duplicates),
 * over the non-null values for in_set, regex and between.
 */
export type DatasetCheck = RowCheck | TableCheck;

interface CheckCommon {
  /** snake_case; default `<kind>_<column>` (or `<kind>` without a column). Names the failures file. */
  name?: string;
  /** Default "error". */
  severity?: "warn" | "error";
}

interface ColumnCheck extends CheckCommon {
  column: string;
  /** Share of rows that must pass, in (0, 1]; default 1. */
  mostly?: number;
}

export type RowCheck =
  | (ColumnCheck & { kind: "not_null" })
  /** No two rows share the value (nulls aside); `columns` for a compound value. */
  | (ColumnCheck & { kind: "unique" })
  | (Omit<ColumnCheck, "column"> & { kind: "unique"; columns: readonly string[] })
  | (ColumnCheck & { kind: "in_set"; values: readonly (string | number | boolean)[] })
  /** A search (RE2, as DuckDB's regexp_matches): anchor with ^ and $ to match the whole value. */
  | (ColumnCheck & { kind: "regex"; pattern: string })
  /** Inclusive bounds, numbers or, for dates and timestamps, ISO text; either may be left out. */
  | (ColumnCheck & { kind: "between"; min?: number | string; max?: number | string });

export type TableCheck =
  | (CheckCommon & { kind: "row_count_between"; min?: number; max?: number })
  /** The newest value of `column` (a timestamp or date) is at most this old when profiled. */
  | (CheckCommon & { kind: "freshness"; column: string; maxAgeHours: number })
  /** The columns are the declared ones (plus enrichment's), of the declared types where the files are typed. */
  | (CheckCommon & { kind: "schema"; allowExtraColumns?: boolean });

export type CheckKind = DatasetCheck["kind"];

/** The columns a check reads: one, several (a compound unique), or none (a table check). */
export function checkColumns(check: DatasetCheck): readonly string[] {
  if ("columns" in check) return check.columns;
  return "column" in check ? [check.column] : [];
}

export function checkName(check: DatasetCheck): string {
  return check.name ?? [check.kind, ...checkColumns(check)].join("_");
}

export interface DatasetDefinition {
  /** snake_case, the file's name and the bronze/silver folder. */
  name: string;
  description: string;
  /** How partners or ingest_api deliver it to bronze. */
  format: "ndjson" | "csv";
  columns: Record<string, ColumnSpec>;
  primaryKey: readonly string[];
  /** Of two rows with one key, the one with the greater value here wins. */
  versionColumn: string;
  enrich?: readonly Enrichment[];
  api?: ApiSource;
  checks?: readonly DatasetCheck[];
}

export type Dataset = Readonly<DatasetDefinition>;

const NAME = /^[a-z][a-z0-9_]*$/;

/** Checks a declaration once, at load, so a broken dataset file fails every test that loads it. */
export function defineDataset(definition: DatasetDefinition): Dataset {
  const problems: string[] = [];
  const columns = Object.keys(definition.columns);
  if (!NAME.test(definition.name)) problems.push(`name "${definition.name}" must be snake_case`);
  for (const column of columns) if (!NAME.test(column)) problems.push(`column "${column}" must be snake_case`);
  for (const key of definition.primaryKey) if (!definition.columns[key]?.required) problems.push(`key column "${key}" must be a required column`);
  if (!definition.primaryKey.length) problems.push("primaryKey names no column");
  if (!definition.columns[definition.versionColumn]) problems.push(`versionColumn "${definition.versionColumn}" is not a column`);
  for (const e of definition.enrich ?? []) {
    if (!definition.columns[e.key]) problems.push(`enrichment key "${e.key}" is not a column`);
    for (const added of Object.keys(e.columns)) if (definition.columns[added]) problems.push(`enrichment column "${added}" is already a column`);
  }
  const incremental = definition.api?.incremental;
  if (incremental && !definition.columns[incremental.field]) problems.push(`incremental field "${incremental.field}" is not a column`);
  problems.push(...checkProblems(definition));
  if (problems.length) throw new Error(`dataset ${definition.name}: ${problems.join("; ")}`);
  return Object.freeze(definition);
}

const CHECK_KINDS: readonly CheckKind[] = ["not_null", "unique", "in_set", "regex", "between", "row_count_between", "freshness", "schema"];

/** What is wrong with the declared checks: unknown columns, bad bounds, duplicate names... */
function checkProblems(definition: DatasetDefinition): string[] {
  const problems: string[] = [];
  // Checks run on silver, which has the enrichment's columns too.
  const columns = new Set([...Object.keys(definition.columns), ...(definition.enrich ?? []).flatMap((e) => Object.keys(e.columns))]);
  const names = new Set<string>();
  for (const check of definition.checks ?? []) {
    if (!CHECK_KINDS.includes(check.kind)) {
      problems.push(`check kind "${check.kind}" is not one of ${CHECK_KINDS.join(", ")}`);
      continue;
    }
    const name = checkName(check);
    const problem = (text: string) => problems.push(`check ${name}: ${text}`);
    if (!NAME.test(name)) problem("its name must be snake_case");
    if (names.has(name)) problem("another check has this name");
    names.add(name);
    if (check.severity !== undefined && check.severity !== "warn" && check.severity !== "error") problem(`severity must be warn or error`);
    for (const column of checkColumns(check)) if (!columns.has(column)) problem(`"${column}" is not a column`);
    if ("columns" in check && !check.columns.length) problem("columns names no column");
    if ("mostly" in check && check.mostly !== undefined && !(check.mostly > 0 && check.mostly <= 1)) problem("mostly must be above 0 and at most 1");
    switch (check.kind) {
      case "in_set":
        if (!check.values.length) problem("values is empty");
        break;
      case "regex":
        try {
          new RegExp(check.pattern);
        } catch (error) {
          problem(`pattern does not compile: ${(error as Error).message}`);
        }
        break;
      case "between":
      case "row_count_between":
        if (check.min === undefined && check.max === undefined) problem("give min, max or both");
        if (typeof check.min === "number" && typeof check.max === "number" && check.min > check.max) problem("min is above max");
        break;
      case "freshness": {
        const type = definition.columns[check.column]?.type;
        if (type && type !== "timestamp" && type !== "date") problem(`"${check.column}" is ${/^[aeiou]/.test(type) ? "an" : "a"} ${type}, not a timestamp or date`);
        if (!(check.maxAgeHours > 0)) problem("maxAgeHours must be above 0");
        break;
      }
    }
  }
  return problems;
}

/** The value at a dot path of a parsed JSON body ("" is the body itself). */
export function valueAtPath(body: unknown, path: string): unknown {
  if (!path) return body;
  let value: unknown = body;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
