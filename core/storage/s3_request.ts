import type { S3Client } from "@aws-sdk/client-s3";
import { Transform, type Readable } from "node:stream";
import { ConfigError, EtlError, TransientError, type ErrorCode } from "../errors";

/**
 * Deadlines of S3 requests, sized per kind of operation from one base (S3_TIMEOUT_SECONDS,
 * default 15 s). Found by pointing the job at an endpoint that accepts connections and never
 * answers: the SDK's requestTimeout only logs a warning unless throwOnRequestTimeout is set (it
 * was not, so a HeadBucket hung for 420 s), and nothing bounded a response body that stalls.
 */
export interface S3Timeouts {
  /** TCP connect. */
  connectMs: number;
  /** HEAD, LIST, DELETE, CreateMultipartUpload, AbortMultipartUpload: until the whole answer is in. */
  metadataMs: number;
  /**
   * A server-side CopyObject or UploadPartCopy of `bytes` (or the completion of a multipart
   * upload that size): the base, as for any small request, plus 4x the base per GiB (60 s a GiB
   * at 15 s; S3 copies at about 100 MiB/s or more). It was 4x the base whatever the size, so
   * under a CopyObject-only stall each copy took 4 sends of 60 s to fail: at a 1 s base
   * get_s3_files exited 75 after 40 s, 6.7 s now (tests/jobs/get_s3_files_faults.test.ts).
   */
  copyMs(bytes: number): number;
  /** GetObject until its headers; upload parts until their answer. */
  dataMs: number;
  /** A response body that delivers nothing for this long while its reader waits is dead. */
  idleMs: number;
}

export function s3Timeouts(baseMs = 15_000): S3Timeouts {
  return {
    connectMs: Math.min(5_000, baseMs),
    metadataMs: baseMs,
    copyMs: (bytes) => baseMs + Math.ceil((4 * baseMs * bytes) / 1024 ** 3),
    dataMs: 4 * baseMs,
    idleMs: 2 * baseMs,
  };
}

/** What a request was, for the error that says it failed. */
export interface S3Operation {
  name: string;
  bucket: string;
  key?: string;
}

// Codes with which S3 says the credentials themselves are wrong: retrying cannot help (exit 2).
const CREDENTIAL_CODES = new Set(["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidClientTokenId"]);

/** An S3 request that had no answer within its deadline: transient, and each attempt of it costs that whole deadline. */
export class S3TimeoutError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "S3TimeoutError";
  }
}

// What a request that never reached S3 ran into, by the network's error code.
const NETWORK_FAILURES: Record<string, string> = {
  ENOTFOUND: "the endpoint's host name does not resolve (check S3_ENDPOINT)",
  EAI_AGAIN: "the endpoint's host name could not be resolved for now (DNS)",
  ECONNREFUSED: "the endpoint refused the connection (check S3_ENDPOINT)",
  ECONNRESET: "the connection was reset",
  ETIMEDOUT: "the connection timed out",
  EHOSTUNREACH: "the endpoint's host is unreachable",
  ENETUNREACH: "the endpoint's network is unreachable",
  EPIPE: "the connection closed while the request was sent",
};

/**
 * An S3 request that got no answer from S3 at all: a name that does not resolve, a connection
 * refused or reset. Transient (the retry policy sends it again, then the run exits 75), and
 * named like every S3 error, with the operation and the bucket, not the resolver's words alone.
 */
export class S3NetworkError extends TransientError {
  constructor(operation: S3Operation, cause: { code: string; message?: string }) {
    super(`S3 ${operation.name} ${describe(operation)} failed: ${NETWORK_FAILURES[cause.code]} (${cause.message ?? cause.code})`, { cause });
    this.name = "S3NetworkError";
  }
}

/** An S3 request that failed, naming the operation, the object, the HTTP status and S3's error code. */
export class S3RequestError extends EtlError {
  readonly status: number | undefined;
  readonly s3Code: string;

  constructor(operation: S3Operation, cause: unknown, errorCode: ErrorCode = "failed") {
    const e = cause as { name?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    // A HEAD response (or a non-S3 error page) has no error body: the SDK knows only the status,
    // names the error "Unknown" or after the status, and says "UnknownError".
    const bodiless = !e.Code && (!e.message || e.message === "UnknownError");
    const code = e.Code ?? (bodiless ? "" : (e.name ?? "Error"));
    const detail = bodiless ? "no error code: the response had no body" : e.message;
    const what = [status ? `HTTP ${status}` : "", code].filter(Boolean).join(" ");
    super(errorCode, `S3 ${operation.name} ${describe(operation)} failed: ${what} (${detail})`, { cause });
    this.name = "S3RequestError";
    this.status = status;
    this.s3Code = e.Code ?? e.name ?? "";
  }
}

/**
 * S3 refused a request by policy (403 AccessDenied): only a grant helps, so it is a configuration
 * error (exit 2) naming the operation, the bucket and the IAM action; still an S3RequestError
 * with its status, so a caller that can do without the request (s3_metrics' upload listing) may.
 */
export class S3AccessDeniedError extends S3RequestError {
  constructor(operation: S3Operation, cause: unknown) {
    super(operation, cause, "config");
    this.name = "S3AccessDeniedError";
    const action = S3_ACTIONS[operation.name] ?? operation.name;
    this.message = `S3 denied ${operation.name} on ${describe(operation)} (HTTP 403${this.s3Code === "AccessDenied" ? " AccessDenied" : ""}): the credentials' policy must allow ${action} there`;
  }
}

/**
 * Sends `command` once, with a deadline of `timeoutMs` for the whole exchange (for GetObject,
 * until its headers), and turns what fails into an error that says which request failed and how:
 * a timeout is transient; S3 rejecting the credentials is a configuration error (exit 2, no
 * retry). Retries are the caller's: S3Store sends through core/storage/s3_retry.ts.
 */
export async function sendS3<T>(client: S3Client, command: object, operation: S3Operation, timeoutMs: number): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return (await client.send(command as never, { abortSignal: controller.signal })) as T;
  } catch (error) {
    if (controller.signal.aborted) throw new S3TimeoutError(`S3 ${operation.name} ${describe(operation)} timed out: no answer within ${timeoutMs} ms`, { cause: error });
    throw classifyS3Error(error, operation);
  } finally {
    clearTimeout(timer);
  }
}

function classifyS3Error(error: unknown, operation: S3Operation): unknown {
  if (error instanceof EtlError) return error;
  const e = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === "CredentialsProviderError") {
    return new ConfigError(`no AWS credentials found for S3 ${operation.name} ${describe(operation)}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity (IRSA)`, { cause: error });
  }
  if (!e.$metadata?.httpStatusCode) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && Object.hasOwn(NETWORK_FAILURES, code) ? new S3NetworkError(operation, error as { code: string }) : error;
  }
  const failure = new S3RequestError(operation, error);
  if (CREDENTIAL_CODES.has(failure.s3Code)) {
    return new ConfigError(`S3 rejected the credentials: ${failure.message.replace(/^S3 /, "")}; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN`, { cause: error });
  }
  // Denied by a policy: only a grant helps (exit 2). A HEAD's 403 has no body to say more.
  if (failure.s3Code === "AccessDenied" || (failure.status === 403 && operation.name.startsWith("Head"))) return new S3AccessDeniedError(operation, error);
  return failure;
}

// The IAM action each request needs (a copy also needs s3:GetObject on its source).
const S3_ACTIONS: Record<string, string> = {
  HeadBucket: "s3:ListBucket",
  ListObjectsV2: "s3:ListBucket",
  ListMultipartUploads: "s3:ListBucketMultipartUploads",
  HeadObject: "s3:GetObject (and s3:ListBucket, without which a missing key answers 403 too)",
  GetObject: "s3:GetObject",
  PutObject: "s3:PutObject",
  CopyObject: "s3:PutObject",
  CreateMultipartUpload: "s3:PutObject",
  UploadPart: "s3:PutObject",
  UploadPartCopy: "s3:PutObject",
  CompleteMultipartUpload: "s3:PutObject",
  AbortMultipartUpload: "s3:AbortMultipartUpload",
  DeleteObject: "s3:DeleteObject",
  DeleteObjects: "s3:DeleteObject",
};

/**
 * Passes a response body through, destroying it with a transient error when it delivers nothing
 * for `idleMs` while its reader is waiting. A reader that is slow itself (backpressure: data is
 * buffered here) is not the body's fault and does not count.
 */
export function withIdleTimeout(body: Readable, idleMs: number, operation: S3Operation): Readable {
  let lastData = performance.now();
  const watched = new Transform({
    transform(chunk, _encoding, callback) {
      lastData = performance.now();
      callback(null, chunk);
    },
  });
  const timer = setInterval(() => {
    if (watched.readableLength === 0 && performance.now() - lastData > idleMs) {
      const error = new TransientError(`S3 ${operation.name} ${describe(operation)} stalled: no data for ${idleMs} ms`);
      body.destroy(error);
      watched.destroy(error);
    }
  }, Math.max(10, Math.floor(idleMs / 4)));
  const stop = () => clearInterval(timer);
  watched.once("close", stop);
  body.once("error", (error) => watched.destroy(error));
  body.pipe(watched);
  return watched;
}

function describe(operation: S3Operation): string {
  return `s3://${operation.bucket}${operation.key !== undefined ? `/${operation.key}` : ""}`;
}
