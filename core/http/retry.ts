import { isTransientError } from "./transient";

export interface RetryOptions {
  /**
   * Total attempts, the first included; a function gives them by the error the last attempt
   * failed with (an S3 request that timed out gets fewer: each of those costs its whole deadline).
   */
  attempts?: number | ((error: unknown) => number);
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Aborting stops the waits and the retries; a first attempt is still made. */
  signal?: AbortSignal;
  isRetryable?: (error: unknown) => boolean;
  /** Shared by every retry() that is given it: each retry spends from it, and none is made while it is empty. */
  budget?: RetryBudget;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `operation` until it succeeds, a non-retryable error occurs, or attempts run out.
 * Delays grow exponentially with full jitter (AWS architecture blog, "Exponential Backoff and
 * Jitter"): many pods retrying the same dependency spread out instead of arriving together.
 *
 * An error this gives up on for its limits (attempts, budget) is marked spent, and no retry()
 * retries a spent error again: an outer loop around a call that retries on its own (every S3
 * request does, core/storage/s3_retry.ts) would otherwise multiply the attempts, 4 inside 4 making 16.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 4;
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 5_000;
  const isRetryable = options.isRetryable ?? isTransientError;
  let spentOnLastRetry = 0;
  for (let attempt = 1; ; attempt++) {
    // The signal stops retries, not the first attempt: after SIGTERM a run still sends the
    // requests of its drain (unzip_files removing an interrupted archive's staging, a rollback).
    try {
      const result = await operation(attempt);
      options.budget?.recordSuccess(spentOnLastRetry);
      return result;
    } catch (error) {
      if (options.signal?.aborted || retriesSpent(error) || !isRetryable(error)) throw error;
      const allowed = typeof attempts === "number" ? attempts : attempts(error);
      if (attempt >= allowed) throw markSpent(error);
      if (options.budget) {
        const cost = options.budget.spend(error);
        if (cost === undefined) throw markSpent(error);
        spentOnLastRetry = cost;
      }
      const delayMs = backoffDelay(attempt, base, max);
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

const SPENT = Symbol.for("etl.retriesSpent");

/** Whether a retry loop already gave up on `error` (or on an error it wraps): retrying it again multiplies attempts. */
export function retriesSpent(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { [SPENT]?: boolean })[SPENT]) return true;
  }
  return false;
}

function markSpent(error: unknown): unknown {
  if (error && typeof error === "object" && Object.isExtensible(error)) Object.defineProperty(error, SPENT, { value: true });
  return error;
}

export interface RetryBudgetOptions {
  /** Tokens when full, and at the start. */
  capacity: number;
  /** What one retry after `error` costs. */
  costOf(error: unknown): number;
  /** What a success at the first attempt gives back (a success after retries gives back what its last retry cost). */
  successRefund: number;
}

/**
 * A token bucket of retries shared by every request to one dependency, as the AWS SDKs' retry
 * quota is: a burst of failures among successes is retried, since the successes refill it, while
 * a dependency that fails everything empties it, and from then on each request fails at its first
 * error, so a run gives up in bounded time instead of multiplying its load on a server in trouble.
 */
export class RetryBudget {
  private tokens: number;

  constructor(private readonly options: RetryBudgetOptions) {
    this.tokens = options.capacity;
  }

  /** Takes the cost of one retry after `error` and returns it; undefined (nothing taken) when the budget cannot pay it. */
  spend(error: unknown): number | undefined {
    const cost = this.options.costOf(error);
    if (cost > this.tokens) return undefined;
    this.tokens -= cost;
    return cost;
  }

  /** A request succeeded; `spentOnLastRetry` is what its last retry cost (0 when it needed none). */
  recordSuccess(spentOnLastRetry: number): void {
    this.tokens = Math.min(this.options.capacity, this.tokens + (spentOnLastRetry || this.options.successRefund));
  }
}

/** The wait before retry number `attempt`: full jitter under an exponential cap. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.round(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
