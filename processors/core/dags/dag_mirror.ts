/**
 * Mirrors a published DAG package (`<env>/<package>/` in a bucket) into `<dag folder>/<package>/`,
 * where Airflow's scheduler reads it. Everything is downloaded and checked before the folder is
 * touched; then each changed file is written beside its target and renamed over it (a reader sees
 * the old file or the new one, never half of one), files the package no longer has are removed,
 * and metadata.json goes last, as it was published.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TransientError, UsageError } from "../../../core/errors";
import { isPartial, partialPath } from "../../../core/storage/file_store";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import { readBytes, type ObjectStore } from "../../../core/storage/object_store";
import { METADATA_FILE, parseMetadata } from "./dag_package";

/** A partial file this old was left by a run that crashed; younger ones may belong to a run in progress. */
const ABANDONED_MS = 60 * 60 * 1000;
/** DAG files are source code: anything bigger is not one, and is refused rather than buffered. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export interface MirrorOptions {
  store: ObjectStore;
  /** `<env>/<package>/`, from packagePrefix(). */
  prefix: string;
  packageName: string;
  /** Airflow's DAG folder; the package is mirrored into its `<package>` subfolder. */
  dagFolder: string;
  dryRun: boolean;
  log: Logger;
  signal: AbortSignal;
}

export async function mirrorPackage(options: MirrorOptions): Promise<Counts> {
  const { store, prefix, packageName, log } = options;
  const source = `${store.url}/${prefix}`;
  if (!(await stat(options.dagFolder).catch(() => undefined))?.isDirectory()) {
    throw new UsageError(`--dag-folder ${options.dagFolder} is not a folder`);
  }
  const target = join(options.dagFolder, packageName);
  const local = await readOwnedFolder(target, packageName);

  const remote = await download(store, prefix);
  const metadataText = remote.get(METADATA_FILE)?.toString("utf8");
  if (metadataText === undefined) {
    throw new UsageError(`${source} holds no ${METADATA_FILE}: no package is published there (check --env and --package)`);
  }
  const metadata = parseMetadata(metadataText, `${source}${METADATA_FILE}`);
  if (metadata.package !== packageName) throw new Error(`${source}${METADATA_FILE} is package "${metadata.package}", not "${packageName}"`);
  const missing = metadata.files.filter((f) => !remote.has(f));
  // The publisher removes stale files before it writes metadata.json: a publish is under way.
  if (missing.length) throw new TransientError(`${source} lacks ${missing.join(", ")}, which ${METADATA_FILE} lists: a publish is in progress`);
  const recheck = await readBytes(store, `${prefix}${METADATA_FILE}`).catch(() => undefined);
  if (!recheck?.equals(remote.get(METADATA_FILE)!)) throw new TransientError(`${source} was republished during the sync; the next run takes the new package`);

  const changes = [...remote].filter(([name, body]) => !local.files.get(name)?.equals(body)).sort(([a], [b]) => a.localeCompare(b));
  const removals = [...local.files.keys()].filter((name) => !remote.has(name));
  const counts = {
    added: changes.filter(([name]) => !local.files.has(name)).length,
    updated: changes.filter(([name]) => local.files.has(name)).length,
    removed: removals.length,
    unchanged: remote.size - changes.length,
  };
  const verb = (past: string, present: string) => (options.dryRun ? `would ${present}` : past);
  for (const [name] of changes) log.info(local.files.has(name) ? verb("updated", "update") : verb("added", "add"), { path: join(target, name) });
  for (const name of removals) log.info(verb("removed", "remove"), { path: join(target, name) });
  if (options.dryRun) return counts;

  // A signal up to here leaves the folder untouched; past here the few writes and renames finish.
  options.signal.throwIfAborted();
  await mkdir(target, { recursive: true });
  const staged = new Map<string, string>();
  try {
    for (const [name, body] of changes) {
      // Hidden and not ending in .py: Airflow does not parse it.
      const temp = partialPath(join(target, `.${name}`));
      staged.set(name, temp);
      await writeFile(temp, body);
    }
    for (const [name, temp] of staged) if (name !== METADATA_FILE) await rename(temp, join(target, name));
    for (const name of removals) await rm(join(target, name), { force: true });
    const metadataTemp = staged.get(METADATA_FILE);
    if (metadataTemp) await rename(metadataTemp, join(target, METADATA_FILE));
  } finally {
    // Only what was not renamed is still there.
    await Promise.all([...staged.values()].map((temp) => rm(temp, { force: true })));
  }
  for (const path of local.abandoned) await rm(path, { force: true });
  return counts;
}

/**
 * The package folder's files by name. A folder that has files but no metadata.json of this
 * package was not made by this sync: it is refused, never emptied.
 */
async function readOwnedFolder(target: string, packageName: string): Promise<{ files: Map<string, Buffer>; abandoned: string[] }> {
  const files = new Map<string, Buffer>();
  const abandoned: string[] = [];
  const entries = await readdir(target, { withFileTypes: true }).catch((error) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  });
  for (const entry of entries) {
    if (!entry.isFile()) continue; // __pycache__ and other folders are Airflow's, not the package's
    const path = join(target, entry.name);
    if (isPartial(entry.name)) {
      if (Date.now() - (await stat(path)).mtimeMs > ABANDONED_MS) abandoned.push(path);
    } else if (!entry.name.startsWith(".")) {
      files.set(entry.name, await readFile(path));
    }
  }
  if (files.size === 0) return { files, abandoned };
  const metadataText = files.get(METADATA_FILE)?.toString("utf8");
  let owner: string | undefined;
  try {
    owner = metadataText === undefined ? undefined : parseMetadata(metadataText, METADATA_FILE).package;
  } catch {
    owner = undefined;
  }
  if (owner !== packageName) {
    throw new UsageError(
      `${target} holds files that are not package "${packageName}" (no ${METADATA_FILE} of it there); refusing to replace them. ` +
        "--dag-folder is Airflow's DAG folder: the package is mirrored into its <package> subfolder",
    );
  }
  return { files, abandoned };
}

/** Every object under the prefix, by name relative to it. Nested or hidden names are refused. */
async function download(store: ObjectStore, prefix: string): Promise<Map<string, Buffer>> {
  const objects = new Map<string, Buffer>();
  for await (const { key, size } of store.list(prefix)) {
    const name = key.slice(prefix.length);
    if (name.includes("/") || name.startsWith(".") || name === "") throw new Error(`${store.url}/${key}: a DAG package holds flat file names only`);
    if (size > MAX_FILE_BYTES) throw new Error(`${store.url}/${key} is ${size} bytes: too big for a DAG file (limit ${MAX_FILE_BYTES})`);
    objects.set(name, await readBytes(store, key));
  }
  return objects;
}
