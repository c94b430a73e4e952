/**
 * A partition's bronze files as one DuckDB relation, each file read by its own extension:
 * `.csv` with a header, `.ndjson` and `.jsonl` one object a line, `.json` an array of objects or
 * one object a line, any of them gzipped (`.gz`). Every value is read as text; the transform
 * types it. A file DuckDB cannot read is found by reading each file alone (findUnreadable).
 */
import type { Dataset } from "../../../core/dataset";
import { errorMessage } from "../../../core/errors";
import { quoteIdent, quoteText, type DuckSql } from "./duck_sql";

export type BronzeFormat = "csv" | "ndjson" | "json";

const FORMATS: Array<[RegExp, BronzeFormat]> = [
  [/\.csv(\.gz)?$/, "csv"],
  [/\.(ndjson|jsonl)(\.gz)?$/, "ndjson"],
  [/\.json(\.gz)?$/, "json"],
];

/** The format a bronze file's name says (DESIGN.md storage layout), or undefined for a file of no format this job reads. */
export function bronzeFormat(name: string): BronzeFormat | undefined {
  return FORMATS.find(([pattern]) => pattern.test(name))?.[1];
}

/** A bronze file: its key in the lake and the local path DuckDB reads (in place, or staged). */
export interface StagedFile {
  key: string;
  path: string;
}

/** A bronze file left out of its partition, and why. */
export interface UnreadableInput {
  key: string;
  reason: string;
}

export interface BronzeRelation {
  /** A parenthesised relation: the files' rows, a text column per column read, and `file_index`, the row's file's index in the files given. */
  sql: string;
  /** The columns the relation has besides file_index. */
  columns: Set<string>;
  /** The columns the CSV files' headers name. */
  csvColumns: Set<string>;
  /** The JSON files alone (their declared columns), or undefined when there is none. */
  json?: string;
}

/**
 * One relation over `files`: a read per format, by name (a column a file lacks is null in its
 * rows). The CSV files' headers are read here (a sniff: 330-370 ms for 6 files of 1M rows), JSON
 * ones are read with the dataset's columns. With no file, the dataset's columns and no row.
 */
export async function openBronze(db: DuckSql, dataset: Dataset, files: readonly StagedFile[]): Promise<BronzeRelation> {
  const declared = Object.keys(dataset.columns);
  const reads = new Map<BronzeFormat, { indexes: number[]; paths: string[] }>();
  for (const [i, file] of files.entries()) {
    const format = bronzeFormat(file.key)!;
    const read = reads.get(format) ?? reads.set(format, { indexes: [], paths: [] }).get(format)!;
    read.indexes.push(i);
    read.paths.push(file.path);
  }
  const select = (format: BronzeFormat) => {
    const read = reads.get(format);
    return read ? [`select ${fileIndex(read.indexes)} as file_index, * from ${reader(format, dataset, read.paths)}`] : [];
  };
  const csvColumns = new Set<string>();
  const csv = reads.get("csv");
  // The caller refuses a header named file_index: it would hide DuckDB's virtual column.
  if (csv) for (const row of (await db.runAndReadAll(`describe select * from ${reader("csv", dataset, csv.paths)}`)).getRowObjects()) csvColumns.add(String(row.column_name));
  const json = [...select("ndjson"), ...select("json")];
  const selects = [...select("csv"), ...json];
  if (!selects.length) {
    return { sql: `(select null::integer as file_index, ${declared.map((c) => `null::varchar as ${quoteIdent(c)}`).join(", ")} where false)`, columns: new Set(declared), csvColumns };
  }
  return {
    sql: `(${selects.join(" union all by name ")})`,
    columns: new Set([...csvColumns, ...(json.length ? declared : [])]),
    csvColumns,
    json: json.length ? `(${json.join(" union all ")})` : undefined,
  };
}

/**
 * The files DuckDB cannot read, each read alone, with DuckDB's reason (the key in place of a
 * staged path). An error that is not the file's (memory, disk) is thrown, not blamed on it.
 */
export async function findUnreadable(db: DuckSql, dataset: Dataset, files: readonly StagedFile[]): Promise<UnreadableInput[]> {
  const unreadable: UnreadableInput[] = [];
  for (const file of files) {
    try {
      await db.runAndReadAll(`select count(*) from ${reader(bronzeFormat(file.key)!, dataset, [file.path])}`);
    } catch (error) {
      const message = errorMessage(error);
      if (!FILE_ERROR.test(message) || NOT_THE_FILE.test(message)) throw error;
      unreadable.push({ key: file.key, reason: shortReason(message, file) });
    }
  }
  return unreadable;
}

// DuckDB's errors for what a file holds (Malformed JSON, a CSV it cannot sniff, not gzip, not
// UTF-8), and the ones that say the machine, not the file, failed.
const FILE_ERROR = /^(Invalid Input|IO|Conversion) Error/;
const NOT_THE_FILE = /No space left|Too many open files|Cannot allocate|Out of Memory/i;

/** The first sentences of DuckDB's message, without its "Possible fixes" and the SQL it points at. */
function shortReason(message: string, file: StagedFile): string {
  const head = message.split(/\n\s*\n|\nLINE \d|\nThe search space|\nPossible (?:fixes|Solution)/)[0]!;
  return head.replaceAll(file.path, file.key).replace(/\s*\n\s*/g, " ").trim().slice(0, 500);
}

/** The file's index among all the files: DuckDB's virtual file_index counts within one read. */
function fileIndex(indexes: number[]): string {
  const contiguous = indexes.every((index, i) => index === indexes[0]! + i);
  if (contiguous) return `(file_index + ${indexes[0]})::integer`;
  return `[${indexes.join(", ")}][file_index::bigint + 1]::integer`;
}

function reader(format: BronzeFormat, dataset: Dataset, paths: readonly string[]): string {
  const list = `[${paths.map(quoteText).join(", ")}]`;
  if (format === "csv") return `read_csv(${list}, header = true, all_varchar = true, union_by_name = true, hive_partitioning = false)`;
  const columns = Object.keys(dataset.columns).map((c) => `${quoteIdent(c)}: 'VARCHAR'`).join(", ");
  return `read_json(${list}, format = '${format === "ndjson" ? "newline_delimited" : "auto"}', columns = {${columns}}, hive_partitioning = false)`;
}
