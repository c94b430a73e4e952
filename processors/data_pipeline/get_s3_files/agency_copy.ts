import type { Sql } from "../../../core/db/db";
import { UsageError } from "../../../core/errors";
import type { Counts } from "../../../core/runtime/job";
import { holdsLiveLease } from "../../../core/ledger/lease";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import type { Progress } from "../../../core/runtime/progress";
import type { ObjectStore } from "../../../core/storage/object_store";
import { AttachmentRepository, type AttachmentWithListings } from "../../../repositories/attachments";
import { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import { ObjectListingRepository } from "../../../repositories/object_listings";
import { AttachmentCopier, TRUSTED_SIZE_HINT } from "./attachment_copier";
import { attachmentItemKey, syncAttachments, type SyncAttachmentsOptions } from "./attachment_sync";
import { listStoresForAttachments } from "./object_listing";

export interface AgencyCopyOptions {
  sql: Sql;
  job: string;
  runId: string;
  agencyId: number;
  shard: { index: number; count: number } | undefined;
  batchSize: number;
  concurrency: number;
  source: ObjectStore;
  destination: ObjectStore;
  prefix: string;
  manifestKey: string;
  dryRun: boolean;
  log: Logger;
  metrics: Metrics;
  counts: Counts;
  progress: Progress;
  /** Aborting stops new copies (SIGTERM, or the run's lease lost). */
  signal: AbortSignal;
  /** A replay (`etl dlq replay`): only these attachments, without listings or a manifest. */
  replayIds?: readonly string[];
}

/**
 * Copies one agency's attachments (one shard of them) to `prefix` at the destination. First it
 * clears what killed runs left (their listings, their half-written files), then lists both stores
 * into the database so the copier asks S3 only what the listings cannot answer, then copies.
 * A dry run writes nothing, the database included, so it lists nothing and HEADs instead.
 */
export async function copyAgencyAttachments(o: AgencyCopyOptions): Promise<Counts> {
  const attachments = new AttachmentRepository(o.sql);
  const copier = new AttachmentCopier({ source: o.source, destination: o.destination, prefix: o.prefix, dryRun: o.dryRun, log: o.log, metrics: o.metrics, signal: o.signal });
  const sync = { copier, concurrency: o.concurrency, signal: o.signal, log: o.log, counts: o.counts, progress: o.progress };
  const page = { batchSize: o.batchSize, shard: o.shard, signal: o.signal };
  // Counted first, so the progress shows a total.
  const summary = o.replayIds ? undefined : await attachments.summarizeAttachments(o.agencyId, o.shard, TRUSTED_SIZE_HINT);
  o.progress.setTotal(o.replayIds?.length ?? summary!.count);
  if (o.dryRun) return syncAttachments({ ...sync, pages: attachments.listAttachmentsForAgency(o.agencyId, { ...page, ids: o.replayIds }) });
  if (o.replayIds) return replayAttachments(o, sync, attachments.listAttachmentsForAgency(o.agencyId, { ...page, ids: o.replayIds }));

  const listings = new ObjectListingRepository(o.sql, o.runId);
  try {
    const abandoned = {
      listings: await listings.deleteAbandonedListings(),
      partialFiles: (await o.destination.removeAbandonedPartials?.(o.prefix, (owner) => holdsLiveLease(o.sql, owner))) ?? 0,
    };
    if (abandoned.listings || abandoned.partialFiles) o.log.info("removed what killed runs left", abandoned);
    const listed = await listStoresForAttachments({ source: o.source, destination: o.destination, destinationPrefix: o.prefix, attachments: summary!, listings });
    o.log.info("listed the stores", { attachments: summary!.count, ...listed });
    return await syncAttachments({
      ...sync,
      pages: attachments.listAttachmentsForAgency(o.agencyId, { ...page, listings: { runId: o.runId, destinationPrefix: o.prefix, ...listed } }),
      manifest: { store: o.destination, key: o.manifestKey },
      deadLetters: new DeadLetterRepository(o.sql, o.job, o.runId),
    });
  } finally {
    await listings.deleteListing().catch((error) => o.log.warn("could not delete the run's listings", { error }));
  }
}

/** The attachment id a get_s3_files dead letter names (its payload, else its item key). */
export function replayedAttachmentId(item: { itemKey: string; payload: Record<string, unknown> }): string {
  const id = String(item.payload.attachmentId ?? item.itemKey.replace(/^attachment:/, ""));
  if (!/^\d+$/.test(id)) throw new UsageError(`dead letter ${item.itemKey} names no attachment id`);
  return id;
}

/**
 * Copies the replayed attachments again, one HEAD each instead of listings, and resolves the ones
 * done as `replayed`. An id the database no longer yields (deleted, or of another agency or
 * shard) fails again, so its dead letter stays open with that reason for the operator to discard.
 */
async function replayAttachments(
  o: AgencyCopyOptions,
  sync: Omit<SyncAttachmentsOptions, "pages">,
  pages: AsyncIterable<AttachmentWithListings[]>,
): Promise<Counts> {
  const deadLetters = new DeadLetterRepository(o.sql, o.job, o.runId, "replayed");
  const seen = new Set<string>();
  async function* recording() {
    for await (const page of pages) {
      for (const attachment of page) seen.add(attachment.id);
      yield page;
    }
  }
  const counts = await syncAttachments({ ...sync, pages: recording(), deadLetters });
  const gone = o.replayIds!.filter((id) => !seen.has(id));
  if (gone.length) {
    await deadLetters.recordDeadLetters(
      gone.map((id) => ({
        itemKey: attachmentItemKey(id),
        error: `attachment ${id} is not a live attachment of agency ${o.agencyId}${o.shard ? ` in shard ${o.shard.index}/${o.shard.count}` : ""} any more (deleted?); discard it with etl dlq discard`,
        payload: { attachmentId: id },
      })),
    );
    counts.failed = (counts.failed ?? 0) + gone.length;
  }
  return counts;
}
