import { forEachOrdered } from "../../../core/executor";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import type { Progress } from "../../../core/runtime/progress";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { AttachmentWithListings } from "../../../repositories/attachments";
import type { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import type { AttachmentCopier, CopyOutcome } from "./attachment_copier";
import { CopyManifest } from "./copy_manifest";

export interface SyncAttachmentsOptions {
  /** Pages of attachments in id order (AttachmentRepository.listAttachmentsForAgency). */
  pages: AsyncIterable<AttachmentWithListings[]>;
  copier: AttachmentCopier;
  concurrency: number;
  /** Aborting stops new copies; the ones in flight finish. */
  signal: AbortSignal;
  log: Logger;
  /** Filled as items finish, so an interrupted run still reports what it did. */
  counts: Counts;
  progress?: Progress;
  /** Where the manifest goes; a dry run passes none and writes nothing. */
  manifest?: { store: ObjectStore; key: string };
  deadLetters?: DeadLetterRepository;
}

// Dead letters are written this many items at a time, off the copy path.
const DEAD_LETTER_BATCH = 500;

/**
 * Copies every attachment of the pages with `concurrency` copies in flight across page
 * boundaries (the next page is read while this one is copied), and writes the manifest in id
 * order. Failed items are recorded as dead letters; items done now resolve the dead letters
 * earlier runs left. The manifest is published only when every item is done.
 */
export async function syncAttachments(options: SyncAttachmentsOptions): Promise<Counts> {
  const { copier, concurrency, signal, log, counts } = options;
  for (const status of ["copied", "skipped", "failed"]) counts[status] ??= 0;
  const manifest = options.manifest ? CopyManifest.create() : undefined;
  const deadLetters = options.deadLetters ? new DeadLetterBatches(options.deadLetters) : undefined;
  try {
    await forEachOrdered(
      prefetchedItems(options.pages),
      { concurrency, signal },
      (attachment) => copier.copyAttachment(attachment),
      (outcome) => {
        counts[outcome.status] = (counts[outcome.status] ?? 0) + 1;
        options.progress?.advance(1, outcome.status === "copied" ? (outcome.sizeBytes ?? 0) : 0);
        manifest?.addRow(outcome);
        deadLetters?.add(outcome);
      },
    );
    await deadLetters?.flush();
    if (manifest && options.manifest) {
      await manifest.publish(options.manifest.store, options.manifest.key);
      log.info("manifest written", { manifest: `${options.manifest.store.url}/${options.manifest.key}`, rows: manifest.rows });
    }
    return counts;
  } finally {
    manifest?.discard();
    // What was recorded before a failure or an interruption is kept.
    await deadLetters?.flush().catch((error) => log.warn("could not record dead letters", { error }));
  }
}

/** The items of the pages, one by one, asking for the next page as soon as one is handed out. */
async function* prefetchedItems<T>(pages: AsyncIterable<T[]>): AsyncGenerator<T> {
  const iterator = pages[Symbol.asyncIterator]();
  let next = iterator.next();
  try {
    for (;;) {
      const page = await next;
      if (page.done) return;
      next = iterator.next();
      next.catch(() => undefined); // awaited on the next turn; this only marks it handled meanwhile
      yield* page.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/** An attachment's key in etl_dead_letters. */
export function attachmentItemKey(id: string): string {
  return `attachment:${id}`;
}

function itemKey(o: CopyOutcome): string {
  return attachmentItemKey(o.attachment.id);
}

/**
 * Dead-letter bookkeeping in batches, one write in flight, so a copy never waits on the
 * database. A write that fails fails the run at the next add or flush.
 */
class DeadLetterBatches {
  private failed: CopyOutcome[] = [];
  private done: string[] = [];
  private writing: Promise<void> = Promise.resolve();
  private error: { error: unknown } | undefined;

  constructor(private readonly repository: DeadLetterRepository) {}

  add(outcome: CopyOutcome): void {
    if (this.error) throw this.error.error;
    if (outcome.status === "failed") this.failed.push(outcome);
    else this.done.push(itemKey(outcome));
    if (this.failed.length + this.done.length >= DEAD_LETTER_BATCH) void this.write();
  }

  async flush(): Promise<void> {
    await this.write();
    if (this.error) throw this.error.error;
  }

  private write(): Promise<void> {
    const failed = this.failed;
    const done = this.done;
    this.failed = [];
    this.done = [];
    this.writing = this.writing.then(async () => {
      try {
        await this.repository.recordDeadLetters(failed.map(deadLetterOf));
        await this.repository.resolveDeadLetters(done);
      } catch (error) {
        this.error ??= { error };
      }
    });
    return this.writing;
  }
}

function deadLetterOf(o: CopyOutcome) {
  return {
    itemKey: itemKey(o),
    error: o.error ?? "unknown error",
    payload: { attachmentId: o.attachment.id, sourceKey: o.sourceKey, destinationKey: o.destinationKey },
  };
}
