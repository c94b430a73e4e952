import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Dataset } from "../../../core/dataset";
import type { ObjectStore } from "../../../core/storage/object_store";
import { bronzeFormat, type StagedFile } from "./bronze_read";

export interface BronzeInput {
  key: string;
  size: number;
  etag: string;
}

export function bronzePrefix(dataset: Dataset, partitionDate: string): string {
  return `bronze/${dataset.name}/dt=${partitionDate}/`;
}

/**
 * The partition's bronze files, in key order, each with the version that fingerprints it: its
 * ETag on S3; a local file's from its inode (localVersion), or its MD5 when it changed moments
 * ago. Files of another format are left out and named.
 */
export async function listBronzeInputs(store: ObjectStore, dataset: Dataset, partitionDate: string): Promise<{ inputs: BronzeInput[]; ignored: string[] }> {
  const inputs: BronzeInput[] = [];
  const ignored: string[] = [];
  for await (const object of store.list(bronzePrefix(dataset, partitionDate))) {
    const name = object.key.slice(object.key.lastIndexOf("/") + 1);
    if (name.startsWith(".") || name.startsWith("_")) continue;
    if (!bronzeFormat(name)) {
      ignored.push(object.key);
      continue;
    }
    const version = object.etag === null ? ((await localVersion(store, object.key)) ?? (await store.head(object.key))) : { size: object.size, etag: object.etag };
    if (version?.etag) inputs.push({ key: object.key, size: version.size, etag: version.etag });
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

const CONTENT_HASH = /^[0-9a-f]{32}$/;

/**
 * Whether `inputs` are those the partition was committed from. A local file the committed inputs
 * fingerprinted by its content (a partition committed before local versions, or a file then
 * changed within RACY_MS) is hashed again, so that the two compare like with like.
 */
export async function sameInputs(store: ObjectStore, inputs: readonly BronzeInput[], committed: { fingerprint: string; inputs: readonly BronzeInput[] }): Promise<boolean> {
  if (fingerprintInputs(inputs) === committed.fingerprint) return true;
  const before = committed.inputs;
  if (before.length !== inputs.length || inputs.some((input, i) => input.key !== before[i]!.key || input.size !== before[i]!.size)) return false;
  const rehashed: BronzeInput[] = [];
  for (const [i, input] of inputs.entries()) {
    const hashed = CONTENT_HASH.test(before[i]!.etag) && !CONTENT_HASH.test(input.etag);
    rehashed.push(hashed ? { ...input, etag: (await store.head(input.key))?.etag ?? input.etag } : input);
  }
  return fingerprintInputs(rehashed) === committed.fingerprint;
}

/**
 * Local paths DuckDB can read: a local directory's files in place, anything else downloaded into
 * `dir` (streamed, one file at a time) under names that keep their extension.
 */
export async function stageInputs(store: ObjectStore, inputs: readonly BronzeInput[], dir: string): Promise<StagedFile[]> {
  const staged: StagedFile[] = [];
  for (const [i, input] of inputs.entries()) {
    if (store.localPath) {
      staged.push({ key: input.key, path: store.localPath(input.key) });
      continue;
    }
    const path = join(dir, `${String(i).padStart(6, "0")}-${input.key.slice(input.key.lastIndexOf("/") + 1)}`);
    const { body } = await store.read(input.key);
    await pipeline(body, createWriteStream(path));
    staged.push({ key: input.key, path });
  }
  return staged;
}

// ext4, xfs, btrfs and tmpfs stamp a change with a clock that ticks every 1-10 ms (ext3 and FAT
// every 1-2 s): a file written again within the tick of its last change keeps its times, so one
// that changed less than this long ago is fingerprinted by its content instead.
const RACY_MS = 2_000;

/**
 * A local file's size and version read from its inode instead of its bytes: inode number and
 * modification and change times in nanoseconds. A rewrite moves both times, a replacement (write
 * and rename) the inode too, and ctime cannot be set back (touch -d, cp -p and rsync -t restore
 * mtime only). Hashing took 175-270 ms of a 1M-row CSV partition (78 MB), ten times that at 10M.
 * Undefined for a store that is not a local directory, a file gone since the listing, or one
 * changed within RACY_MS (the caller hashes it).
 */
async function localVersion(store: ObjectStore, key: string): Promise<{ size: number; etag: string } | undefined> {
  if (!store.localPath) return undefined;
  const info = await stat(store.localPath(key), { bigint: true }).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const changedNs = info.mtimeNs > info.ctimeNs ? info.mtimeNs : info.ctimeNs;
  if (Date.now() - Number(changedNs / 1_000_000n) < RACY_MS) return undefined;
  return { size: Number(info.size), etag: `stat-${info.ino}-${info.mtimeNs}-${info.ctimeNs}` };
}
