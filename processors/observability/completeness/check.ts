import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { Progress } from "../../../core/runtime/progress";
import { readAhead } from "../../../core/executor";
import type { AttachmentListingRepository } from "../../../repositories/attachment_listing";
import { mergeCompleteness, type ExpectedObject } from "./merge";
import { listInKeyOrder } from "./listing";
import { CompletenessReport } from "./report";

export interface CompletenessCheckOptions {
  attachments: AttachmentListingRepository;
  agencyId: number;
  destination: ObjectStore;
  /** The `bucket` label: the bucket's name, or file:///dir for a directory. */
  bucketLabel: string;
  /** get_s3_files's destination prefix: empty or ending in "/". */
  prefix: string;
  batchSize: number;
  /** Attachments created later than this are not expected yet (get_s3_files copies nightly). */
  dueBefore?: Date;
  /** Below this share of the expected objects present, the check fails (exit 3). */
  minRatio: number;
  /** Where the CSV of every discrepancy goes; none when absent. */
  report?: { store: ObjectStore; key: string };
  log: Logger;
  metrics: Metrics;
  progress: Progress;
  signal: AbortSignal;
}

/** get_s3_files's manifests (`_manifest.csv`, `_manifest.<i>-of-<n>.csv`): at the destination by design, not unexpected. */
const OWN_FILE = /^_manifest(\.\d+-of-\d+)?\.csv$/;

/**
 * Whether get_s3_files's destination holds what the database says it should: the agency's live
 * attachments, read in key order a page at a time, merged with the destination listing under
 * the prefix, also in key order, comparing sizes (merge.ts). Neither side is ever held in
 * memory (a directory's listing is sorted on disk, listing.ts). Reports the counts, the ratio
 * present/expected as `etl_completeness_ratio`, a `completeness.result` event naming the first
 * missing, changed and unexpected keys, and with `report` a CSV of all of them. When the ratio is under `minRatio`, `failed` counts the missing
 * and changed objects, so the run is partial (exit 3); unexpected objects never fail it.
 */
export async function checkCompleteness(o: CompletenessCheckOptions): Promise<Counts> {
  const report = new CompletenessReport({ csv: o.report !== undefined });
  try {
    // A listing page or a page of rows that fails is fetched again alone (core/storage/s3_retry.ts, the
    // repository's retry); one that still fails ends the run.
    const counts = await merge(o, report);
    const ratio = counts.expected === 0 ? 1 : counts.present / counts.expected;
    const labels = { agency_id: String(o.agencyId), bucket: o.bucketLabel, prefix: o.prefix };
    o.metrics.gauge("etl_completeness_ratio", "Share of the attachments expected at get_s3_files's destination that are there with their size (1 when none is expected)", labels, ratio);
    if (o.report) await report.publish(o.report.store, o.report.key);
    const failing = ratio < o.minRatio;
    const level = failing ? "error" : counts.missing + counts.sizeMismatch + counts.unexpected > 0 ? "warn" : "info";
    o.log[level]("completeness", {
      event: "completeness.result",
      agencyId: o.agencyId,
      destination: `${o.destination.url}/${o.prefix}`,
      ...counts,
      ratio,
      minRatio: o.minRatio,
      ...(o.dueBefore && { dueBefore: o.dueBefore.toISOString() }),
      firstMissing: report.samples.missing,
      firstSizeMismatch: report.samples.size_mismatch,
      firstUnexpected: report.samples.unexpected,
      ...(o.report && { report: `${o.report.store.url}/${o.report.key}`, reportRows: report.rows }),
    });
    return { ...counts, failed: failing ? counts.missing + counts.sizeMismatch : 0 };
  } finally {
    report.close();
  }
}

// Each side is read ahead of the merge: the next page of rows and the next listing page are
// fetched while this one is compared. A listing page of 1000 keys costs the AWS SDK about 120 ms
// of CPU in Bun, a page of rows PostgreSQL's time: overlapped, the two cores share the work.
const LISTED_AHEAD = 2000;
const PAGES_AHEAD = 1;

async function merge(o: CompletenessCheckOptions, report: CompletenessReport) {
  const pages = readAhead(o.attachments.listAttachmentsByKey(o.agencyId, { batchSize: o.batchSize, dueBefore: o.dueBefore, signal: o.signal }), PAGES_AHEAD);
  async function* expected(): AsyncGenerator<ExpectedObject> {
    for await (const page of pages) {
      o.signal.throwIfAborted();
      for (const a of page) yield { key: o.prefix + a.s3Key, size: a.sizeBytes, attachmentId: a.id, due: a.due };
      o.progress.advance(page.length);
    }
  }
  return mergeCompleteness(expected(), readAhead(listInKeyOrder(o.destination, o.prefix, { signal: o.signal }), LISTED_AHEAD), {
    ignore: (key) => OWN_FILE.test(key.slice(o.prefix.length)),
    report: (discrepancy) => report.add(discrepancy),
  });
}
