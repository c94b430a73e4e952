import { ConfigError, EtlError, TransientError, errorMessage } from "../errors";
import type { Logger } from "../log";
import { backoffDelay, sleep } from "./retry";

/** An HTTP answer that ends the request: its status and the start of its body. */
export class HttpStatusError extends EtlError {
  constructor(
    readonly status: number,
    readonly url: string,
    detail: string,
    code: "failed" | "transient" = "failed",
  ) {
    super(code, `GET ${url} failed: HTTP ${status}${detail ? ` (${detail})` : ""}`);
    this.name = "HttpStatusError";
  }
}

export interface HttpClientOptions {
  /** Sent as `Authorization: Bearer <token>`; never logged. */
  token?: string;
  /** Where the token comes from, named in the error when the API rejects it. */
  tokenSource?: string;
  /** Client-side rate limit; requests wait for their slot. */
  requestsPerSecond?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Per attempt, headers and body together. */
  timeoutMs?: number;
  /** Total attempts of one request, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the request fails as transient. */
  maxRetryAfterMs?: number;
  signal?: AbortSignal;
  log?: Logger;
  fetch?: typeof fetch;
}

export interface JsonResponse {
  url: string;
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * GETs JSON from an application's API the way a good citizen does: a client-side rate limit and
 * a concurrency cap, retries only where a retry can help (429, 5xx, network errors, timeouts),
 * honouring Retry-After (seconds or an HTTP date) and otherwise backing off with full jitter.
 * Other 4xx fail at once; 401 and 403 are a configuration error (exit 2) naming the token's source.
 */
export class HttpClient {
  private nextSlot = 0;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly fetch: typeof fetch;

  constructor(private readonly options: HttpClientOptions = {}) {
    this.fetch = options.fetch ?? fetch;
  }

  async getJson(url: string): Promise<JsonResponse> {
    const attempts = this.options.attempts ?? 6;
    for (let attempt = 1; ; attempt++) {
      this.options.signal?.throwIfAborted();
      let retryAfterMs: number | undefined;
      let failure: EtlError;
      try {
        const response = await this.limited(() => this.once(url));
        if (response.status < 400) return response;
        const detail = bodySnippet(response.body);
        if (response.status === 401 || response.status === 403) {
          throw new ConfigError(`the API rejected the credentials${this.options.tokenSource ? ` in ${this.options.tokenSource}` : ""}: GET ${url} answered HTTP ${response.status}${detail ? ` (${detail})` : ""}`);
        }
        if (response.status !== 429 && response.status < 500) throw new HttpStatusError(response.status, url, detail);
        failure = new HttpStatusError(response.status, url, detail, "transient");
        retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      } catch (error) {
        if (error instanceof ConfigError || (error instanceof HttpStatusError && error.code === "failed") || this.options.signal?.aborted) throw error;
        failure = error instanceof EtlError ? error : new TransientError(`GET ${url} failed: ${errorMessage(error)}`, { cause: error });
      }
      if (attempt >= attempts) throw new TransientError(`${failure.message}; gave up after ${attempts} attempts`, { cause: failure });
      const maxRetryAfter = this.options.maxRetryAfterMs ?? 300_000;
      if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfter) {
        throw new TransientError(`${failure.message}; the API asks to retry after ${Math.round(retryAfterMs / 1000)} s, longer than this run waits`);
      }
      const delayMs = retryAfterMs ?? backoffDelay(attempt, this.options.baseDelayMs ?? 500, this.options.maxDelayMs ?? 30_000);
      this.options.log?.warn("API request failed, retrying", { url, attempt, delayMs, error: failure.message });
      await sleep(delayMs, this.options.signal);
    }
  }

  private async once(url: string): Promise<JsonResponse> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    const signals = [AbortSignal.timeout(timeoutMs), ...(this.options.signal ? [this.options.signal] : [])];
    let response: Response;
    let text: string;
    try {
      response = await this.fetch(url, {
        headers: { accept: "application/json", ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}) },
        signal: AbortSignal.any(signals),
        redirect: "follow",
      });
      text = await response.text();
    } catch (error) {
      if (this.options.signal?.aborted) throw error;
      const timedOut = (error as Error)?.name === "TimeoutError";
      throw new TransientError(`GET ${url} failed: ${timedOut ? `no complete answer in ${timeoutMs / 1000} s` : errorMessage(error)}`, { cause: error });
    }
    if (response.status >= 400) return { url, status: response.status, headers: response.headers, body: text };
    try {
      return { url, status: response.status, headers: response.headers, body: text === "" ? null : JSON.parse(text) };
    } catch {
      throw new HttpStatusError(response.status, url, `the body is not JSON: ${text.slice(0, 120)}`);
    }
  }

  /** Waits for a free slot under the concurrency cap, then for the rate limit's next tick. */
  private async limited<T>(request: () => Promise<T>): Promise<T> {
    const concurrency = this.options.concurrency ?? 4;
    while (this.inFlight >= concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    try {
      const rps = this.options.requestsPerSecond;
      if (rps) {
        const now = performance.now();
        const slot = Math.max(now, this.nextSlot);
        this.nextSlot = slot + 1000 / rps;
        if (slot > now) await sleep(slot - now, this.options.signal);
      }
      return await request();
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }
}

/** Retry-After in milliseconds: delay-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function bodySnippet(body: unknown): string {
  const text = typeof body === "string" ? body : JSON.stringify(body ?? "");
  return text.replace(/\s+/g, " ").trim().slice(0, 200);
}
