import type { S3Client } from "@aws-sdk/client-s3";
import { errorMessage } from "../errors";
import { FileStore } from "./file_store";
import type { Location, ObjectStore } from "./object_store";
import type { Logger } from "../log";
import { s3Timeouts, type S3Timeouts } from "./s3_request";
import { S3RetryPolicy, type S3RetryOptions } from "./s3_retry";
import type { S3StoreOptions } from "./s3_store";

export interface ObjectStoresOptions {
  s3Endpoint: string | undefined;
  awsRegion: string;
  /** Base of the S3 deadlines (core/storage/s3_request.ts); 15 s when absent. */
  s3TimeoutMs?: number;
  s3?: S3StoreOptions;
  /** Overrides of the S3 retry policy (core/storage/s3_retry.ts): etl doctor sends twice at most. */
  s3Retry?: Partial<S3RetryOptions>;
  /** Where S3 retries are logged. */
  log?: Logger;
  /** The run's: aborting it stops the waits between S3 attempts. */
  signal?: AbortSignal;
  /** Names the writer in a file: store's temp files (the run id). */
  owner?: string;
}

/**
 * Opens stores for locations. The AWS SDK is imported on the first S3 location only, so a job
 * that touches local directories alone never pays for loading it. All S3 stores share one client
 * and one retry policy, so one retry budget.
 */
export class ObjectStores {
  private client: Promise<S3Client> | undefined;
  private readonly timeouts: S3Timeouts;
  private readonly retry: S3RetryPolicy;

  constructor(private readonly options: ObjectStoresOptions) {
    this.timeouts = s3Timeouts(options.s3TimeoutMs);
    this.retry = new S3RetryPolicy({ ...options.s3Retry, log: options.log, signal: options.signal });
  }

  async open(location: Location): Promise<ObjectStore> {
    if (location.kind === "file") return new FileStore(location.dir, this.options.owner);
    const [{ S3Store }, client] = await Promise.all([import("./s3_store"), this.s3Client()]);
    return new S3Store(location.bucket, client, { timeouts: this.timeouts, retry: this.retry, ...this.options.s3 });
  }

  async close(): Promise<void> {
    if (this.client) (await this.client).destroy();
  }

  private s3Client(): Promise<S3Client> {
    this.client ??= createS3Client(this.options, this.timeouts, this.options.log);
    return this.client;
  }
}

async function createS3Client(options: ObjectStoresOptions, timeouts: S3Timeouts, log: Logger | undefined): Promise<S3Client> {
  const [{ S3Client }, { NodeHttpHandler }] = await Promise.all([import("@aws-sdk/client-s3"), import("@smithy/node-http-handler")]);
  // The SDK's default of 50 sockets would queue copies behind each other above --concurrency 50.
  // Jobs cap concurrency at 256 and a multipart copy runs 4 parts at once; sockets open on demand,
  // so the cap costs nothing until it is used.
  const maxSockets = 1024;
  return new S3Client({
    region: options.awsRegion,
    endpoint: options.s3Endpoint,
    // S3-compatible servers (MinIO, moto, Ceph) address buckets by path, not by virtual host.
    forcePathStyle: options.s3Endpoint !== undefined,
    // Since SDK 3.729 every request carries a CRC32 checksum by default, which several
    // S3-compatible servers reject; checksums are sent and checked only where S3 requires them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // Retries are ours (core/storage/s3_retry.ts, one policy for every request of every job): the SDK's
    // own three attempts under ours made twelve.
    maxAttempts: 1,
    logger: sdkLogger(log),
    requestHandler: new NodeHttpHandler({
      httpAgent: { keepAlive: true, maxSockets },
      httpsAgent: { keepAlive: true, maxSockets },
      connectionTimeout: timeouts.connectMs,
      // A backstop: every request of ours carries its own deadline (core/storage/s3_request.ts). Without
      // throwOnRequestTimeout the SDK only logs that this one passed.
      requestTimeout: timeouts.dataMs,
      throwOnRequestTimeout: true,
    }),
  });
}

/**
 * The SDK's warnings, in the run's log rather than on the console; without the one it writes
 * whenever a request with a streamed body (an upload part) fails: "non-retryable" is the SDK's
 * view, and the retry policy sends the part again from its buffer (core/storage/s3_upload.ts). Its
 * `error` is the logger middleware reporting every failed command, a HEAD's expected 404
 * included: the caller reports the failures that matter (core/storage/s3_request.ts), so it is dropped.
 */
function sdkLogger(log: Logger | undefined) {
  const warn = (...content: unknown[]) => {
    const text = content.map(sdkLogText).join(" ");
    if (text.includes("non-retryable streaming request")) return;
    if (log) log.warn(`AWS SDK: ${text}`);
    else console.warn(text);
  };
  return { debug: () => {}, info: () => {}, warn, error: () => {} };
}

/** The SDK hands its logger errors and plain objects too; String() made those "[object Object]". */
function sdkLogText(item: unknown): string {
  if (typeof item === "string") return item;
  if (item instanceof Error) return errorMessage(item);
  try {
    return JSON.stringify(item) ?? String(item);
  } catch {
    return String(item);
  }
}
