import { TransientError, errorMessage } from "../errors";

/**
 * Stops a run once a dependency has failed `threshold` times in a row. A batch job has no
 * half-open state to wait in: it exits 75 and Kubernetes retries the pod later, instead of
 * recording every remaining item as failed while S3 or the database is down.
 */
export class CircuitBreaker {
  private consecutiveFailures = 0;

  constructor(
    private readonly dependency: string,
    private readonly threshold = 10,
  ) {}

  recordSuccess(): void {
    this.consecutiveFailures = 0;
  }

  /** Counts a failure that is the dependency's fault; throws once the threshold is reached. */
  recordFailure(error: unknown): void {
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.threshold) {
      throw new TransientError(
        `${this.dependency} unavailable: ${this.consecutiveFailures} consecutive failures, last: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }
}
