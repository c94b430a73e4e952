import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Dataset } from "../../core/dataset";
import type { ObjectStore } from "../../core/object_store";

export interface BronzeInput {
  key: string;
  size: number;
  etag: string;
}

// What partners and ingest_api deliver (DESIGN.md storage layout), optionally gzipped.
const READABLE = /\.(csv|ndjson|jsonl|json)(\.gz)?$/;

export function bronzePrefix(dataset: Dataset, partitionDate: string): string {
  return `bronze/${dataset.name}/dt=${partitionDate}/`;
}

/**
 * The partition's bronze files, in key order, each with the ETag that fingerprints it (a local
 * file's is its MD5, computed on HEAD). Files of another format are left out and named.
 */
export async function listBronzeInputs(store: ObjectStore, dataset: Dataset, partitionDate: string): Promise<{ inputs: BronzeInput[]; ignored: string[] }> {
  const inputs: BronzeInput[] = [];
  const ignored: string[] = [];
  for await (const object of store.list(bronzePrefix(dataset, partitionDate))) {
    const name = object.key.slice(object.key.lastIndexOf("/") + 1);
    if (name.startsWith(".") || name.startsWith("_")) continue;
    if (!READABLE.test(name)) {
      ignored.push(object.key);
      continue;
    }
    const etag = object.etag ?? (await store.head(object.key))?.etag;
    if (etag) inputs.push({ key: object.key, size: object.size, etag });
  }
  inputs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { inputs, ignored };
}

/** One hash over every input's key, size and ETag: equal fingerprints, equal inputs. */
export function fingerprintInputs(inputs: readonly BronzeInput[]): string {
  const hash = createHash("sha256");
  for (const i of inputs) hash.update(`${i.key}\n${i.size}\n${i.etag}\n`);
  return hash.digest("hex");
}

/**
 * Local paths DuckDB can read: a local directory's files in place, anything else downloaded into
 * `dir` (streamed, one file at a time) under names that keep their extension.
 */
export async function stageInputs(store: ObjectStore, inputs: readonly BronzeInput[], dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (const [i, input] of inputs.entries()) {
    if (store.localPath) {
      paths.push(store.localPath(input.key));
      continue;
    }
    const path = join(dir, `${String(i).padStart(6, "0")}-${input.key.slice(input.key.lastIndexOf("/") + 1)}`);
    const { body } = await store.read(input.key);
    await pipeline(body, createWriteStream(path));
    paths.push(path);
  }
  return paths;
}
