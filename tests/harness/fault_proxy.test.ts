import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { startFaultProxy, type FaultProxy } from "./fault_proxy";
import { createBucket, listKeys, putObject } from "./fixtures";

const MiB = 1024 * 1024;

let proxy: FaultProxy;

afterEach(async () => {
  await proxy?.stop();
});

/** A client on the proxy with the job's settings and no retries, so each fault is seen once. */
function clientVia(p: FaultProxy, socketTimeout = 10_000): S3Client {
  return new S3Client({
    endpoint: p.url,
    region: process.env.AWS_REGION,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // socketTimeout, not requestTimeout: in @smithy/node-http-handler 4.14 requestTimeout only logs a
    // warning unless throwOnRequestTimeout is set, so against a stalled server it never gives up.
    requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true }, connectionTimeout: 2_000, socketTimeout }),
  });
}

/** Sends raw bytes and collects what comes back until the server closes or `waitMs` passes. */
async function rawExchange(url: string, bytes: string, waitMs: number): Promise<{ received: string; closed: boolean }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), "127.0.0.1");
  let received = "";
  let closed = false;
  socket.on("data", (d) => (received += d.toString("latin1")));
  socket.on("error", () => {});
  const done = new Promise<void>((resolve) => socket.on("close", () => ((closed = true), resolve())));
  socket.write(bytes);
  await Promise.race([done, Bun.sleep(waitMs)]);
  socket.destroy();
  return { received, closed };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("fault proxy in front of the S3 server", () => {
  test("forwards S3 calls and counts them, total and by method", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();

    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b c.txt", Body: "hello" }));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "a/b c.txt" }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b c.txt" }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));

    expect(head.ContentLength).toBe(5);
    expect(await got.Body!.transformToString()).toBe("hello");
    expect(listed.Contents?.map((o) => o.Key)).toEqual(["a/b c.txt"]);
    expect(proxy.requests).toEqual({ total: 4, byMethod: { PUT: 1, HEAD: 1, GET: 2 }, byOperation: { PutObject: 1, HeadObject: 1, GetObject: 1, ListObjectsV2: 1 } });
    proxy.resetCounts();
    expect(proxy.requests).toEqual({ total: 0, byMethod: {}, byOperation: {} });
    client.destroy();
  });

  test("forwards request bytes unchanged (Host, header case and order, chunked framing) and the answer unchanged", async () => {
    // A recording upstream: what arrives there must be exactly what the client sent.
    let arrived = "";
    const answer = "HTTP/1.1 200 OK\r\nX-Odd-Case: Kept\r\nContent-Length: 2\r\n\r\nok";
    const upstream = net.createServer((s) => s.on("data", (d) => ((arrived += d.toString("latin1")), arrived.endsWith("0\r\n\r\n") && s.end(answer))));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    try {
      proxy = await startFaultProxy(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
      const sent =
        "PUT /bucket/k%20ey?partNumber=1 HTTP/1.1\r\nHost: s3.example.test:9000\r\nx-amz-date: 20250101T000000Z\r\n" +
        "Authorization: AWS4-HMAC-SHA256 Credential=K/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc\r\n" +
        "X-Amz-Meta-MiXeD: v\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\n\r\n\n\r\n0\r\n\r\n";

      const { received } = await rawExchange(proxy.url, sent, 2_000);

      expect(arrived).toBe(sent);
      expect(received).toBe(answer);
      expect(proxy.requests.byMethod).toEqual({ PUT: 1 });
    } finally {
      upstream.close();
    }
  });

  test("holds back a body the upstream is not reading instead of buffering it", async () => {
    // An upstream that accepts and never reads: only kernel buffers (a few MiB each way) sit between
    // the client and it, so with backpressure most of a 64 MiB body must stay in the client.
    const upstream = net.createServer((s) => s.pause());
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const client = new net.Socket();
    try {
      proxy = await startFaultProxy(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
      await new Promise<void>((resolve) => client.connect(Number(new URL(proxy.url).port), "127.0.0.1", resolve));
      client.on("error", () => {});
      client.write(`PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * MiB}\r\n\r\n`);
      client.write(Buffer.alloc(64 * MiB, 1));
      await Bun.sleep(500);
      expect(client.writableLength).toBeGreaterThan(32 * MiB);
    } finally {
      client.destroy();
      upstream.close();
    }
  });

  test("failNext(3) answers three requests with 503 SlowDown, then forwards again", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();
    await putObject(bucket, "k", "v");

    proxy.failNext(3);
    const errors = [];
    for (let i = 0; i < 3; i++) errors.push(await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k" })).catch((e) => e));
    const after = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }));

    expect(errors.map((e) => [e.name, e.$metadata?.httpStatusCode])).toEqual(Array(3).fill(["SlowDown", 503]));
    expect(await after.Body!.transformToString()).toBe("v");
    expect(proxy.requests.total).toBe(4);
    client.destroy();
  });

  test("a failure can be limited to matching requests (CopyObject only) and given its own status and code", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();
    await putObject(bucket, "src", "v");

    proxy.failNext(1, 500, { when: (r) => r.method === "PUT" && "x-amz-copy-source" in r.headers });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "plain", Body: "p" }));
    const copy = await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "dst", CopySource: `${bucket}/src` })).catch((e) => e);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "dst" })).catch((e) => e);

    expect([copy.name, copy.$metadata?.httpStatusCode]).toEqual(["InternalError", 500]);
    expect(head.$metadata?.httpStatusCode).toBe(404); // the failed copy never reached the server
    expect(await listKeys(bucket)).toEqual(["plain", "src"]);

    proxy.failNext(1, 503, { code: "ServiceUnavailable", when: (r) => r.method === "HEAD" });
    const headFailure = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "src" })).catch((e) => e);
    expect(headFailure.$metadata?.httpStatusCode).toBe(503); // a HEAD answer has no body to name the code
    client.destroy();
  });

  test("names each request's S3 operation, and a fault given operation names meets only those", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();
    await putObject(bucket, "src", "v");

    proxy.failNext(2, 503, { when: ["CopyObject", "UploadPart"] });
    proxy.resetNext(1, { when: "CompleteMultipartUpload" });
    expect(proxy.pendingFaults()).toBe(3);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "plain", Body: "p" }));
    const copy = await client.send(new CopyObjectCommand({ Bucket: bucket, Key: "dst", CopySource: `${bucket}/src` })).catch((e) => e);
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "multi" }));
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "multi", UploadId, PartNumber: 1, Body: "x" })).catch((e) => e);
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "multi", UploadId, PartNumber: 1, Body: "x" }));
    const completion = { Bucket: bucket, Key: "multi", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } };
    const complete = await client.send(new CompleteMultipartUploadCommand(completion)).catch((e) => e);
    await client.send(new CompleteMultipartUploadCommand(completion));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "plain" }));
    await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));

    expect([copy.$metadata?.httpStatusCode, part.$metadata?.httpStatusCode, complete.code]).toEqual([503, 503, "ECONNRESET"]);
    expect(proxy.pendingFaults()).toBe(0);
    expect(proxy.requests.byOperation).toEqual({
      PutObject: 1,
      CopyObject: 1,
      CreateMultipartUpload: 1,
      UploadPart: 2,
      CompleteMultipartUpload: 2,
      DeleteObject: 1,
      ListMultipartUploads: 1,
    });
    expect(await listKeys(bucket)).toEqual(["multi", "src"]);
    client.destroy();
  });

  test("stall holds the socket open and unanswered; the client gives up on its own timeout", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const bucket = await createBucket();
    await putObject(bucket, "k", "v");
    proxy.stall(true);

    const raw = await rawExchange(proxy.url, `GET /${bucket}/k HTTP/1.1\r\nHost: x\r\n\r\n`, 500);
    expect(raw).toEqual({ received: "", closed: false });

    const client = clientVia(proxy, 300);
    const started = performance.now();
    const error = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k" })).catch((e) => e);
    expect(error.name).toBe("TimeoutError");
    expect(performance.now() - started).toBeLessThan(2_000);

    proxy.stall(false);
    const after = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }));
    expect(await after.Body!.transformToString()).toBe("v");
    client.destroy();
  });

  test("resetNext resets the connection: before upstream sees the request, or after it handled it", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();

    proxy.resetNext(1);
    const before = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "early", Body: "x" })).catch((e) => e);
    proxy.resetNext(1, { afterUpstream: true, when: (r) => r.method === "PUT" });
    const after = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "late", Body: "y" })).catch((e) => e);

    // An RST, not a FIN: a FIN would read as "socket hang up".
    for (const error of [before, after]) expect([error.code, error.message]).toEqual(["ECONNRESET", expect.stringMatching(/^(read|write) (ECONNRESET|EPIPE)$/)]);
    // The early reset kept the request from the server; the late one lost only the answer.
    expect(await listKeys(bucket)).toEqual(["late"]);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "fine", Body: "z" }));
    expect(await listKeys(bucket)).toEqual(["fine", "late"]);
    client.destroy();
  });

  test("resetNext with afterResponseBytes breaks the answer off part-way: the head and some of the body arrive", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();
    await putObject(bucket, "big.bin", randomBytes(4 * MiB));

    proxy.resetNext(1, { afterResponseBytes: 256 * 1024, when: "GetObject" });
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    let received = 0;
    const error = await (async () => {
      for await (const chunk of got.Body as AsyncIterable<Uint8Array>) received += chunk.length;
    })().catch((e) => e);

    expect(got.ContentLength).toBe(4 * MiB);
    expect(error?.code).toBe("ECONNRESET");
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(256 * 1024);
    client.destroy();
  });

  test("a 20 MiB object goes up and comes back byte for byte", async () => {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    const client = clientVia(proxy);
    const bucket = await createBucket();
    const body = randomBytes(20 * MiB);

    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "big.bin", Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    const bytes = await got.Body!.transformToByteArray();

    expect(bytes.length).toBe(body.length);
    expect(sha256(bytes)).toBe(sha256(body));
    expect(proxy.requests.byMethod).toEqual({ PUT: 1, GET: 1 });
    client.destroy();
  });
});
