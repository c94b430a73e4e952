/**
 * core/storage/abandoned_uploads.ts and S3Store.abortIncompleteUploads on moto: the uploads the predicate
 * picks are aborted, never one a write of this process has in flight; a role that may not list
 * them (403 through the fault proxy) is a warning, not a failed run.
 */
import { CreateMultipartUploadCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { abortAbandonedUploads } from "../../../core/storage/abandoned_uploads";
import { createLogger } from "../../../core/log";
import { ObjectStores } from "../../../core/storage/object_stores";
import { startFaultProxy } from "../../harness/fault_proxy";
import { s3 } from "../../harness/fixtures";
import { createLake, type Lake } from "../../harness/lakes";

const MiB = 1024 * 1024;

let lake: Lake;
beforeEach(async () => {
  lake = await createLake("s3");
});
afterEach(() => lake.dispose());

const lines: string[] = [];
const log = createLogger({ format: "json", level: "info", write: (line) => void lines.push(line) });
const openUpload = (key: string) => s3().send(new CreateMultipartUploadCommand({ Bucket: lake.arg, Key: key }));

describe("aborting abandoned uploads", () => {
  test("aborts what the predicate picks under the prefix, never the upload of a write this process has in flight", async () => {
    const store = await lake.store();
    for (const key of ["run/a/dead.bin", "run/b/kept.bin", "elsewhere/dead.bin"]) await openUpload(key);
    // A write of this process, in flight: 9 MiB of 16 sent, so its first part is up.
    const body = new PassThrough();
    const writing = store.write("run/a/writing.bin", body, { size: 16 * MiB });
    body.write(randomBytes(9 * MiB));
    const deadline = Date.now() + 30_000;
    while (!(await lake.uploads("run/a/writing.bin")).length) {
      if (Date.now() > deadline) throw new Error("the write never started its upload");
      await Bun.sleep(20);
    }

    const asked: string[] = [];
    const aborted = await abortAbandonedUploads(store, "run/", async (upload) => (asked.push(upload.key), upload.key.startsWith("run/a/")), log);
    expect(aborted).toBe(1);
    // The write's own upload is not even offered to the predicate.
    expect(asked.sort()).toEqual(["run/a/dead.bin", "run/b/kept.bin"]);
    expect(await lake.uploads()).toEqual(["elsewhere/dead.bin", "run/a/writing.bin", "run/b/kept.bin"]);

    body.end(randomBytes(7 * MiB));
    await writing;
    expect((await lake.read("run/a/writing.bin")).length).toBe(16 * MiB);
    expect(await abortAbandonedUploads(store, "run/", async () => true, log)).toBe(1);
    expect(await lake.uploads()).toEqual(["elsewhere/dead.bin"]);
  }, 60_000);

  test("a listing S3 denies (no s3:ListBucketMultipartUploads) is a warning naming the action; the uploads stay", async () => {
    await openUpload("run/a/dead.bin");
    const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const stores = new ObjectStores({ s3Endpoint: proxy.url, awsRegion: process.env.AWS_REGION ?? "us-east-1", log });
    try {
      const store = await stores.open({ kind: "s3", bucket: lake.arg });
      proxy.failNext(1, 403, { code: "AccessDenied", when: "ListMultipartUploads" });
      lines.length = 0;
      expect(await abortAbandonedUploads(store, "run/", async () => true, log)).toBe(0);
      expect(proxy.pendingFaults()).toBe(0);
      const warning = lines.map((line) => JSON.parse(line)).find((entry) => entry.msg.startsWith("could not abort the multipart uploads"));
      expect(warning).toMatchObject({ prefix: `s3://${lake.arg}/run/`, error: expect.stringContaining("s3:ListBucketMultipartUploads") });
      expect(await lake.uploads()).toEqual(["run/a/dead.bin"]);
    } finally {
      await stores.close();
      await proxy.stop();
    }
  });
});
