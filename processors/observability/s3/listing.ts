import { mapBounded } from "../../../core/executor";
import type { ListedObject, ObjectStore } from "../../../core/storage/object_store";
import { S3RequestError } from "../../../core/storage/s3_request";
import { GroupTable, groupOf } from "./groups";

export interface GroupListingOptions {
  store: ObjectStore;
  /** Empty, or ending in "/". */
  prefix: string;
  depth: number;
  /** Listings in flight at once. */
  concurrency: number;
  maxGroups: number;
  signal: AbortSignal;
  /** Called for every object counted (progress). */
  onObject?(object: ListedObject): void;
}

export interface GroupListing {
  table: GroupTable;
  /** The prefixes listed in full, side by side: `[prefix]` when the listing was one stream. */
  listedPrefixes: number;
}

/**
 * Lists every object under `prefix` into per-group figures (groups.ts), with memory for the
 * groups only. Where the store can list one level at a time (S3's Delimiter), it walks down the
 * sub-prefixes, level by level up to `depth`, while a level holds no more than `maxGroups`
 * prefixes in all, then lists the deepest level's prefixes in full, `concurrency` at a time:
 * ListObjectsV2 is one page of 1000 keys per round trip, so a single stream waits on latency:
 * with 50 ms a page, 8 listings side by side took 1M keys 2.9x faster than one
 * (scripts/bench/s3_metrics.ts). Objects met on the way down (directly under a shallower prefix)
 * are counted from the delimiter listing itself. A directory is one stream (its walk is local).
 */
export async function listGroups(options: GroupListingOptions): Promise<GroupListing> {
  const { store, prefix, depth, signal } = options;
  const table = new GroupTable(options.maxGroups);
  const grouped = (key: string) => groupOf(key, prefix, depth);
  const frontier = depth > 0 && store.listLevel ? await descend(options, table) : [prefix];
  await mapBounded(frontier, options.concurrency, (sub) => countInto(table, options, () => store.list(sub), grouped), signal);
  return { table, listedPrefixes: frontier.length };
}

/**
 * Adds the open multipart uploads under the prefix to their groups. Says "unsupported" for a store
 * without them (a directory, or an S3-compatible server that answers 501 Not Implemented) and
 * "denied" when S3 refuses the listing (a role without s3:ListBucketMultipartUploads): the
 * objects' figures stand without them.
 */
export async function countIncompleteUploads(table: GroupTable, options: GroupListingOptions): Promise<"counted" | "unsupported" | "denied"> {
  const { store, prefix, depth, signal } = options;
  if (!store.listMultipartUploads) return "unsupported";
  try {
    const uploads = new GroupTable(options.maxGroups);
    for await (const upload of store.listMultipartUploads!(prefix)) {
      signal.throwIfAborted();
      uploads.addUpload(groupOf(upload.key, prefix, depth), upload);
    }
    table.merge(uploads);
    return "counted";
  } catch (error) {
    if (error instanceof S3RequestError && error.status === 403) return "denied";
    if (notImplemented(error)) return "unsupported";
    throw error;
  }
}

/**
 * Walks down from the prefix one delimiter listing per prefix and level, and returns the deepest
 * level's prefixes, which the caller lists in full. The objects a level's listings show directly
 * under its prefixes are counted into `table` only when the walk goes on below that level: if the
 * next level has too many prefixes, the level is listed in full instead, those objects included.
 */
async function descend(options: GroupListingOptions, table: GroupTable): Promise<string[]> {
  const { store, prefix, depth, maxGroups, signal } = options;
  let frontier = [prefix];
  let prefixesSeen = 1;
  for (let level = 0; level < depth; level++) {
    // One budget for the whole level, so it never holds more than --max-groups prefixes in all.
    const budget = { left: maxGroups - prefixesSeen };
    const found = await mapBounded(frontier, options.concurrency, (parent) => listLevel(store, parent, budget, signal), signal);
    const next = found.flatMap((level) => level?.prefixes ?? []);
    if (found.some((level) => level === undefined) || prefixesSeen + next.length > maxGroups) return frontier;
    for (const level of found) table.merge(level!.objects);
    if (next.length === 0) return [];
    prefixesSeen += next.length;
    frontier = next;
  }
  return frontier;
}

/**
 * One delimiter listing of `parent`: its direct objects counted in its group, and its
 * sub-prefixes; undefined once the level's shared budget of prefixes is spent.
 */
async function listLevel(store: ObjectStore, parent: string, budget: { left: number }, signal: AbortSignal): Promise<{ objects: GroupTable; prefixes: string[] } | undefined> {
  const objects = new GroupTable(1);
  const prefixes: string[] = [];
  for await (const entry of store.listLevel!(parent)) {
    signal.throwIfAborted();
    if ("prefix" in entry) {
      prefixes.push(entry.prefix);
      if (--budget.left < 0) return undefined;
    } else objects.addObject(parent, entry);
  }
  return { objects, prefixes };
}

/**
 * Counts one listing into `table`, through a table of its own merged when the listing is done. A
 * page that fails is sent again alone by the S3 request's retry policy (core/storage/s3_retry.ts); one
 * that still fails ends the run.
 */
async function countInto(table: GroupTable, options: GroupListingOptions, list: () => AsyncIterable<ListedObject>, groupFor: (key: string) => string): Promise<void> {
  const { signal, onObject } = options;
  const counted = new GroupTable(options.maxGroups);
  for await (const object of list()) {
    signal.throwIfAborted();
    counted.addObject(groupFor(object.key), object);
    onObject?.(object);
  }
  table.merge(counted);
}

const notImplemented = (error: unknown) => error instanceof S3RequestError && error.status === 501;
