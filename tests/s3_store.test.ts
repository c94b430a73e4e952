import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, test } from "bun:test";
import { ObjectStores } from "../core/object_stores";
import { copyObject } from "../core/object_store";
import { S3Store } from "../core/s3_store";
import { createBucket, getObjectBytes, putObject, s3 } from "./harness/fixtures";

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
});
