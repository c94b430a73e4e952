import { CircuitBreaker } from "../../../core/http/circuit_breaker";
import { EtlError, errorMessage } from "../../../core/errors";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import { unsafeKeyReason } from "../../../core/storage/object_key";
import { ObjectNotFoundError, SOURCE_ETAG_METADATA, copyObject, type ObjectInfo, type ObjectStore } from "../../../core/storage/object_store";
import { retry } from "../../../core/http/retry";
import { isTransientError } from "../../../core/http/transient";
import type { AttachmentWithListings } from "../../../repositories/attachments";

export type CopyStatus = "copied" | "skipped" | "failed" | "planned";

/** One manifest row's worth of facts about one attachment. */
export interface CopyOutcome {
  attachment: AttachmentWithListings;
  sourceKey: string;
  destinationKey: string;
  status: CopyStatus;
  sizeBytes: number | undefined;
  etag: string | undefined;
  error?: string;
}

export interface AttachmentCopierOptions {
  source: ObjectStore;
  destination: ObjectStore;
  /** Prepended to the source key to form the destination key. */
  prefix: string;
  dryRun: boolean;
  log: Logger;
  metrics: Metrics;
  signal?: AbortSignal;
  /** Consecutive transient failures after which the whole run stops (exit 75). */
  breaker?: CircuitBreaker;
}

// The database's size_bytes is a hint, trusted only well below S3's 5 GiB CopyObject limit: a
// stale row must not send a 6 GiB object to a single CopyObject.
export const TRUSTED_SIZE_HINT = 4 * 1024 ** 3;

type Known = { size: number; etag: string | null; metadata?: Record<string, string> };

/**
 * Copies one attachment from the source store to the destination, skipping it when an identical
 * object (same size and ETag, or the source ETag recorded at the destination) is already there.
 *
 * Requests per attachment: what the run's listings (etl_object_listings) already know is not
 * asked again. A first copy S3 to S3 is one CopyObject (its own 404 reports a missing source); an
 * unchanged object is no request at all when both sides were listed. A HEAD is made only where a
 * listing cannot answer: a side that was not listed, a key missing from the source listing (it may
 * have arrived since), or equal sizes with ETags that differ (a multipart copy keeps the source
 * ETag in metadata; a local file's MD5 is computed on demand).
 *
 * Each S3 request retries on its own (core/storage/s3_retry.ts); an attempt here again is only for what a
 * request cannot replay: a streamed copy's body that broke off, which is read again from the start.
 *
 * A failure is returned as a `failed` outcome, not thrown, so one bad item does not stop the run;
 * only an open circuit breaker, an abort or a configuration error throws. That last is S3 denying
 * a request by policy (S3AccessDeniedError: a PutObject or CopyObject at the destination, a
 * GetObject at the source) or rejecting the credentials: it is the role's, not the object's, so
 * every item would meet it, each a dead letter that a replay only fails again (30 attachments
 * under a denied CopyObject were 30 dead letters and exit 3); thrown, it stops new copies and
 * the run exits 2 naming the action to grant. The breaker opening ends every copy in flight
 * at once: they would otherwise each run out their own attempts first, while the workers freed
 * by the failures before the tenth started copies of their own (a CopyObject-only stall ran on
 * past 300 s that way).
 */
export class AttachmentCopier {
  private readonly breaker: CircuitBreaker;
  /** Rejected with the breaker's error when it opens; copies in flight race it. */
  private readonly opened = Promise.withResolvers<never>();
  private open: { error: unknown } | undefined;

  constructor(private readonly options: AttachmentCopierOptions) {
    this.breaker = options.breaker ?? new CircuitBreaker("object store");
    this.opened.promise.catch(() => undefined); // no copy may be in flight when it is rejected
  }

  async copyAttachment(attachment: AttachmentWithListings): Promise<CopyOutcome> {
    const { log } = this.options;
    const sourceKey = attachment.s3Key;
    const outcome = (status: CopyStatus, info?: { size: number; etag: string | null }, error?: string): CopyOutcome => ({
      attachment,
      sourceKey,
      destinationKey: this.options.prefix + sourceKey,
      status,
      sizeBytes: info?.size ?? attachment.sizeBytes ?? undefined,
      etag: info?.etag ?? undefined,
      error,
    });
    const unsafe = unsafeKeyReason(sourceKey);
    if (unsafe) {
      const message = `unsafe key ${JSON.stringify(sourceKey)}: ${unsafe}; nothing was read or written`;
      log.warn("copy refused", { attachmentId: attachment.id, error: message });
      return outcome("failed", undefined, message);
    }
    const copy = retry(
      // The listings are a snapshot from the start of the run: a retry asks the stores again.
      (attempt) => this.syncObject(attachment, attempt === 1, outcome),
      {
        signal: this.options.signal,
        onRetry: (error, attempt, delayMs) =>
          log.warn("copy failed, retrying", { attachmentId: attachment.id, key: sourceKey, attempt, delayMs, error: errorMessage(error) }),
      },
    );
    copy.catch(() => undefined); // a copy abandoned when the breaker opened fails unobserved
    try {
      const result = await Promise.race([copy, this.opened.promise]);
      this.breaker.recordSuccess();
      return result;
    } catch (error) {
      if (this.options.signal?.aborted) throw error;
      if (this.open) throw this.open.error;
      if (error instanceof EtlError && error.code === "config") throw error;
      if (isTransientError(error)) this.recordFailure(error);
      const message = errorMessage(error);
      log.warn("copy failed", { attachmentId: attachment.id, key: sourceKey, error: message });
      return outcome("failed", undefined, message);
    }
  }

  /** Counts a transient failure; when that opens the breaker, every copy in flight ends with its error. */
  private recordFailure(error: unknown): void {
    try {
      this.breaker.recordFailure(error);
    } catch (open) {
      this.open = { error: open };
      this.opened.reject(open);
      throw open;
    }
  }

  private async syncObject(
    attachment: AttachmentWithListings,
    useListings: boolean,
    outcome: (status: CopyStatus, info?: { size: number; etag: string | null }) => CopyOutcome,
  ): Promise<CopyOutcome> {
    const { source, destination, metrics } = this.options;
    const listedSource = useListings ? attachment.listedSource : undefined;
    const listedDestination = useListings ? attachment.listedDestination : undefined;
    const sourceKey = attachment.s3Key;
    const destinationKey = this.options.prefix + sourceKey;
    let found: Known | undefined = listedSource ?? undefined;
    if (listedSource === null) found = await this.headSource(sourceKey);
    const existing: Known | undefined = listedDestination === undefined ? await destination.head(destinationKey) : listedDestination ?? undefined;
    if (existing) {
      found ??= await this.headSource(sourceKey);
      // A listed local file has no ETag yet: its MD5 is worth computing only when sizes match.
      if (existing.size === found.size && found.etag === null) found = await this.headSource(sourceKey);
      if (await this.holdsCopyOf(destinationKey, existing, found)) return outcome("skipped", found);
    }
    if (this.options.dryRun) return outcome("planned", found ?? (await this.headSource(sourceKey)));
    const sizeHint = attachment.sizeBytes !== null && attachment.sizeBytes < TRUSTED_SIZE_HINT ? attachment.sizeBytes : undefined;
    const copied = await metrics.time("copyMs", () =>
      copyObject(source, sourceKey, destination, destinationKey, {
        size: found?.size ?? sizeHint,
        sourceEtag: found?.etag ?? undefined,
        contentType: attachment.contentType ?? undefined,
      }),
    );
    metrics.increment("copiedBytes", copied.size);
    return outcome("copied", copied);
  }

  private async headSource(key: string): Promise<ObjectInfo> {
    const info = await this.options.source.head(key);
    if (!info) throw new ObjectNotFoundError(this.options.source.url, key);
    return info;
  }

  /** Whether `existing` at the destination is a copy of `found`; a listing lacks metadata and a file's MD5, so ask the object. */
  private async holdsCopyOf(destinationKey: string, existing: Known, found: Known): Promise<boolean> {
    if (existing.size !== found.size) return false;
    if (existing.etag !== null && existing.etag === found.etag) return true;
    const full = existing.metadata ? existing : await this.options.destination.head(destinationKey);
    return full !== undefined && full.size === found.size && (full.etag === found.etag || full.metadata?.[SOURCE_ETAG_METADATA] === found.etag);
  }
}
