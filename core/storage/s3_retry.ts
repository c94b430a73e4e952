import { formatDuration } from "../duration";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { RetryBudget, retry } from "../http/retry";
import { S3RequestError, S3TimeoutError, type S3Operation } from "./s3_request";
import { isTransientError } from "../http/transient";

export interface S3RetryOptions {
  /** Sends of one request at most, the first included. */
  attempts: number;
  /** Sends at most once the last one timed out: each of those costs the request's whole deadline. */
  timedOutAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * The one retry policy of every S3 request every job makes (S3Store sends through it; callers
 * add no retries of their own, core/http/retry.ts). 10 sends, as rclone's --low-level-retries: a burst
 * of 40 connection resets on get_s3_files' 400 copies at 16 in flight left one copy failed after
 * 4. Once a send has timed out, 4 in all: an endpoint that never answers then fails a request
 * within 4 deadlines plus backoff (about 65 s at the 15 s base), the bound docs/s3_requests.md states.
 */
const S3_RETRY: S3RetryOptions = { attempts: 10, timedOutAttempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };

// The AWS SDKs' retry quota: 500 tokens, a retry costs 5 (10 after a timeout), a success gives 1
// back. A run's requests share it, so an S3 that fails everything gets about 100 retries in all
// before every request fails at its first error, instead of 10 sends of each.
const BUDGET = { capacity: 500, retryCost: 5, timeoutRetryCost: 10, successRefund: 1 };

export interface S3RetryPolicyOptions extends Partial<S3RetryOptions> {
  /** Each retry is logged there (a warning naming the request, the attempt and the wait). */
  log?: Logger;
  /** Aborting stops the waits between attempts (SIGTERM). */
  signal?: AbortSignal;
}

/** Attempts, jittered backoff and a retry budget for the requests of one S3 client (all the stores of a run). */
export class S3RetryPolicy {
  private readonly options: S3RetryOptions;
  private readonly budget = new RetryBudget({
    capacity: BUDGET.capacity,
    costOf: (error) => (error instanceof S3TimeoutError ? BUDGET.timeoutRetryCost : BUDGET.retryCost),
    successRefund: BUDGET.successRefund,
  });

  constructor(private readonly settings: S3RetryPolicyOptions = {}) {
    this.options = { ...S3_RETRY, ...settings };
  }

  /**
   * Runs `send` (one attempt of the request, building its command anew, since a streamed body
   * cannot be sent twice) until it succeeds or the policy gives up. A non-transient answer (404,
   * 403, rejected credentials) is not retried, nor 501 Not Implemented: an S3-compatible server
   * without the operation (ListMultipartUploads on some) will not have it a moment later.
   */
  send<T>(operation: S3Operation, send: () => Promise<T>): Promise<T> {
    const { attempts, timedOutAttempts, baseDelayMs, maxDelayMs } = this.options;
    const { log, signal } = this.settings;
    return retry(send, {
      attempts: (error) => (error instanceof S3TimeoutError ? timedOutAttempts : attempts),
      baseDelayMs,
      maxDelayMs,
      budget: this.budget,
      isRetryable: (error) => isTransientError(error) && !(error instanceof S3RequestError && error.status === 501),
      signal,
      // The error names the request already (core/storage/s3_request.ts): a terminal reads it once.
      onRetry: (error, attempt, delayMs) =>
        log?.warn(
          "S3 request failed, retrying",
          { operation: operation.name, bucket: operation.bucket, key: operation.key, attempt, delayMs, error: errorMessage(error) },
          { pretty: `attempt ${attempt} failed, retrying in ${formatDuration(delayMs)}: ${errorMessage(error)}` },
        ),
    });
  }
}
