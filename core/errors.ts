/**
 * One error base class for the platform. `code` is short and stable; the job runner
 * (core/runtime/runner.ts) is the only place that turns a code into an exit code.
 */
export type ErrorCode = "usage" | "config" | "transient" | "interrupted" | "failed";

export class EtlError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EtlError";
    this.code = code;
  }
}

/** A bad flag, a bad value, an unknown job: retrying cannot help (exit 2). */
export class UsageError extends EtlError {
  constructor(message: string) {
    super("usage", message);
    this.name = "UsageError";
  }
}

/** A missing or malformed environment variable or platform setting (exit 2). */
export class ConfigError extends EtlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", message, options);
    this.name = "ConfigError";
  }
}

/** A dependency stayed unavailable after retries (exit 75, Kubernetes retries the pod). */
export class TransientError extends EtlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("transient", message, options);
    this.name = "TransientError";
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
