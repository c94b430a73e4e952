import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Readable } from "node:stream";
import { mapBounded } from "./executor";
import { ObjectNotFoundError, type CopyOptions, type ListedObject, type ObjectBody, type ObjectInfo, type ObjectStore, type WriteOptions } from "./object_store";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface S3StoreOptions {
  /** Objects above this size are copied with UploadPartCopy; S3 refuses CopyObject above 5 GiB. */
  multipartCopyThreshold?: number;
  /** Part size for multipart copies; S3 allows 5 MiB to 5 GiB and at most 10,000 parts. */
  copyPartSize?: number;
  /** Keys per ListObjectsV2 page; S3's maximum and default is 1000. */
  listPageSize?: number;
}

/** One bucket on the S3 endpoint the client points at. */
export class S3Store implements ObjectStore {
  readonly url: string;
  private readonly multipartCopyThreshold: number;
  private readonly copyPartSize: number;
  private readonly listPageSize: number;

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
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, etag: unquote(out.ETag), metadata: out.Metadata ?? {} };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async read(key: string): Promise<ObjectBody> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { body: out.Body as Readable, size: out.ContentLength ?? 0, etag: unquote(out.ETag) };
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(this.url, key);
      throw error;
    }
  }

  async exists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: this.listPageSize }),
      );
      for (const object of page.Contents ?? []) yield { key: object.Key!, size: object.Size ?? 0, etag: unquote(object.ETag) };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<void> {
    // lib-storage buffers at most queueSize parts of partSize at a time, so memory stays
    // bounded (2 x 8 MiB per copy in flight) whatever the object's size; small bodies go up
    // as one PutObject.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, Metadata: options.metadata, ContentType: options.contentType },
      partSize: 8 * MiB,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  /**
   * Server-side copy from a bucket on the same endpoint (all S3Stores of a run share one client):
   * the bytes never leave S3.
   */
  async copyFrom(source: ObjectStore, sourceKey: string, key: string, options: CopyOptions): Promise<{ size: number; etag: string } | undefined> {
    if (!(source instanceof S3Store) || source.client !== this.client) return undefined;
    const copySource = `${source.bucket}/${encodeKey(sourceKey)}`;
    const { metadata, contentType } = options;
    const size = options.size ?? (await source.head(sourceKey))?.size;
    if (size === undefined) throw new ObjectNotFoundError(source.url, sourceKey);
    if (size <= this.multipartCopyThreshold) {
      try {
        const out = await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: key,
            CopySource: copySource,
            MetadataDirective: "REPLACE",
            Metadata: metadata,
            ContentType: contentType,
          }),
        );
        return { size, etag: unquote(out.CopyObjectResult?.ETag) };
      } catch (error) {
        if (isNotFound(error) && (error as { name?: string }).name === "NoSuchKey") throw new ObjectNotFoundError(source.url, sourceKey);
        throw error;
      }
    }
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: metadata, ContentType: contentType }),
    );
    try {
      const ranges: Array<[number, number]> = [];
      for (let start = 0; start < size; start += this.copyPartSize) ranges.push([start, Math.min(start + this.copyPartSize, size) - 1]);
      // Four parts at a time: each is a server-side operation, so this costs S3 work, not our memory.
      const parts = await mapBounded(ranges, 4, async ([first, last], index) => {
        const out = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId,
            PartNumber: index + 1,
            CopySource: copySource,
            CopySourceRange: `bytes=${first}-${last}`,
          }),
        );
        return { PartNumber: index + 1, ETag: out.CopyPartResult?.ETag };
      });
      const out = await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
      );
      return { size, etag: unquote(out.ETag) };
    } catch (error) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId })).catch(() => undefined);
      throw error;
    }
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
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}
