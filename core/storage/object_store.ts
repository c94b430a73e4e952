import { resolve } from "node:path";
import { Readable } from "node:stream";
import { EtlError, UsageError } from "../errors";

/** What a store knows about one object without reading it. */
export interface ObjectInfo {
  size: number;
  /** S3's ETag without quotes; for local files the hex MD5 of the content, which is S3's single-part ETag. */
  etag: string;
  metadata: Record<string, string>;
}

/** A bucket or a local directory. Keys are relative paths with "/" separators. */
export interface ObjectStore {
  /** s3://bucket or file:///absolute/dir, for logs and errors. */
  readonly url: string;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Opens the object for reading; throws ObjectNotFoundError when the key does not exist. */
  read(key: string): Promise<ObjectBody>;
  /** Streams `body` to `key`, replacing what is there only once the whole body has arrived. */
  write(key: string, body: Readable, options: WriteOptions): Promise<void>;
  /** Whether the bucket or directory exists. */
  exists(): Promise<boolean>;
  /**
   * Every object whose key starts with `prefix` (plain string match, as S3's ListObjectsV2), read
   * page by page: S3 yields them in key order, a directory in walk order.
   */
  list(prefix: string): AsyncIterable<ListedObject>;
  /**
   * One level under `prefix`, as ListObjectsV2 with Delimiter "/" gives it: the objects directly
   * under it, and once each the sub-prefixes (`<prefix>a/`) that hold the rest, so a caller can
   * list those in parallel. Only S3 has it: a directory's walk is local and needs no splitting.
   */
  listLevel?(prefix: string): AsyncIterable<ListedObject | ListedPrefix>;
  /** The multipart uploads under `prefix` that were started and neither completed nor aborted. Only S3 has them. */
  listMultipartUploads?(prefix: string): AsyncIterable<MultipartUpload>;
  /**
   * Aborts the incomplete multipart uploads under `prefix` that `isAbandoned` says a killed run
   * left, and returns how many it aborted. Never one of a write this process has in flight (the
   * predicate cannot tell this run's uploads from a dead run's of the same key). Only S3 has it.
   */
  abortIncompleteUploads?(prefix: string, isAbandoned: (upload: MultipartUpload) => Promise<boolean>): Promise<number>;
  /** Removes `key`; removing a key that is not there is not an error (S3's DeleteObject). */
  delete(key: string): Promise<void>;
  /**
   * Copies inside the storage service when `source` lives there too (S3 to S3 on one endpoint),
   * returning its size and the new object's ETag; returns undefined when it cannot, and the caller streams
   * instead. Throws ObjectNotFoundError when the source is missing.
   */
  copyFrom?(source: ObjectStore, sourceKey: string, key: string, options: CopyOptions): Promise<{ size: number; etag: string } | undefined>;
  /**
   * Removes temp files of writes under `prefix` whose writers are gone (a killed run's), as
   * `isLive(owner)` tells; returns how many. Only stores that write through temp files have it.
   */
  removeAbandonedPartials?(prefix: string, isLive: (owner: string) => Promise<boolean>): Promise<number>;
  /** The object's path on this machine, for a store that is a local directory: readers (DuckDB) read it in place. */
  localPath?(key: string): string;
}

export interface ObjectBody {
  body: Readable;
  size: number;
  etag: string;
}

export interface ListedObject {
  key: string;
  size: number;
  /** S3's ETag; null where a listing cannot know it cheaply (a local file's MD5). */
  etag: string | null;
  /** S3's LastModified (when the object was written, to the second); a file's mtime. */
  lastModified: Date;
}

/** A sub-prefix that listLevel found, ending in "/". */
export interface ListedPrefix {
  prefix: string;
}

/** A multipart upload started and not yet completed or aborted: its parts are stored, and billed, until then. */
export interface MultipartUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface WriteOptions {
  size: number;
  metadata?: Record<string, string>;
  contentType?: string;
}

export interface CopyOptions {
  /** When unknown, the store asks the source (a server-side copy must know it under or over 5 GiB). */
  size: number | undefined;
  metadata?: Record<string, string>;
  contentType?: string;
}

/** Destination metadata naming the source ETag, so a multipart copy (whose ETag differs) is still known identical. */
export const SOURCE_ETAG_METADATA = "etl-source-etag";

/**
 * Copies one object between any two stores: server-side where possible, else streamed with
 * bounded memory. The copy records the source ETag (when known) in SOURCE_ETAG_METADATA.
 * Returns the size and the ETag of what was copied.
 */
export async function copyObject(
  source: ObjectStore,
  sourceKey: string,
  destination: ObjectStore,
  key: string,
  options: { size?: number; sourceEtag?: string; contentType?: string },
): Promise<{ size: number; etag: string }> {
  const metadata = (etag: string | undefined) => (etag ? { [SOURCE_ETAG_METADATA]: etag } : undefined);
  const copied = await destination.copyFrom?.(source, sourceKey, key, { size: options.size, metadata: metadata(options.sourceEtag), contentType: options.contentType });
  if (copied) return { size: copied.size, etag: options.sourceEtag ?? copied.etag };
  const object = await source.read(sourceKey);
  await destination.write(key, object.body, { size: object.size, metadata: metadata(object.etag), contentType: options.contentType });
  return { size: object.size, etag: object.etag };
}

export class ObjectNotFoundError extends EtlError {
  constructor(readonly storeUrl: string, readonly key: string) {
    super("failed", `object not found: ${storeUrl}/${key}`);
    this.name = "ObjectNotFoundError";
  }
}

export type Location = { kind: "s3"; bucket: string } | { kind: "file"; dir: string };

// S3 bucket naming rules: 3 to 63 characters, lower-case letters, digits, dots and hyphens,
// starting and ending with a letter or digit.
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses a bucket argument: `name` or `s3://name` for S3, `file:///abs/path` or `file:relative/path`
 * for a local directory. Throws a plain Error whose message the argument parser puts after the flag.
 */
export function parseLocation(text: string, cwd = process.cwd()): Location {
  if (text.startsWith("file:")) {
    let path: string;
    if (text.startsWith("file:///")) path = decodeURIComponent(text.slice("file://".length));
    else if (text.startsWith("file://")) throw new Error(`"${text}" names a host; use file:///absolute/path or file:relative/path`);
    else path = text.slice("file:".length);
    if (path === "") throw new Error(`"${text}" has no path`);
    return { kind: "file", dir: resolve(cwd, path) };
  }
  const bucket = text.startsWith("s3://") ? text.slice("s3://".length).replace(/\/$/, "") : text;
  if (bucket.includes("/")) throw new Error(`"${text}" names a key prefix; give the bucket alone (s3://${bucket.split("/")[0]})`);
  if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) {
    throw new Error(`"${text}" is neither an S3 bucket name (3-63 of a-z 0-9 . -) nor file:///path or file:relative/path`);
  }
  return { kind: "s3", bucket };
}

/** Writes a small object held in memory (a manifest, a page of records) whole. */
export function writeBytes(store: ObjectStore, key: string, body: Uint8Array, contentType: string): Promise<void> {
  return store.write(key, Readable.from([body]), { size: body.length, contentType });
}

/** Reads a small object (a manifest, a record) whole. */
export async function readBytes(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await store.read(key)).body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Whether a parsed argument value is a Location (arg.location's output). */
export function isLocation(value: unknown): value is Location {
  const kind = (value as { kind?: unknown } | null)?.kind;
  return typeof value === "object" && (kind === "s3" || kind === "file");
}

export function locationUrl(location: Location): string {
  return location.kind === "s3" ? `s3://${location.bucket}` : `file://${location.dir}`;
}

/** A location as a metric's `bucket` label: the bucket's name, or file:///dir for a directory. */
export function locationLabel(location: Location): string {
  return location.kind === "s3" ? location.bucket : locationUrl(location);
}

/**
 * Checks that the bucket or directory a flag named exists: a usage error naming `flag` when it
 * does not. A burst of 503s at start is the S3 request's to retry (core/storage/s3_retry.ts).
 */
export async function requireExists(store: ObjectStore, flag: string): Promise<void> {
  if (!(await store.exists())) throw new UsageError(`${flag} ${store.url} does not exist`);
}
