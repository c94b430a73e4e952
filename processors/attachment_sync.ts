import { mapBounded } from "../core/executor";
import type { Counts } from "../core/job";
import type { Logger } from "../core/log";
import type { ObjectStore } from "../core/object_store";
import type { Attachment } from "../repositories/attachments";
import type { DeadLetterRepository } from "../repositories/dead_letters";
import type { AttachmentCopier, CopyOutcome } from "./attachment_copier";
import { CopyManifest } from "./copy_manifest";

export interface SyncAttachmentsOptions {
  /** Pages of attachments in id order (AttachmentRepository.listAttachmentsForAgency). */
  pages: AsyncIterable<Attachment[]>;
  copier: AttachmentCopier;
  concurrency: number;
  signal: AbortSignal;
  log: Logger;
  /** Where the manifest goes; a dry run passes none and writes nothing. */
  manifest?: { store: ObjectStore; key: string };
  deadLetters?: DeadLetterRepository;
}

/**
 * Copies every attachment of the pages, `concurrency` at a time within a page, and writes the
 * manifest in id order. Failed items are recorded as dead letters; items done now resolve the
 * dead letters earlier runs left. The manifest is published only when every page is done.
 */
export async function syncAttachments(options: SyncAttachmentsOptions): Promise<Counts> {
  const { copier, concurrency, signal, log, deadLetters } = options;
  const counts: Counts = { copied: 0, skipped: 0, failed: 0 };
  const manifest = options.manifest ? CopyManifest.create() : undefined;
  try {
    for await (const page of options.pages) {
      const outcomes = await mapBounded(page, concurrency, (attachment) => copier.copyAttachment(attachment), signal);
      for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
      manifest?.addRows(outcomes);
      await deadLetters?.recordDeadLetters(outcomes.filter((o) => o.status === "failed").map(deadLetterOf));
      await deadLetters?.resolveDeadLetters(outcomes.filter((o) => o.status !== "failed").map((o) => itemKey(o.attachment)));
      log.info("page done", { attachments: page.length, lastId: page[page.length - 1]?.id, ...counts });
    }
    if (manifest && options.manifest) {
      await manifest.publish(options.manifest.store, options.manifest.key);
      log.info("manifest written", { manifest: `${options.manifest.store.url}/${options.manifest.key}`, rows: manifest.rows });
    }
    return counts;
  } finally {
    await manifest?.discard();
  }
}

function itemKey(attachment: Attachment): string {
  return `attachment:${attachment.id}`;
}

function deadLetterOf(o: CopyOutcome) {
  return {
    itemKey: itemKey(o.attachment),
    error: o.error ?? "unknown error",
    payload: { attachmentId: o.attachment.id, sourceKey: o.sourceKey, destinationKey: o.destinationKey },
  };
}
