import { readdir } from "node:fs/promises";
import { abortAbandonedUploads } from "../../../core/storage/abandoned_uploads";
import type { Logger } from "../../../core/log";
import { ObjectNotFoundError, type ObjectStore } from "../../../core/storage/object_store";

// Run ids are UUIDs (etl_job_runs.run_id): a folder of another name is not a run's.
const RUN_FOLDER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Removes what runs killed before their end left in a silver partition (`prefix`): their run
 * folders (parts and rejects no manifest names); in a local lake, their half-written files
 * (`*.etl-partial-<run>.*`, core/storage/file_store.ts), the manifest's included; on S3, the multipart
 * uploads of the parts they were writing (a part over 8 MiB). Never the folder the
 * committed `_manifest.json` names, the caller's own (`runId`), one whose run holds a live lease
 * (`isLive`), or profile_dataset's `_profile/`. Returns how many objects, files and uploads it
 * removed.
 *
 * The caller holds the partition's lease, so no other live run builds it: this runs before the
 * inputs are compared, and a rerun that finds them unchanged still clears what a killed
 * `--rebuild` left.
 */
export async function removeDeadRunLeftovers(o: { store: ObjectStore; prefix: string; runId: string; isLive: (runId: string) => Promise<boolean>; log: Logger }): Promise<number> {
  const { store, prefix } = o;
  const committed = await committedRun(store, `${prefix}_manifest.json`);
  if (committed === null) {
    o.log.warn("the partition's _manifest.json does not parse: its run folders are kept", { manifest: `${store.url}/${prefix}_manifest.json` });
    return 0;
  }
  const folders = new Map<string, string[]>();
  const folderOf = (key: string) => (key.includes("/", prefix.length) ? key.slice(prefix.length).split("/")[0]! : "");
  for await (const { key } of store.list(prefix)) {
    const folder = folderOf(key);
    if (RUN_FOLDER.test(folder)) folders.set(folder, [...(folders.get(folder) ?? []), key]);
  }
  // A folder holding only half-written files is not listed: a local lake's directory names it.
  const dir = store.localPath?.(prefix.slice(0, -1));
  if (dir) for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (entry.isDirectory() && RUN_FOLDER.test(entry.name) && !folders.has(entry.name)) folders.set(entry.name, []);

  const liveness = new Map<string, Promise<boolean>>();
  const isDead = (folder: string) => {
    if (folder === committed || folder === o.runId || !RUN_FOLDER.test(folder)) return Promise.resolve(false);
    if (!liveness.has(folder)) liveness.set(folder, o.isLive(folder).then((live) => !live));
    return liveness.get(folder)!;
  };
  let removed = 0;
  for (const [folder, keys] of folders) {
    if (!(await isDead(folder))) continue;
    for (const key of keys) await store.delete(key);
    removed += keys.length + ((await store.removeAbandonedPartials?.(`${prefix}${folder}/`, o.isLive)) ?? 0);
  }
  removed += (await store.removeAbandonedPartials?.(`${prefix}_manifest.json`, o.isLive)) ?? 0;
  // A run killed while uploading its first part has no object in its folder: only the upload names it.
  const aborted = await abortAbandonedUploads(store, prefix, (upload) => isDead(folderOf(upload.key)), o.log);
  if (removed || aborted) o.log.info("removed what killed runs left in the partition", { prefix: `${store.url}/${prefix}`, removed, abortedUploads: aborted });
  return removed + aborted;
}

/** The run the manifest names; undefined without a manifest, null when it does not parse. */
async function committedRun(store: ObjectStore, key: string): Promise<string | undefined | null> {
  try {
    const { body } = await store.read(key);
    const runId = (JSON.parse(Buffer.concat(await body.toArray()).toString("utf8")) as { run_id?: unknown }).run_id;
    return typeof runId === "string" ? runId : null;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}
