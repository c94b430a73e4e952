/**
 * Making an extracted archive visible all at once, or not at all: its entries, extracted and
 * verified in staging (staging.ts), are moved to their keys and the per-archive manifest is
 * written last. Before the moves, a journal in staging lists the keys they will create: a run
 * killed while moving leaves a journal that the next run on this destination reads to remove
 * those keys, unless the ledger says the archive committed. Every key published was absent before
 * (destinationConflict), so removing it loses nothing.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { mapBounded } from "../../../core/executor";
import { copyObject, writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { VERSION } from "../../../core/version";
import type { ProcessedFile } from "../../../repositories/processed_files";
import type { ExtractedFile } from "./extract";
import { RuleViolation } from "./guards";

/**
 * Moves, HEADs and deletes in flight at once: each is one request that moves no bytes through this
 * process (a server-side copy on S3, a rename on disk), as get_s3_files' default of 16 copies.
 */
export const REQUESTS_IN_FLIGHT = 16;

/**
 * `<destination>_archive.<archive key, URI-encoded>.json`: beside the entries, named so bronze
 * readers skip it, one per archive key (a key longer than a file name allows is hashed).
 */
export function manifestKey(destination: string, archiveKey: string): string {
  const encoded = encodeURIComponent(archiveKey);
  const name = Buffer.byteLength(encoded) <= 230 ? encoded : createHash("sha256").update(archiveKey).digest("hex");
  return `${destination}_archive.${name}.json`;
}

export interface ArchiveManifest {
  archive: { key: string; etag: string; size: number };
  destination: string;
  run_id: string;
  job: string;
  version: string;
  published_at: string;
  entries: number;
  bytes: number;
  files: Array<{ name: string; key: string; size: number; crc32: string }>;
}

/** `<archive staging>publish.json`: what a run records before it moves entries, for the next run to undo moves cut short. */
export const JOURNAL_NAME = "publish.json";
export interface Journal {
  archive: ProcessedFile;
  manifestKey: string;
  keys: string[];
}

/**
 * A name whose key exists at the destination (from another archive, or anything else) would be
 * overwritten: refused as `destination_conflict`, so an archive never replaces data it did not write.
 */
export async function destinationConflict(store: ObjectStore, destination: string, files: readonly ExtractedFile[], ownManifestKey: string): Promise<RuleViolation | undefined> {
  let conflict: RuleViolation | undefined;
  await mapBounded(files, REQUESTS_IN_FLIGHT, async (file) => {
    const key = destination + file.name;
    if (conflict) return;
    if (key === ownManifestKey || (await store.head(key))) {
      conflict ??= new RuleViolation("destination_conflict", `entry ${JSON.stringify(file.name)} would overwrite ${store.url}/${key}, which exists; remove it, then release the archive`);
    }
  });
  return conflict;
}

/** One archive's publication: moves, manifest, and their undoing while the archive is not committed. */
export class Publication {
  private readonly published: string[] = [];
  private manifestWritten = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly o: { archive: ProcessedFile & { size: number }; destination: string; stagingPrefix: string; manifestKey: string; runId: string; job: string },
  ) {}

  /** Journal, moves, manifest; returns the manifest. */
  async publish(files: readonly ExtractedFile[]): Promise<ArchiveManifest> {
    const { store, o } = this;
    const keyOf = (file: ExtractedFile) => o.destination + file.name;
    const journal: Journal = { archive: { key: o.archive.key, etag: o.archive.etag }, manifestKey: o.manifestKey, keys: files.map(keyOf) };
    await writeJson(store, `${o.stagingPrefix}${JOURNAL_NAME}`, journal);
    if (store.localPath) {
      await this.moveLocal(files);
    } else {
      // A CopyObject that fails creates nothing, so only finished ones are undone.
      await mapBounded(files, REQUESTS_IN_FLIGHT, async (file) => {
        await copyObject(store, file.stagedKey, store, keyOf(file), { size: file.size });
        this.published.push(keyOf(file));
      });
    }
    const manifest: ArchiveManifest = {
      archive: o.archive,
      destination: o.destination,
      run_id: o.runId,
      job: o.job,
      version: VERSION,
      published_at: new Date().toISOString(),
      entries: files.length,
      bytes: files.reduce((sum, f) => sum + f.size, 0),
      files: files.map((f) => ({ name: f.name, key: keyOf(f), size: f.size, crc32: (f.crc32 >>> 0).toString(16).padStart(8, "0") })),
    };
    this.manifestWritten = true;
    await writeJson(store, o.manifestKey, manifest);
    return manifest;
  }

  /**
   * On disk, folders move whole where the destination has none of that name: into a new
   * partition one rename publishes the whole archive at once; into an existing one the renames go
   * down only as far as names are taken. 65,600 entries in 100 folders published in 0.2 s so, in
   * 3 to 5 s with a rename per file. A rename moves no bytes, where a copy would write 5 GiB again.
   */
  private async moveLocal(files: readonly ExtractedFile[]): Promise<void> {
    const { store, o } = this;
    if (files.length === 0) return;
    const moved = new Set<string>();
    const target = store.localPath!(o.destination.slice(0, -1));
    await mkdir(dirname(target), { recursive: true });
    try {
      await moveTree(store.localPath!(`${o.stagingPrefix}files`), target, "", moved);
    } finally {
      for (const file of files) if (isUnder(file.name, moved)) this.published.push(o.destination + file.name);
    }
  }

  /** Removes what publish() made visible: the keys moved and the manifest. */
  async rollback(): Promise<void> {
    const keys = this.manifestWritten ? [...this.published, this.o.manifestKey] : this.published;
    await mapBounded(keys, REQUESTS_IN_FLIGHT, (key) => this.store.delete(key));
  }
}

/**
 * Renames `from` to `to`, or, where `to` is a folder that exists, each of `from`'s children into
 * it; records in `moved` the paths (relative to the first `from`) that moved whole. A rename over
 * a file replaces it, so destinationConflict has made sure there is none.
 */
async function moveTree(from: string, to: string, path: string, moved: Set<string>): Promise<void> {
  try {
    await rename(from, to);
    moved.add(path);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
  }
  for (const name of await readdir(from)) await moveTree(join(from, name), join(to, name), path ? `${path}/${name}` : name, moved);
}

/** Whether `name`, or a folder it is in, is in `moved` ("" is the whole tree). */
function isUnder(name: string, moved: ReadonlySet<string>): boolean {
  if (moved.has("")) return true;
  for (let end = name.indexOf("/"); end !== -1; end = name.indexOf("/", end + 1)) if (moved.has(name.slice(0, end))) return true;
  return moved.has(name);
}

/** Compact: the manifest of 70,000 entries is 9 MB so, twice that indented. */
function writeJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  return writeBytes(store, key, Buffer.from(JSON.stringify(value) + "\n"), "application/json");
}
