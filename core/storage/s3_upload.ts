import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CreateMultipartUploadCommandOutput,
  type HeadObjectCommandOutput,
  type UploadPartCommandOutput,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { streamed } from "./gc_pacer";
import type { WriteOptions } from "./object_store";
import type { S3Timeouts } from "./s3_request";

const MiB = 1024 * 1024;
/** Part size of streamed uploads (S3 allows 5 MiB to 5 GiB, and at most MAX_PARTS parts). */
const PART_SIZE = 8 * MiB;
const MAX_PARTS = 10_000;
/** Parts uploading at once; one more buffer fills meanwhile. */
const PARTS_IN_FLIGHT = 2;

interface CompletedPart {
  PartNumber: number;
  ETag: string | undefined;
}

/**
 * Sends one request to S3 with its deadline and the retry policy (S3Store's send): `command`
 * builds it anew for each attempt, so a part's body stream is made again from its buffer.
 * `once` sends it without retries.
 */
export type SendS3 = <T>(command: () => object, operation: string, timeoutMs: number, options?: { once?: boolean }) => Promise<T>;

/**
 * Streams `body` to one key: one PutObject when it fits one part, else a multipart upload. Parts
 * are copied into at most PARTS_IN_FLIGHT + 1 buffers, allocated once per write and reused, so a
 * copy holds about 3 x 8 MiB whatever the object's size. lib-storage, used before, concatenated a
 * new buffer per part (4 GiB of garbage for a 2 GiB object: 340 MiB peak RSS); 126-130 MiB with
 * this and the GC pacer. Each part goes up as a stream of views over its buffer: handed a whole
 * Buffer, Bun's node:http passes it to fetch, which copies it.
 *
 * The body must be exactly `options.size` bytes, else the write fails. A part (or the one
 * PutObject) that fails is sent again from its buffer by the retry policy; the body itself is
 * read once. On any failure the multipart upload is aborted: nothing appears at the key and no
 * parts are left to pay for.
 */
export async function uploadStream(send: SendS3, target: { bucket: string; key: string }, body: Readable, options: WriteOptions, timeouts: S3Timeouts): Promise<void> {
  const { bucket, key } = target;
  const { size, metadata, contentType } = options;
  // Parts grow past 8 MiB only for objects over 78 GiB (S3's 10,000-part limit).
  const bufferSize = Math.min(Math.max(PART_SIZE, Math.ceil(size / MAX_PARTS)), size);
  const free: Buffer[] = [];
  let allocated = 0;
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let failure: { error: unknown } | undefined;
  let uploadId: string | undefined;
  let part: Buffer | undefined;
  let filled = 0;
  let received = 0;

  const takeBuffer = async (): Promise<Buffer> => {
    while (free.length === 0 && allocated > PARTS_IN_FLIGHT) await Promise.race(inFlight);
    if (failure) throw failure.error;
    if (free.length > 0) return free.pop()!;
    allocated++;
    return Buffer.allocUnsafe(bufferSize);
  };
  const sendPart = async (buffer: Buffer, length: number): Promise<void> => {
    uploadId ??= (
      await send<CreateMultipartUploadCommandOutput>(
        () => new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata, ContentType: contentType }),
        "CreateMultipartUpload",
        timeouts.metadataMs,
      )
    ).UploadId;
    const PartNumber = parts.length + 1;
    parts.push({ PartNumber, ETag: undefined });
    const sent: Promise<void> = send<UploadPartCommandOutput>(
      () => new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: partBody(buffer, length), ContentLength: length }),
      "UploadPart",
      timeouts.dataMs,
    )
      .then((out) => void (parts[PartNumber - 1]!.ETag = out.ETag))
      .catch((error) => void (failure ??= { error }))
      .finally(() => {
        inFlight.delete(sent);
        free.push(buffer);
      });
    inFlight.add(sent);
  };

  try {
    for await (const item of body as AsyncIterable<unknown>) {
      // A stream may carry any Uint8Array (Bun.gzipSync's output is not a Buffer) or a string.
      // Anything else (the numbers of a Uint8Array handed over as the body itself) has no length,
      // which made `received` NaN: both size checks passed and an empty object was written.
      if (!(item instanceof Uint8Array) && typeof item !== "string") throw new TypeError(`s3://${bucket}/${key}: the body yielded a ${typeof item}, not bytes`);
      const chunk = typeof item === "string" ? Buffer.from(item) : item;
      received += chunk.length;
      if (received > size) throw new Error(`s3://${bucket}/${key}: the body is longer than the ${size} bytes announced`);
      streamed(chunk.length);
      for (let offset = 0; offset < chunk.length; ) {
        // A full part with more bytes after it is not the last one: it goes up now.
        if (part && filled === part.length) {
          await sendPart(part, filled);
          part = undefined;
          filled = 0;
        }
        part ??= await takeBuffer();
        const copied = Math.min(part.length - filled, chunk.length - offset);
        part.set(chunk.subarray(offset, offset + copied), filled);
        filled += copied;
        offset += copied;
      }
    }
    if (received < size) throw new Error(`s3://${bucket}/${key}: the body ended after ${received} of ${size} bytes`);
    if (uploadId === undefined) {
      const bytes = (part ?? Buffer.alloc(0)).subarray(0, filled);
      await send(() => new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, Metadata: metadata, ContentType: contentType }), "PutObject", timeouts.dataMs);
      return;
    }
    await sendPart(part!, filled);
    while (inFlight.size > 0) await Promise.race(inFlight);
    if (failure) throw failure.error;
    await completeUpload(send, target, uploadId!, parts, timeouts, size);
  } catch (error) {
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) {
      // Once: the write has failed already; retrying the clean-up would only hold the failure back.
      const abort = () => new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId });
      await send(abort, "AbortMultipartUpload", timeouts.metadataMs, { once: true }).catch(() => undefined);
    }
    throw error;
  }
}

/**
 * Completes the upload; S3 assembles the parts before it answers. A completion whose answer was
 * lost (a reset after S3 handled it) is answered NoSuchUpload when the policy sends it again,
 * though the object is whole: the key is HEADed then, and an object with the ETag S3 gives these
 * parts (the MD5 of their MD5s, then "-<parts>") is this write, done.
 */
async function completeUpload(send: SendS3, target: { bucket: string; key: string }, uploadId: string, parts: CompletedPart[], timeouts: S3Timeouts, size: number): Promise<void> {
  const { bucket, key } = target;
  try {
    await send(() => new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), "CompleteMultipartUpload", timeouts.copyMs(size));
  } catch (error) {
    if ((error as { s3Code?: string }).s3Code !== "NoSuchUpload") throw error;
    const head = await send<HeadObjectCommandOutput>(() => new HeadObjectCommand({ Bucket: bucket, Key: key }), "HeadObject", timeouts.metadataMs).catch(() => undefined);
    if (head?.ETag?.replaceAll('"', "") !== multipartEtag(parts) || head.ContentLength !== size) throw error;
  }
}

function multipartEtag(parts: CompletedPart[]): string {
  const md5 = createHash("md5");
  for (const part of parts) md5.update(Buffer.from((part.ETag ?? "").replaceAll('"', ""), "hex"));
  return `${md5.digest("hex")}-${parts.length}`;
}

/** A part's bytes as a stream of 1 MiB views of its buffer (nothing is copied here). */
function partBody(buffer: Buffer, length: number): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < length; offset += MiB) yield buffer.subarray(offset, Math.min(offset + MiB, length));
    })(),
    { objectMode: false },
  );
}
