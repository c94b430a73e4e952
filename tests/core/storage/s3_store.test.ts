import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import { S3NetworkError, withIdleTimeout } from "../../../core/storage/s3_request";
import { isTransientError } from "../../../core/http/transient";
import { freePort } from "../../harness/processes";
import { describe, expect, test } from "bun:test";
import { ObjectStores } from "../../../core/storage/object_stores";
import { copyObject } from "../../../core/storage/object_store";
import { S3Store } from "../../../core/storage/s3_store";
import { createBucket, getObjectBytes, listKeys, putObject, s3 } from "../../harness/fixtures";

const MiB = 1024 * 1024;

describe("S3Store against the S3 server", () => {
  test("copies above the threshold with UploadPartCopy, byte for byte, keeping the source ETag in metadata", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    const body = new Uint8Array(12 * MiB + 3).map((_, i) => (i * 7) % 256);
    const key = "multi part/ünï+code #1.bin";
    await putObject(source, key, body);
    // A 5 MiB threshold and part size stand in for S3's 5 GiB limit; the code path is the same.
    const client: S3Client = s3();
    const options = { multipartCopyThreshold: 5 * MiB, copyPartSize: 5 * MiB };
    const from = new S3Store(source, client, options);
    const to = new S3Store(destination, client, options);
    const info = (await from.head(key))!;

    expect(await to.copyFrom(from, key, `copy/${key}`, { size: info.size, metadata: { "etl-source-etag": info.etag } })).toMatchObject({ size: body.length, etag: expect.stringMatching(/-3$/) });

    expect(Buffer.from(await getObjectBytes(destination, `copy/${key}`)).equals(Buffer.from(body))).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: destination, Key: `copy/${key}` }));
    expect(head.ETag).toMatch(/-3"$/); // three parts: 5 + 5 + 2 MiB
    expect(head.Metadata?.["etl-source-etag"]).toBe(info.etag);
  });

  test("head and read tell a missing key from a present one; exists() tells a missing bucket", async () => {
    const bucket = await createBucket();
    const stores = new ObjectStores({ s3Endpoint: process.env.S3_ENDPOINT, awsRegion: "us-east-1" });
    try {
      const store = await stores.open({ kind: "s3", bucket });
      expect(await store.exists()).toBe(true);
      expect(await store.head("nope")).toBeUndefined();
      await expect(store.read("nope")).rejects.toThrow(`object not found: s3://${bucket}/nope`);
      expect(await (await stores.open({ kind: "s3", bucket: "bucket-that-is-not-there" })).exists()).toBe(false);
    } finally {
      await stores.close();
    }
  });

  test("server-side copy is used only between stores on the same client; other pairs stream", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    await putObject(source, "x.txt", "stream me");
    const sameClient = new S3Store(destination, s3());
    const otherClient = new S3Store(source, new S3Client({ endpoint: process.env.S3_ENDPOINT, region: "us-east-1", forcePathStyle: true }));
    expect(await sameClient.copyFrom(otherClient, "x.txt", "y.txt", { size: 9 })).toBeUndefined();
    await copyObject(otherClient, "x.txt", sameClient, "y.txt", { size: 9 });
    expect(Buffer.from(await getObjectBytes(destination, "y.txt")).toString()).toBe("stream me");
  });

  test("write streams any size byte for byte: one PutObject up to a part, multipart above, metadata kept", async () => {
    const bucket = await createBucket();
    const store = new S3Store(bucket, s3());
    for (const size of [0, 1, 8 * MiB, 8 * MiB + 1, 20 * MiB + 3]) {
      const body = new Uint8Array(size).map((_, i) => (i * 13 + size) % 256);
      // Uneven chunks, as a file or an HTTP body delivers them.
      const chunks = [];
      for (let i = 0; i < size; i += 700_001) chunks.push(Buffer.from(body.subarray(i, i + 700_001)));
      await store.write(`w/${size}`, Readable.from(chunks), { size, metadata: { "etl-source-etag": "abc" }, contentType: "application/pdf" });
      expect(Buffer.from(await getObjectBytes(bucket, `w/${size}`)).equals(Buffer.from(body))).toBe(true);
      const head = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: `w/${size}` }));
      expect([head.Metadata?.["etl-source-etag"], head.ContentType]).toEqual(["abc", "application/pdf"]);
      expect(head.ETag!.includes("-")).toBe(size > 8 * MiB);
    }
  });

  test("a body shorter or longer than announced, or one that fails midway, leaves no object and no open upload", async () => {
    const bucket = await createBucket();
    const store = new S3Store(bucket, s3());
    const chunk = Buffer.alloc(3 * MiB, 1);
    async function* failing() {
      yield chunk;
      yield chunk;
      yield chunk;
      throw new Error("source read failed");
    }
    await expect(store.write("short", Readable.from([chunk, chunk, chunk, chunk]), { size: 20 * MiB })).rejects.toThrow("the body ended after 12582912 of 20971520 bytes");
    await expect(store.write("long", Readable.from([chunk, chunk, chunk, chunk]), { size: 10 * MiB })).rejects.toThrow("longer than the 10485760 bytes announced");
    await expect(store.write("broken", Readable.from(failing()), { size: 20 * MiB })).rejects.toThrow("source read failed");
    expect(await listKeys(bucket)).toEqual([]);
    expect((await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});

describe("requests that never reach S3", () => {
  test("a host name that does not resolve, or a connection refused, fails naming the operation and the bucket, and is transient", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    for (const [endpoint, says] of [
      ["http://no-such-host.invalid:9", "the endpoint's host name does not resolve (check S3_ENDPOINT) (getaddrinfo ENOTFOUND no-such-host.invalid)"],
      [closed, `the endpoint refused the connection (check S3_ENDPOINT) (connect ECONNREFUSED ${closed.slice("http://".length)})`],
    ] as const) {
      // Two sends, 1 ms apart: the policy's retries are core/storage/s3_retry.ts's to test.
      const stores = new ObjectStores({ s3Endpoint: endpoint, awsRegion: "us-east-1", s3Retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } });
      try {
        const store = await stores.open({ kind: "s3", bucket: "attachments" });
        const error = await store.exists().then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(S3NetworkError);
        expect((error as Error).message).toBe(`S3 ListObjectsV2 s3://attachments failed: ${says}`);
        expect(isTransientError(error)).toBe(true);
        await expect(store.head("a/b.pdf")).rejects.toThrow(`S3 HeadObject s3://attachments/a/b.pdf failed: ${says}`);
      } finally {
        await stores.close();
      }
    }
  });
});

describe("withIdleTimeout", () => {
  test("a body that stops sending while its reader waits fails transiently; a slow reader does not", async () => {
    const stalled = new Readable({ read() {} });
    stalled.push(Buffer.from("first bytes"));
    const watched = withIdleTimeout(stalled, 100, { name: "GetObject", bucket: "b", key: "k" });
    const read = (async () => {
      for await (const _ of watched);
    })();
    await expect(read).rejects.toThrow("S3 GetObject s3://b/k stalled: no data for 100 ms");

    const steady = withIdleTimeout(Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), 100, { name: "GetObject", bucket: "b", key: "k" });
    let bytes = 0;
    for await (const c of steady) {
      await Bun.sleep(250); // the reader is slow, not the body
      bytes += (c as Buffer).length;
    }
    expect(bytes).toBe(20);
  });
});

