import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { Progress } from "../../../core/runtime/progress";
import { OTHER_GROUP, type GroupFigures } from "./groups";
import { countIncompleteUploads, listGroups } from "./listing";

export interface S3MetricsOptions {
  store: ObjectStore;
  /** The `bucket` label: the bucket's name, or file:///dir for a directory. */
  bucketLabel: string;
  prefix: string;
  depth: number;
  concurrency: number;
  maxGroups: number;
  signal: AbortSignal;
  metrics: Metrics;
  log: Logger;
  progress: Progress;
  /** The run's clock, for the age of open uploads. */
  now?: Date;
}

/**
 * Object count, bytes, newest and oldest object per prefix group of a bucket or directory, and
 * the multipart uploads left open (S3): as gauges labelled {bucket, prefix}, as one structured
 * `s3_metrics.groups` event holding the table, and as the run's counts (the totals).
 */
export async function measureS3Prefix(options: S3MetricsOptions): Promise<Counts> {
  const { prefix, depth, progress } = options;
  const { table, listedPrefixes } = await listGroups({ ...options, onObject: (object) => progress.advance(1, object.size) });
  const uploads = await countIncompleteUploads(table, options);
  if (uploads === "denied") {
    options.log.warn("S3 refused to list the open multipart uploads; their gauges are left out", { bucket: options.bucketLabel, fix: "allow s3:ListBucketMultipartUploads on the bucket" });
  }
  const hasUploads = uploads === "counted";
  // An empty prefix still reports its zeros: a push without a family would leave the last run's values in the Pushgateway.
  if (table.size === 0) table.ensure(prefix);

  const now = (options.now ?? new Date()).getTime();
  const rows = table.rows();
  for (const [group, figures] of rows) publishGroupGauges(options.metrics, { bucket: options.bucketLabel, prefix: group }, figures, hasUploads ? now : undefined);

  const totals = { objects: 0, bytes: 0, groups: rows.length, incompleteUploads: 0 };
  for (const [, figures] of rows) {
    totals.objects += figures.objects;
    totals.bytes += figures.bytes;
    totals.incompleteUploads += figures.incompleteUploads;
  }
  options.log.info("s3 metrics", {
    event: "s3_metrics.groups",
    bucket: options.bucketLabel,
    prefix,
    depth,
    listedPrefixes,
    totals,
    groups: rows.map(([group, figures]) => ({ prefix: group, ...describeGroup(figures, hasUploads ? now : undefined) })),
    ...(rows.some(([group]) => group === OTHER_GROUP) ? { note: `groups past --max-groups ${options.maxGroups} count in "${OTHER_GROUP}"` } : {}),
  });
  return totals;
}

/**
 * A group with no object (only open uploads, or an empty prefix) reports 0 as its newest and
 * oldest timestamps, as postgres_exporter reports a table never vacuumed: every family is in every
 * push, so none keeps a stale value in the Pushgateway. Upload gauges exist for S3 only.
 */
function publishGroupGauges(metrics: Metrics, labels: { bucket: string; prefix: string }, figures: GroupFigures, uploadsAt: number | undefined): void {
  metrics.gauge("etl_s3_objects", "Objects under the prefix, outside any deeper group of the same listing", labels, figures.objects);
  metrics.gauge("etl_s3_bytes", "Bytes of the objects under the prefix, outside any deeper group of the same listing", labels, figures.bytes);
  metrics.gauge("etl_s3_newest_object_timestamp_seconds", "LastModified of the newest object of the group, in Unix seconds (0 when it has none)", labels, seconds(figures.newestMs));
  metrics.gauge("etl_s3_oldest_object_timestamp_seconds", "LastModified of the oldest object of the group, in Unix seconds (0 when it has none)", labels, seconds(figures.oldestMs));
  if (uploadsAt === undefined) return;
  metrics.gauge("etl_s3_incomplete_multipart_uploads", "Multipart uploads of the group started and neither completed nor aborted", labels, figures.incompleteUploads);
  metrics.gauge("etl_s3_oldest_incomplete_multipart_upload_age_seconds", "Age of the group's oldest open multipart upload, in seconds (0 when it has none)", labels, ageSeconds(figures.oldestUploadMs, uploadsAt));
}

function describeGroup(figures: GroupFigures, uploadsAt: number | undefined): Record<string, unknown> {
  return {
    objects: figures.objects,
    bytes: figures.bytes,
    newestObject: isoOrNull(figures.newestMs),
    oldestObject: isoOrNull(figures.oldestMs),
    ...(uploadsAt === undefined ? {} : { incompleteUploads: figures.incompleteUploads, oldestIncompleteUploadAgeSeconds: ageSeconds(figures.oldestUploadMs, uploadsAt) }),
  };
}

const seconds = (ms: number | undefined) => (ms === undefined ? 0 : ms / 1000);
const ageSeconds = (ms: number | undefined, now: number) => (ms === undefined ? 0 : Math.max(0, Math.round((now - ms) / 1000)));
const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
