import { CircuitBreaker } from "../core/circuit_breaker";
import { errorMessage } from "../core/errors";
import type { Logger } from "../core/log";
import type { Metrics } from "../core/metrics";
import { ObjectNotFoundError, copyObject, type ObjectInfo, type ObjectStore } from "../core/object_store";
import { retry, type RetryOptions } from "../core/retry";
import { isTransientError } from "../core/transient";
import type { Attachment } from "../repositories/attachments";

export type CopyStatus = "copied" | "skipped" | "failed" | "planned";

/** One manifest row's worth of facts about one attachment. */
export interface CopyOutcome {
  attachment: Attachment;
  sourceKey: string;
  destinationKey: string;
  status: CopyStatus;
  sizeBytes: number | undefined;
  etag: string | undefined;
  error?: string;
}

/** Destination metadata naming the source ETag, so a multipart copy (whose ETag differs) is still known identical. */
export const SOURCE_ETAG_METADATA = "etl-source-etag";

export interface AttachmentCopierOptions {
  source: ObjectStore;
  destination: ObjectStore;
  /** Prepended to the source key to form the destination key. */
  prefix: string;
  dryRun: boolean;
  log: Logger;
  metrics: Metrics;
  signal?: AbortSignal;
  retry?: RetryOptions;
  /** Consecutive transient failures after which the whole run stops (exit 75). */
  breaker?: CircuitBreaker;
}

/**
 * Copies one attachment from the source store to the destination, skipping it when an identical
 * object (same size and ETag) is already there. A failure is returned as a `failed` outcome, not
 * thrown, so one bad item does not stop the run; only an open circuit breaker throws.
 */
export class AttachmentCopier {
  private readonly breaker: CircuitBreaker;

  constructor(private readonly options: AttachmentCopierOptions) {
    this.breaker = options.breaker ?? new CircuitBreaker("object store");
  }

  async copyAttachment(attachment: Attachment): Promise<CopyOutcome> {
    const { source, destination, prefix, log, metrics } = this.options;
    const sourceKey = attachment.s3Key;
    const destinationKey = prefix + sourceKey;
    const outcome = (status: CopyStatus, info?: ObjectInfo, error?: string): CopyOutcome => ({
      attachment,
      sourceKey,
      destinationKey,
      status,
      sizeBytes: info?.size ?? attachment.sizeBytes ?? undefined,
      etag: info?.etag,
      error,
    });
    try {
      const result = await retry(
        async () => {
          const [found, existing] = await Promise.all([source.head(sourceKey), destination.head(destinationKey)]);
          if (!found) throw new ObjectNotFoundError(source.url, sourceKey);
          if (existing && isSameObject(found, existing)) return outcome("skipped", found);
          if (this.options.dryRun) return outcome("planned", found);
          await metrics.time("copyMs", () =>
            copyObject(source, sourceKey, destination, destinationKey, {
              size: found.size,
              metadata: { [SOURCE_ETAG_METADATA]: found.etag },
              contentType: attachment.contentType ?? undefined,
            }),
          );
          metrics.increment("bytesCopied", found.size);
          return outcome("copied", found);
        },
        {
          signal: this.options.signal,
          ...this.options.retry,
          onRetry: (error, attempt, delayMs) =>
            log.warn("copy failed, retrying", { attachmentId: attachment.id, key: sourceKey, attempt, delayMs, error }),
        },
      );
      this.breaker.recordSuccess();
      return result;
    } catch (error) {
      if (this.options.signal?.aborted) throw error;
      if (isTransientError(error)) this.breaker.recordFailure(error);
      const message = errorMessage(error);
      log.warn("copy failed", { attachmentId: attachment.id, key: sourceKey, error: message });
      return outcome("failed", undefined, message);
    }
  }
}

function isSameObject(source: ObjectInfo, destination: ObjectInfo): boolean {
  if (source.size !== destination.size) return false;
  return destination.etag === source.etag || destination.metadata[SOURCE_ETAG_METADATA] === source.etag;
}
