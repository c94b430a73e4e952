import type { Sql } from "../core/db";
import type { Counts } from "../core/job";
import { holdsLiveLease } from "../core/lease";
import type { Logger } from "../core/log";
import type { Metrics } from "../core/metrics";
import type { ObjectStore } from "../core/object_store";
import { AttachmentRepository } from "../repositories/attachments";
import { DeadLetterRepository } from "../repositories/dead_letters";
import { ObjectListingRepository } from "../repositories/object_listings";
import { AttachmentCopier } from "./attachment_copier";
import { syncAttachments } from "./attachment_sync";
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
  /** Aborting stops new copies (SIGTERM, or the run's lease lost). */
  signal: AbortSignal;
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
  const sync = { copier, concurrency: o.concurrency, signal: o.signal, log: o.log, counts: o.counts };
  const page = { batchSize: o.batchSize, shard: o.shard, signal: o.signal };
  if (o.dryRun) return syncAttachments({ ...sync, pages: attachments.listAttachmentsForAgency(o.agencyId, page) });

  const listings = new ObjectListingRepository(o.sql, o.runId);
  try {
    const abandoned = {
      listings: await listings.deleteAbandonedListings(),
      partialFiles: (await o.destination.removeAbandonedPartials?.(o.prefix, (owner) => holdsLiveLease(o.sql, owner))) ?? 0,
    };
    if (abandoned.listings || abandoned.partialFiles) o.log.info("removed what killed runs left", abandoned);
    const summary = await attachments.summarizeAttachments(o.agencyId, o.shard);
    const listed = await listStoresForAttachments({ source: o.source, destination: o.destination, destinationPrefix: o.prefix, attachments: summary, listings });
    o.log.info("listed the stores", { attachments: summary.count, ...listed });
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
