/**
 * A fault-injecting HTTP/1.1 proxy for tests, in the spirit of pg-boss's halfOpenProxy: it sits
 * in front of an HTTP server (moto) on a free loopback port and, on command, stalls requests,
 * answers them with S3-style errors, or resets their connections. Everything else is forwarded
 * byte for byte.
 *
 * Built on node:net with its own request framing rather than node:http or Bun.serve: forwarding
 * the client's bytes unchanged is the only way to keep Host, header case and order, and so SigV4
 * signatures, exactly as signed; Bun.serve closes a stalled connection after its idleTimeout; and
 * only a raw socket can send an RST (resetAndDestroy). Requests are parsed just enough to find
 * where each one starts; responses are not parsed at all.
 *
 * Assumes the client does not pipeline (the SDK's agent, fetch and curl do not): one request is
 * answered before the next is sent on a connection, so an injected answer cannot overtake one
 * coming from upstream.
 */
import { STATUS_CODES } from "node:http";
import net from "node:net";
import { freePort } from "./processes";

export interface ProxiedRequest {
  method: string;
  /** The request target as sent, e.g. `/bucket/key?uploads`. */
  path: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The S3 operation it is (path-style addressing), e.g. `CopyObject`, `ListObjectsV2`: see s3Operation. */
  operation: string;
}

/**
 * Selects the requests a fault applies to: a predicate, or the name of an S3 operation (or
 * several) as s3Operation tells them; a fault without one applies to every request.
 */
export type RequestMatcher = ((request: ProxiedRequest) => boolean) | string | readonly string[];

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`, to use as the S3 endpoint. */
  url: string;
  /** Requests seen since start or resetCounts(), faulted ones included. */
  readonly requests: { total: number; byMethod: Record<string, number>; byOperation: Record<string, number> };
  resetCounts(): void;
  /** How many armed failures and resets have not met their request yet: 0 once every one was injected. */
  pendingFaults(): number;
  /** While on, matching requests are read and never answered; their sockets stay open until the client gives up. */
  stall(on: boolean, when?: RequestMatcher): void;
  /** Answers the next n matching requests with `status` and an S3 error body, then closes the connection. */
  failNext(n: number, status?: number, options?: { code?: string; when?: RequestMatcher }): void;
  /**
   * Resets (TCP RST) the connection of the next n matching requests: as soon as the request head
   * arrives, or with `afterUpstream` once upstream has handled the request and starts answering,
   * so the effect happened but the client never learns it; with `afterResponseBytes` once that
   * much of the answer (head included) went through, so a body breaks off part-way.
   */
  resetNext(n: number, options?: { afterUpstream?: boolean; afterResponseBytes?: number; when?: RequestMatcher }): void;
  stop(): Promise<void>;
}

type Fault =
  | { kind: "stall"; remaining: number; when?: RequestMatcher }
  | { kind: "fail"; remaining: number; when?: RequestMatcher; status: number; code: string }
  | { kind: "reset"; remaining: number; when?: RequestMatcher; afterResponseBytes: number | undefined };

const DEFAULT_CODES: Record<number, string> = { 500: "InternalError", 503: "SlowDown", 403: "AccessDenied", 404: "NoSuchKey" };
// Far above any S3 request head (SigV4 heads are ~2 KiB); a client sending more is broken.
const MAX_HEAD_BYTES = 64 * 1024;

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const upstreamPort = Number(target.port || 80);
  // In the order they were armed; the first that matches a request applies to it.
  let faults: Fault[] = [];
  let requestIds = 0;
  const sockets = new Set<net.Socket>();
  const requests = { total: 0, byMethod: {} as Record<string, number>, byOperation: {} as Record<string, number> };

  function takeFault(request: ProxiedRequest): Fault | undefined {
    const fault = faults.find((f) => f.remaining > 0 && (!f.when || matches(f.when, request)));
    if (fault) fault.remaining--;
    faults = faults.filter((f) => f.remaining > 0);
    return fault;
  }

  function errorResponse(request: ProxiedRequest, status: number, code: string): string {
    const id = `fault-proxy-${++requestIds}`;
    // A HEAD response carries no body; S3 clients read the error from the status alone there.
    const body = request.method === "HEAD" ? "" : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>Injected by the test fault proxy</Message><RequestId>${id}</RequestId></Error>`;
    return [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`,
      "Content-Type: application/xml",
      `Content-Length: ${Buffer.byteLength(body)}`,
      `x-amz-request-id: ${id}`,
      `Date: ${new Date().toUTCString()}`,
      // Closing spares reading a body the client may still be sending (or withholding, after Expect: 100-continue).
      "Connection: close",
      "",
      body,
    ].join("\r\n");
  }

  function onConnection(client: net.Socket): void {
    sockets.add(client);
    let upstreamSocket: net.Socket | undefined;
    // The current request's answer is reset once this many of its bytes went through (0: at its first).
    let resetAfterBytes: number | undefined;
    let answered = 0;
    // Where the client's byte stream is: a request head (buffered until complete), a body or chunk
    // (`remaining` bytes, forwarded as they come), a chunk-size or trailer line, or bytes to drop.
    let phase: "head" | "body" | "chunk-size" | "trailer" | "discard" = "head";
    let remaining = 0;
    let chunked = false;
    let head = Buffer.alloc(0);
    let line = "";

    const reset = () => {
      phase = "discard";
      client.resetAndDestroy();
      upstreamSocket?.destroy();
    };

    const connectUpstream = (): net.Socket => {
      const socket = net.connect({ host: target.hostname, port: upstreamPort, allowHalfOpen: true });
      sockets.add(socket);
      socket.on("data", (chunk: Buffer) => {
        if (resetAfterBytes !== undefined && answered + chunk.length >= resetAfterBytes) {
          if (resetAfterBytes === 0) return reset();
          const rest = chunk.subarray(0, resetAfterBytes - answered);
          resetAfterBytes = undefined;
          phase = "discard";
          socket.pause();
          // Reset only once these bytes reached the client: an RST drops what is still unsent.
          return void client.write(rest, () => setTimeout(reset, 50));
        }
        answered += chunk.length;
        if (!client.write(chunk) && !socket.isPaused()) socket.pause(), client.once("drain", () => socket.resume());
      });
      socket.on("end", () => client.end());
      socket.on("error", () => client.destroy());
      socket.on("close", () => sockets.delete(socket));
      return socket;
    };

    const forward = (bytes: Buffer) => {
      upstreamSocket ??= connectUpstream();
      // Backpressure: stop reading the client until upstream has taken what it was given.
      if (!upstreamSocket.write(bytes) && !client.isPaused()) client.pause(), upstreamSocket.once("drain", () => client.resume());
    };

    const startRequest = (bytes: Buffer) => {
      const [requestLine = "", ...headerLines] = bytes.toString("latin1").split("\r\n");
      const [method = "", path = ""] = requestLine.split(" ");
      const headers: Record<string, string> = {};
      for (const h of headerLines.filter(Boolean)) {
        const name = h.slice(0, h.indexOf(":")).trim().toLowerCase();
        const value = h.slice(h.indexOf(":") + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      const request = { method, path, headers, operation: s3Operation(method, path, headers) };
      requests.total++;
      requests.byMethod[method] = (requests.byMethod[method] ?? 0) + 1;
      requests.byOperation[request.operation] = (requests.byOperation[request.operation] ?? 0) + 1;

      const fault = takeFault(request);
      if (fault?.kind === "stall") return void (phase = "discard");
      if (fault?.kind === "reset" && fault.afterResponseBytes === undefined) return reset();
      if (fault?.kind === "fail") {
        phase = "discard";
        upstreamSocket?.destroy();
        return void client.end(errorResponse(request, fault.status, fault.code));
      }
      resetAfterBytes = fault?.kind === "reset" ? fault.afterResponseBytes : undefined;
      answered = 0;
      chunked = /\bchunked\b/i.test(headers["transfer-encoding"] ?? "");
      remaining = chunked ? 0 : Number(headers["content-length"] ?? 0);
      phase = chunked ? "chunk-size" : remaining > 0 ? "body" : "head";
      forward(bytes);
    };

    client.on("data", (data: Buffer) => {
      let at = 0;
      while (at < data.length && phase !== "discard") {
        if (phase === "head") {
          head = Buffer.concat([head, data.subarray(at)]);
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) return void (head.length > MAX_HEAD_BYTES && reset());
          const requestHead = head.subarray(0, end + 4);
          [data, at, head] = [head.subarray(end + 4), 0, Buffer.alloc(0)];
          startRequest(requestHead);
        } else if (phase === "body") {
          const n = Math.min(remaining, data.length - at);
          forward(data.subarray(at, at + n));
          [at, remaining] = [at + n, remaining - n];
          if (remaining === 0) phase = chunked ? "chunk-size" : "head";
        } else {
          // Chunk-size and trailer lines end in LF; they are forwarded as they arrive and only watched.
          const lf = data.indexOf(10, at);
          const stop = lf < 0 ? data.length : lf + 1;
          line += data.toString("latin1", at, stop);
          forward(data.subarray(at, stop));
          at = stop;
          if (lf < 0) continue;
          if (phase === "chunk-size") {
            const size = parseInt(line, 16);
            if (Number.isNaN(size)) return reset();
            [phase, remaining] = size === 0 ? ["trailer", 0] : ["body", size + 2]; // + the CRLF after the data
          } else if (line === "\r\n") phase = "head";
          line = "";
        }
      }
    });
    client.on("end", () => upstreamSocket?.end());
    client.on("error", () => upstreamSocket?.destroy());
    client.on("close", () => {
      sockets.delete(client);
      upstreamSocket?.destroy();
    });
  }

  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  const port = await freePort();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    resetCounts() {
      requests.total = 0;
      requests.byMethod = {};
      requests.byOperation = {};
    },
    pendingFaults() {
      return faults.filter((f) => f.kind !== "stall").reduce((sum, f) => sum + f.remaining, 0);
    },
    stall(on, when) {
      faults = faults.filter((f) => f.kind !== "stall");
      if (on) faults.push({ kind: "stall", remaining: Infinity, when });
    },
    failNext(n, status = 503, options = {}) {
      faults.push({ kind: "fail", remaining: n, when: options.when, status, code: options.code ?? DEFAULT_CODES[status] ?? "InternalError" });
    },
    resetNext(n, options = {}) {
      const afterResponseBytes = options.afterResponseBytes ?? (options.afterUpstream ? 0 : undefined);
      faults.push({ kind: "reset", remaining: n, when: options.when, afterResponseBytes });
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function matches(when: RequestMatcher, request: ProxiedRequest): boolean {
  if (typeof when === "function") return when(request);
  return typeof when === "string" ? request.operation === when : when.includes(request.operation);
}

/**
 * The S3 operation a path-style request is, from its method, its path (`/bucket` or
 * `/bucket/key`), its query and the copy-source header: the names the SDK's commands have.
 */
export function s3Operation(method: string, target: string, headers: Record<string, string>): string {
  const [path = "", query = ""] = target.split("?", 2);
  const params = new URLSearchParams(query);
  const onObject = /^\/[^/]+\/./.test(path);
  const copy = "x-amz-copy-source" in headers;
  if (!onObject) {
    if (method === "GET") return params.has("uploads") ? "ListMultipartUploads" : params.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
    if (method === "POST" && params.has("delete")) return "DeleteObjects";
    return { HEAD: "HeadBucket", PUT: "CreateBucket", DELETE: "DeleteBucket" }[method] ?? `${method} bucket`;
  }
  if (method === "PUT") return params.has("partNumber") ? (copy ? "UploadPartCopy" : "UploadPart") : copy ? "CopyObject" : "PutObject";
  if (method === "POST") return params.has("uploads") ? "CreateMultipartUpload" : params.has("uploadId") ? "CompleteMultipartUpload" : "POST object";
  if (method === "DELETE") return params.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
  return { GET: "GetObject", HEAD: "HeadObject" }[method] ?? `${method} object`;
}
