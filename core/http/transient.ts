import { EtlError } from "../errors";

/**
 * Decides whether an error from S3, PostgreSQL or the network is worth retrying.
 * Permanent errors (missing key, access denied, bad SQL) are not: retrying only delays the report.
 */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ConnectionRefused",
  "ConnectionClosed",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

const S3_TRANSIENT_NAMES = new Set([
  "SlowDown",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "InternalError",
  "ServiceUnavailable",
  "Throttling",
  "ThrottlingException",
  "TimeoutError",
]);

// SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P0x operator intervention;
// 40001/40P01 serialization failure and deadlock succeed when run again.
const PG_TRANSIENT = /^(08...|53...|57P0[1-3]|40001|40P01)$/;

export function isTransientError(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  if (error instanceof EtlError) {
    if (error.code === "transient") return true;
    if (error.code === "config" || error.code === "usage") return false;
  }
  const e = error as {
    code?: unknown;
    name?: unknown;
    errno?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if (typeof e.code === "string" && (NETWORK_CODES.has(e.code) || PG_TRANSIENT.test(e.code))) return true;
  if (typeof e.name === "string" && S3_TRANSIENT_NAMES.has(e.name)) return true;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status === 429 || status >= 500)) return true;
  return e.cause !== undefined && e.cause !== error && isTransientError(e.cause);
}
