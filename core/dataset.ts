/**
 * A dataset's declaration (one file per dataset under processors/datasets/): its columns and
 * types, key, which duplicate wins, normalisation, enrichment and, when an API feeds it, how
 * ingest_api pages through that API. The same declaration drives validation, the Parquet types,
 * `--help` and the docs.
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
  if (problems.length) throw new Error(`dataset ${definition.name}: ${problems.join("; ")}`);
  return Object.freeze(definition);
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
