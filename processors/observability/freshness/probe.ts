import { parseLocation, readBytes, type Location, type ObjectStore } from "../../../core/storage/object_store";
import { retry } from "../../../core/http/retry";
import type { FreshnessRepository } from "../../../repositories/freshness";
import type { FreshnessSource } from "./sources";
import { listGroups } from "../s3/listing";
import { unbuiltBronze, type UnbuiltBronze } from "./unbuilt";

export interface ProbeDependencies {
  freshness: FreshnessRepository;
  /** The store a declared bucket names (after --bucket-map), opened once per run. */
  openStore(bucket: string): Promise<ObjectStore>;
  signal: AbortSignal;
  /** The run's clock, for the days a silver source's bronze is compared over; tests move it. */
  now?: () => Date;
}

/** When the source's data last landed (null: never), and what was found. */
export interface Measurement {
  maxLoadedAt: Date | null;
  detail: Record<string, string | number>;
  /** Of a silver partition: bronze its partitions were not built from (unbuilt.ts). */
  unbuilt?: UnbuiltBronze;
  /** No data now although some was delivered before: an error, not `never delivered`. */
  gone?: boolean;
}

/**
 * openStore for the probes: a declared bucket, or where `--bucket-map` reads it from, opened once
 * and checked to exist (a missing bucket is that source's runtime error, named, not an empty listing).
 */
export function declaredBucketOpener(bucketMap: ReadonlyMap<string, Location>, open: (location: Location) => Promise<ObjectStore>): (bucket: string) => Promise<ObjectStore> {
  const opened = new Map<string, Promise<ObjectStore>>();
  const openChecked = async (bucket: string) => {
    const store = await open(bucketMap.get(bucket) ?? parseLocation(bucket));
    if (!(await store.exists())) throw new Error(`${store.url} does not exist`);
    return store;
  };
  return (bucket) => {
    let store = opened.get(bucket);
    if (!store) opened.set(bucket, (store = openChecked(bucket)));
    return store;
  };
}

// An s3_prefix is listed as s3_metrics lists (processors/observability/s3/listing.ts): the
// sub-prefixes two levels down, 8 at a time. One ListObjectsV2 stream is bound by its round
// trips; 8 listed 1M keys in a third of the time of one (scripts/bench/s3_metrics.ts).
const LISTING = { depth: 2, concurrency: 8, maxGroups: 10_000 };

/** Measures one declared source. Throws when it cannot be measured (the result's `runtime error`). */
export async function measureSource(source: FreshnessSource, deps: ProbeDependencies): Promise<Measurement> {
  switch (source.kind) {
    case "silver_partition": {
      const [newest, unbuilt] = await Promise.all([
        newestSilverPartition(source.dataset, source.bucket, deps),
        deps.openStore(source.bucket).then((store) => unbuiltBronze(store, source.dataset, (deps.now?.() ?? new Date()).getTime(), deps.signal)),
      ]);
      return { ...newest, unbuilt };
    }
    case "s3_prefix": {
      const newest = await newestObject(source.bucket, source.prefix, deps);
      if (newest.maxLoadedAt) return newest;
      // An empty prefix: never written yet, or emptied since its producer last succeeded.
      const produced = source.producedBy === undefined || (await deps.freshness.lastSuccess(source.producedBy)) !== undefined;
      return produced ? { ...newest, gone: true } : { ...newest, detail: { ...newest.detail, reason: `${source.producedBy} never succeeded (etl_job_runs) and nothing is under the prefix yet` } };
    }
    case "table": {
      const maxLoadedAt = await deps.freshness.maxOfColumn(source.table, source.column);
      return { maxLoadedAt, detail: maxLoadedAt ? {} : { reason: `${source.table} has no row` } };
    }
    case "job_success": {
      const success = await deps.freshness.lastSuccess(source.job);
      return success
        ? { maxLoadedAt: success.finishedAt, detail: { runId: success.runId } }
        : { maxLoadedAt: null, detail: { reason: `${source.job} never succeeded (etl_job_runs)` } };
    }
  }
}

const MANIFEST = /^dt=(\d{4}-\d{2}-\d{2})\/_manifest\.json$/;

/**
 * The commit time of the dataset's partition with the latest date: from etl_partitions, where
 * bronze_to_silver records each commit; a lake without rows there (built elsewhere, or the
 * database restored) is read directly: its newest `dt=*\/_manifest.json`, whose `committed_at`
 * is the commit. A partition whose manifest is not written yet is not committed.
 */
async function newestSilverPartition(dataset: string, bucket: string, deps: ProbeDependencies): Promise<Measurement> {
  const committed = await deps.freshness.newestPartition(dataset);
  if (committed) return { maxLoadedAt: committed.committedAt, detail: { partition: committed.partitionDate, runId: committed.runId, from: "etl_partitions" } };
  const store = await deps.openStore(bucket);
  const prefix = `silver/${dataset}/`;
  // Each page's request is retried by the store (core/storage/s3_retry.ts).
  let newestKey: string | undefined;
  for await (const object of store.list(prefix)) {
    deps.signal.throwIfAborted();
    // Fixed-width dates: the greatest key is the latest date.
    if (MANIFEST.test(object.key.slice(prefix.length)) && (newestKey === undefined || object.key > newestKey)) newestKey = object.key;
  }
  if (newestKey === undefined) return { maxLoadedAt: null, detail: { reason: `no committed partition of ${dataset} in etl_partitions or ${store.url}/${prefix}` } };
  // The store retries the GET; a body that breaks off part-way is read again here.
  const manifest = JSON.parse((await retry(() => readBytes(store, newestKey), { signal: deps.signal })).toString("utf8")) as { committed_at?: unknown };
  const committedAt = typeof manifest.committed_at === "string" ? new Date(manifest.committed_at) : undefined;
  if (!committedAt || Number.isNaN(committedAt.getTime())) throw new Error(`${store.url}/${newestKey} has no valid committed_at`);
  return { maxLoadedAt: committedAt, detail: { partition: MANIFEST.exec(newestKey.slice(prefix.length))![1]!, manifest: `${store.url}/${newestKey}`, from: "_manifest.json" } };
}

/** The LastModified of the newest object under the prefix, from a listing (S3: to the second; a directory: the file's mtime). */
async function newestObject(bucket: string, prefix: string, deps: ProbeDependencies): Promise<Measurement> {
  const store = await deps.openStore(bucket);
  const { table } = await listGroups({ store, prefix, ...LISTING, signal: deps.signal });
  let newestMs: number | undefined;
  let objects = 0;
  for (const [, figures] of table.rows()) {
    objects += figures.objects;
    if (figures.newestMs !== undefined && (newestMs === undefined || figures.newestMs > newestMs)) newestMs = figures.newestMs;
  }
  if (newestMs === undefined) return { maxLoadedAt: null, detail: { reason: `no object under ${store.url}/${prefix}`, objects } };
  return { maxLoadedAt: new Date(newestMs), detail: { objects } };
}
