import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { EtlError, UsageError } from "../../../core/errors";
import type { Dataset } from "../../../core/dataset";
import { ObjectNotFoundError, type ObjectStore } from "../../../core/storage/object_store";
import { silverPrefix, type SilverManifest } from "../../data_pipeline/silver/publish";

export type InputFormat = "parquet" | "csv" | "ndjson";

/** What one profile reads and where it writes. */
export interface ProfileInputs {
  format: InputFormat;
  /** Keys in the store, in key order. */
  keys: string[];
  /** YYYY-MM-DD of a silver partition; null for files under a prefix. */
  partition: string | null;
  /** The committed partition's manifest. */
  manifest?: { key: string; runId: string; committedAt: string; columns: SilverManifest["columns"] } & Pick<SilverManifest, "rejects" | "rows" | "rejected_inputs">;
  /** Where profile.json, profile.html and failures/ go, ending in "/". */
  outputPrefix: string;
}

/**
 * Nothing there to profile: no committed partition, or no readable file under the prefix. The
 * run named something that is not there, as a missing bucket: exit 2, which no retry mends.
 */
export class NothingToProfileError extends EtlError {
  constructor(message: string) {
    super("usage", message);
    this.name = "NothingToProfileError";
  }
}

/** The folder beside a partition's files that profile_dataset owns; bronze_to_silver's publish keeps it. */
export const PROFILE_FOLDER = "_profile/";

export function partitionProfilePrefix(dataset: Dataset, partitionDate: string): string {
  return `${silverPrefix(dataset, partitionDate)}${PROFILE_FOLDER}`;
}

/** The committed silver partition: the Parquet files its `_manifest.json` names. */
export async function partitionInputs(store: ObjectStore, dataset: Dataset, partitionDate: string): Promise<ProfileInputs> {
  const key = `${silverPrefix(dataset, partitionDate)}_manifest.json`;
  let manifest: SilverManifest;
  try {
    const { body } = await store.read(key);
    manifest = JSON.parse(Buffer.concat(await body.toArray()).toString("utf8")) as SilverManifest;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) throw new NothingToProfileError(`no committed partition ${dataset.name} ${partitionDate}: ${store.url}/${key} does not exist (bronze_to_silver writes it)`);
    throw error;
  }
  return {
    format: "parquet",
    keys: manifest.files.map((f) => f.key),
    partition: partitionDate,
    manifest: { key, runId: manifest.run_id, committedAt: manifest.committed_at, columns: manifest.columns, rejects: manifest.rejects, rows: manifest.rows, rejected_inputs: manifest.rejected_inputs ?? [] },
    outputPrefix: partitionProfilePrefix(dataset, partitionDate),
  };
}

const FORMATS: Array<[RegExp, InputFormat]> = [
  [/\.parquet$/, "parquet"],
  [/\.csv(\.gz)?$/, "csv"],
  [/\.(ndjson|jsonl|json)(\.gz)?$/, "ndjson"],
];

/**
 * The files under `prefix` (subfolders included), of one format told by their extension. Keys
 * with a segment starting with "_" or "." below the prefix (a manifest, rejects, a profile) are
 * not data and are left out.
 */
export async function prefixInputs(store: ObjectStore, prefix: string, outputPrefix: string): Promise<ProfileInputs> {
  const byFormat = new Map<InputFormat, string[]>();
  for await (const object of store.list(prefix)) {
    const relative = object.key.slice(prefix.length);
    if (relative.split("/").some((segment) => segment.startsWith("_") || segment.startsWith("."))) continue;
    const format = FORMATS.find(([pattern]) => pattern.test(relative.toLowerCase()))?.[1];
    if (format) byFormat.set(format, [...(byFormat.get(format) ?? []), object.key]);
  }
  if (byFormat.size > 1) {
    const found = [...byFormat].sort(([a], [b]) => (a < b ? -1 : 1)).map(([format, keys]) => `${keys.length} ${format}`).join(", ");
    throw new UsageError(`--prefix ${prefix}: the files are of several formats (${found}); profile one format at a time with a narrower --prefix`);
  }
  const [entry] = byFormat;
  if (!entry) throw new NothingToProfileError(`no .parquet, .csv or .ndjson/.jsonl/.json file (gzipped or not) under ${store.url}/${prefix}`);
  const [format, keys] = entry;
  return { format, keys: keys.sort(), partition: null, outputPrefix };
}

/**
 * Local paths DuckDB can read (it has no httpfs here): a local directory's files in place, an S3
 * object downloaded into `dir`, streamed, one at a time, under a name that keeps its extension.
 */
export async function stageFiles(store: ObjectStore, keys: readonly string[], dir: string): Promise<string[]> {
  if (store.localPath) return keys.map((key) => store.localPath!(key));
  const paths: string[] = [];
  for (const [i, key] of keys.entries()) {
    const path = join(dir, `${String(i).padStart(6, "0")}-${key.slice(key.lastIndexOf("/") + 1)}`);
    const { body } = await store.read(key);
    await pipeline(body, createWriteStream(path));
    paths.push(path);
  }
  return paths;
}
