import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import type {
  CompleteMultipartUploadCommandOutput,
  CopyObjectCommandOutput,
  CreateMultipartUploadCommandOutput,
  GetObjectCommandOutput,
  HeadObjectCommandOutput,
  ListMultipartUploadsCommandOutput,
  ListObjectsV2CommandOutput,
  UploadPartCopyCommandOutput,
} from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { mapBounded } from "../executor";
import { uploadStream, type SendS3 } from "./s3_upload";
import { S3RequestError, s3Timeouts, sendS3, withIdleTimeout, type S3Timeouts } from "./s3_request";
import { S3RetryPolicy } from "./s3_retry";
import {
  ObjectNotFoundError,
  type CopyOptions,
  type ListedObject,
  type ListedPrefix,
  type MultipartUpload,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type WriteOptions,
} from "./object_store";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface S3StoreOptions {
  /** Objects above this size are copied with UploadPartCopy; S3 refuses CopyObject above 5 GiB. */
  multipartCopyThreshold?: number;
  /** Part size for multipart copies; S3 allows 5 MiB to 5 GiB and at most 10,000 parts. */
  copyPartSize?: number;
  /** Keys per ListObjectsV2 page (uploads per ListMultipartUploads page); S3's maximum and default is 1000. */
  listPageSize?: number;
  timeouts?: S3Timeouts;
  /** Shared by the stores of one client (ObjectStores), so they share its retry budget; a policy of its own when absent. */
  retry?: S3RetryPolicy;
}

/**
 * One bucket on the S3 endpoint the client points at. Every request has a deadline
 * (core/storage/s3_request.ts) and is retried by the one policy (core/storage/s3_retry.ts): a GET until its
 * headers (a body that breaks off later is its reader's to read again), an upload part from its
 * buffer. Every request this makes can be sent twice: CopyObject and UploadPartCopy copy the same
 * bytes again; a CreateMultipartUpload whose answer was lost leaves an empty upload (S3's
 * AbortIncompleteMultipartUpload lifecycle rule removes it); a CompleteMultipartUpload whose
 * answer was lost is answered NoSuchUpload the second time, and the object's ETag tells whether
 * it is this upload's (core/storage/s3_upload.ts).
 */
export class S3Store implements ObjectStore {
  readonly url: string;
  private readonly multipartCopyThreshold: number;
  private readonly copyPartSize: number;
  private readonly listPageSize: number;
  private readonly timeouts: S3Timeouts;
  private readonly retry: S3RetryPolicy;

  constructor(
    readonly bucket: string,
    private readonly client: S3Client,
    options: S3StoreOptions = {},
  ) {
    this.url = `s3://${bucket}`;
    this.multipartCopyThreshold = options.multipartCopyThreshold ?? 5 * GiB;
    // 512 MiB parts keep a 5 TiB object (S3's maximum) under the 10,000-part limit.
    this.copyPartSize = options.copyPartSize ?? 512 * MiB;
    this.listPageSize = options.listPageSize ?? 1000;
    this.timeouts = options.timeouts ?? s3Timeouts();
    this.retry = options.retry ?? new S3RetryPolicy();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.send<HeadObjectCommandOutput>(() => new HeadObjectCommand({ Bucket: this.bucket, Key: key }), "HeadObject", key, this.timeouts.metadataMs);
      return { size: out.ContentLength ?? 0, etag: unquote(out.ETag), metadata: out.Metadata ?? {} };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(key: string): Promise<ObjectBody> {
    try {
      const out = await this.send<GetObjectCommandOutput>(() => new GetObjectCommand({ Bucket: this.bucket, Key: key }), "GetObject", key, this.timeouts.dataMs);
      const body = withIdleTimeout(out.Body as Readable, this.timeouts.idleMs, { name: "GetObject", bucket: this.bucket, key });
      return { body, size: out.ContentLength ?? 0, etag: unquote(out.ETag) };
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(this.url, key);
      throw error;
    }
  }

  /**
   * Whether the bucket exists. Asked with a one-key listing, not HeadBucket: a HEAD answer has no
   * body, so it cannot tell rejected credentials (InvalidAccessKeyId) from a missing permission.
   */
  async exists(): Promise<boolean> {
    try {
      await this.send(() => new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }), "ListObjectsV2", undefined, this.timeouts.metadataMs);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    for await (const page of this.listPages(prefix, undefined)) yield* page.objects;
  }

  async *listLevel(prefix: string): AsyncIterable<ListedObject | ListedPrefix> {
    for await (const page of this.listPages(prefix, "/")) {
      yield* page.objects;
      yield* page.prefixes;
    }
  }

  async *listMultipartUploads(prefix: string): AsyncIterable<MultipartUpload> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.send<ListMultipartUploadsCommandOutput>(
        () => new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker, MaxUploads: this.listPageSize }),
        "ListMultipartUploads",
        prefix,
        this.timeouts.metadataMs,
      );
      for (const upload of page.Uploads ?? []) yield { key: upload.Key!, uploadId: upload.UploadId!, initiated: upload.Initiated! };
      if (!page.IsTruncated) return;
      // A truncated page without its markers would start the listing over, forever.
      if (!page.NextKeyMarker) throw new Error(`${this.url}: ListMultipartUploads said more uploads follow ${prefix ? `under ${prefix} ` : ""}but gave no NextKeyMarker`);
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /**
   * Lists the uploads under `prefix`, then aborts those `isAbandoned` picks, one at a time (a
   * killed run leaves one per object it was writing). An upload already gone (NoSuchUpload, as
   * when an abort's answer was lost and it is sent again) is not counted.
   */
  async abortIncompleteUploads(prefix: string, isAbandoned: (upload: MultipartUpload) => Promise<boolean>): Promise<number> {
    const abandoned: MultipartUpload[] = [];
    for await (const upload of this.listMultipartUploads(prefix)) if (!uploading.has(`${this.bucket}/${upload.key}`) && (await isAbandoned(upload))) abandoned.push(upload);
    let aborted = 0;
    for (const { key, uploadId } of abandoned) {
      try {
        await this.send(() => new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), "AbortMultipartUpload", key, this.timeouts.metadataMs);
        aborted++;
      } catch (error) {
        if ((error as S3RequestError).s3Code !== "NoSuchUpload") throw error;
      }
    }
    return aborted;
  }

  /** ListObjectsV2 pages under `prefix`, following continuation tokens; with a delimiter, its common prefixes too. */
  private async *listPages(prefix: string, delimiter: string | undefined): AsyncIterable<{ objects: ListedObject[]; prefixes: ListedPrefix[] }> {
    let token: string | undefined;
    do {
      const page = await this.send<ListObjectsV2CommandOutput>(
        () => new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: this.listPageSize }),
        "ListObjectsV2",
        prefix,
        this.timeouts.metadataMs,
      );
      yield {
        objects: (page.Contents ?? []).map((object) => ({ key: object.Key!, size: object.Size ?? 0, etag: unquote(object.ETag), lastModified: object.LastModified! })),
        prefixes: (page.CommonPrefixes ?? []).map((common) => ({ prefix: common.Prefix! })),
      };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.send(() => new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), "DeleteObject", key, this.timeouts.metadataMs);
  }

  /** Streams `body` to `key` with bounded memory (core/storage/s3_upload.ts); nothing appears there unless all of it arrived. */
  async write(key: string, body: Readable, options: WriteOptions): Promise<void> {
    const send: SendS3 = (command, operation, timeoutMs, options) => this.send(command, operation, key, timeoutMs, options);
    await whileUploading(`${this.bucket}/${key}`, () => uploadStream(send, { bucket: this.bucket, key }, body, options, this.timeouts));
  }

  /**
   * Server-side copy from a bucket on the same endpoint (all S3Stores of a run share one client):
   * the bytes never leave S3. One CopyObject up to 5 GiB; its 404 NoSuchKey says the source is
   * missing, so no HEAD comes first when the size is known.
   */
  async copyFrom(source: ObjectStore, sourceKey: string, key: string, options: CopyOptions): Promise<{ size: number; etag: string } | undefined> {
    if (!(source instanceof S3Store) || source.client !== this.client) return undefined;
    const copySource = `${source.bucket}/${encodeKey(sourceKey)}`;
    const { metadata, contentType } = options;
    const size = options.size ?? (await source.head(sourceKey))?.size;
    if (size === undefined) throw new ObjectNotFoundError(source.url, sourceKey);
    if (size <= this.multipartCopyThreshold) {
      try {
        const out = await this.send<CopyObjectCommandOutput>(
          () => new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: copySource, MetadataDirective: "REPLACE", Metadata: metadata, ContentType: contentType }),
          "CopyObject",
          key,
          this.timeouts.copyMs(size),
        );
        return { size, etag: unquote(out.CopyObjectResult?.ETag) };
      } catch (error) {
        if ((error as S3RequestError).s3Code === "NoSuchKey") throw new ObjectNotFoundError(source.url, sourceKey);
        throw error;
      }
    }
    return whileUploading(`${this.bucket}/${key}`, () => this.copyInParts(copySource, key, size, options));
  }

  /** A server-side copy over the CopyObject limit: UploadPartCopy, four parts at a time. */
  private async copyInParts(copySource: string, key: string, size: number, { metadata, contentType }: CopyOptions): Promise<{ size: number; etag: string }> {
    const { UploadId } = await this.send<CreateMultipartUploadCommandOutput>(
      () => new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: metadata, ContentType: contentType }),
      "CreateMultipartUpload",
      key,
      this.timeouts.metadataMs,
    );
    try {
      const ranges: Array<[number, number]> = [];
      for (let start = 0; start < size; start += this.copyPartSize) ranges.push([start, Math.min(start + this.copyPartSize, size) - 1]);
      // Four parts at a time: each is a server-side operation, so this costs S3 work, not our memory.
      const parts = await mapBounded(ranges, 4, async ([first, last], index) => {
        const out = await this.send<UploadPartCopyCommandOutput>(
          () => new UploadPartCopyCommand({ Bucket: this.bucket, Key: key, UploadId, PartNumber: index + 1, CopySource: copySource, CopySourceRange: `bytes=${first}-${last}` }),
          "UploadPartCopy",
          key,
          this.timeouts.copyMs(last - first + 1),
        );
        return { PartNumber: index + 1, ETag: out.CopyPartResult?.ETag };
      });
      const out = await this.send<CompleteMultipartUploadCommandOutput>(
        () => new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
        "CompleteMultipartUpload",
        key,
        // S3 assembles the parts before it answers, as after a streamed upload (core/storage/s3_upload.ts).
        this.timeouts.copyMs(size),
      );
      return { size, etag: unquote(out.ETag) };
    } catch (error) {
      // Once: the copy has failed already, and a dead endpoint must not hold the failure back 4 deadlines more.
      await this.send(() => new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId }), "AbortMultipartUpload", key, this.timeouts.metadataMs, { once: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Sends the command `command()` builds, anew for each attempt; `once` sends it without retries. */
  private send<T = unknown>(command: () => object, name: string, key: string | undefined, timeoutMs: number, options: { once?: boolean } = {}): Promise<T> {
    const operation = { name, bucket: this.bucket, key };
    const attempt = () => sendS3<T>(this.client, command(), operation, timeoutMs);
    return options.once ? attempt() : this.retry.send(operation, attempt);
  }
}

/**
 * The `bucket/key`s that writes and copies of this process are uploading to, with how many:
 * abortIncompleteUploads leaves their uploads alone. Held by key, and set before
 * CreateMultipartUpload is sent: its upload exists on S3 before its answer names it. One map for
 * the process, not one per store: a job's several stores of one bucket, and runs in one process
 * (tests), each see the others' writes.
 */
const uploading = new Map<string, number>();

async function whileUploading<T>(target: string, upload: () => Promise<T>): Promise<T> {
  uploading.set(target, (uploading.get(target) ?? 0) + 1);
  try {
    return await upload();
  } finally {
    const left = uploading.get(target)! - 1;
    if (left) uploading.set(target, left);
    else uploading.delete(target);
  }
}

/** CopySource is "bucket/key" with the key URL-encoded, "/" kept as the separator. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

function isNotFound(error: unknown): boolean {
  return error instanceof S3RequestError && error.status === 404;
}
