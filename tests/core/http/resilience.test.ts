import { describe, expect, test } from "bun:test";
import { CircuitBreaker } from "../../../core/http/circuit_breaker";
import { TransientError } from "../../../core/errors";
import { forEachOrdered, mapBounded } from "../../../core/executor";
import { retry } from "../../../core/http/retry";
import { isTransientError } from "../../../core/http/transient";

const transient = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

describe("retry", () => {
  test("retries transient errors until success", async () => {
    let calls = 0;
    const result = await retry(async () => (++calls < 3 ? Promise.reject(transient) : "ok"), { baseDelayMs: 1 });
    expect(result).toBe("ok");
    expect(calls).toBe(3);
  });

  test("gives up after the last attempt with the last error", async () => {
    let calls = 0;
    await expect(retry(async () => { calls++; throw transient; }, { attempts: 3, baseDelayMs: 1 })).rejects.toBe(transient);
    expect(calls).toBe(3);
  });

  test("does not retry a permanent error", async () => {
    let calls = 0;
    const permanent = Object.assign(new Error("AccessDenied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
    await expect(retry(async () => { calls++; throw permanent; }, { baseDelayMs: 1 })).rejects.toBe(permanent);
    expect(calls).toBe(1);
  });

  test("stops waiting when the signal aborts", async () => {
    const controller = new AbortController();
    // A fresh error: the one the tests above gave up on is marked spent, and no retry() retries it again.
    const pending = retry(async () => { throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }); }, { attempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000, signal: controller.signal, onRetry: () => controller.abort(new Error("stop")) });
    await expect(pending).rejects.toThrow("stop");
  });
});

describe("isTransientError", () => {
  test("classifies network, S3 and PostgreSQL errors", () => {
    expect(isTransientError(transient)).toBe(true);
    expect(isTransientError({ name: "SlowDown", $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isTransientError({ name: "InternalError", $metadata: { httpStatusCode: 500 } })).toBe(true);
    expect(isTransientError({ code: "57P01" })).toBe(true); // admin shutdown
    expect(isTransientError({ code: "40001" })).toBe(true); // serialization failure
    expect(isTransientError({ code: "42P01" })).toBe(false); // undefined table
    expect(isTransientError({ name: "NoSuchKey", $metadata: { httpStatusCode: 404 } })).toBe(false);
    expect(isTransientError(new Error("x", { cause: transient }))).toBe(true);
  });
});

describe("mapBounded", () => {
  test("keeps input order and never exceeds the concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await Bun.sleep(n);
      inFlight--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(peak).toBe(3);
  });

  test("on abort, lets in-flight items finish, starts no new one, then throws", async () => {
    const controller = new AbortController();
    const finished: number[] = [];
    const run = mapBounded([1, 2, 3, 4, 5, 6], 2, async (n) => {
      if (n === 2) controller.abort(new Error("SIGTERM"));
      await Bun.sleep(5);
      finished.push(n);
      return n;
    }, controller.signal);
    await expect(run).rejects.toThrow("SIGTERM");
    expect(finished.sort()).toEqual([1, 2]);
  });

  test("rejects a non-positive concurrency", async () => {
    await expect(mapBounded([1], 0, async (n) => n)).rejects.toThrow(RangeError);
  });
});

async function* paged<T>(pages: T[][], onPage?: (index: number) => void): AsyncGenerator<T> {
  for (const [index, page] of pages.entries()) {
    onPage?.(index);
    await Bun.sleep(1);
    yield* page;
  }
}

describe("forEachOrdered", () => {
  test("hands results over in input order while tasks finish out of order, never above the concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachOrdered(paged([[5, 1, 4], [2, 3], [], [0, 6]]), { concurrency: 3 }, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await Bun.sleep(n * 2);
      inFlight--;
      return n * 10;
    }, (r) => seen.push(r));
    expect(seen).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(peak).toBe(3);
  });

  test("no barrier between pages: the next page's items start while a slow item of this page runs", async () => {
    const events: string[] = [];
    await forEachOrdered(paged([["slow", "a"], ["b", "c"]]), { concurrency: 2 }, async (item) => {
      events.push(`start ${item}`);
      await Bun.sleep(item === "slow" ? 60 : 2);
      events.push(`end ${item}`);
      return item;
    }, () => {});
    expect(events.indexOf("start c")).toBeLessThan(events.indexOf("end slow"));
  });

  test("a slow item holds back at most `window` items", async () => {
    let maxAhead = 0;
    let started = 0;
    let finished = 0;
    await forEachOrdered(paged([Array.from({ length: 50 }, (_, i) => i)]), { concurrency: 4, window: 8 }, async (n) => {
      started++;
      maxAhead = Math.max(maxAhead, started - finished);
      await Bun.sleep(n === 0 ? 50 : 1);
      return n;
    }, () => finished++);
    expect(maxAhead).toBeLessThanOrEqual(8);
  });

  test("an error from the stream or a task stops new starts and is thrown; abort drains then throws", async () => {
    async function* failing() {
      yield 1;
      throw new Error("database gone");
    }
    await expect(forEachOrdered(failing(), { concurrency: 2 }, async (n) => n, () => {})).rejects.toThrow("database gone");
    const controller = new AbortController();
    const done: number[] = [];
    const run = forEachOrdered(paged([[1, 2, 3, 4, 5, 6]]), { concurrency: 2, signal: controller.signal }, async (n) => {
      if (n === 2) controller.abort(new Error("SIGTERM"));
      await Bun.sleep(5);
      return n;
    }, (n) => done.push(n));
    await expect(run).rejects.toThrow("SIGTERM");
    expect(done).toEqual([1, 2]);
  });
});

test("forEachOrdered: an abort ends the wait on a stream that hangs (a query on a dead connection)", async () => {
  async function* hanging() {
    yield 1;
    await new Promise(() => {});
  }
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("lease lost")), 20);
  await expect(forEachOrdered(hanging(), { concurrency: 2, signal: controller.signal }, async (n) => n, () => {})).rejects.toThrow("lease lost");
});

describe("CircuitBreaker", () => {
  test("opens after the threshold of consecutive failures; a success resets the count", () => {
    const breaker = new CircuitBreaker("S3", 3);
    breaker.recordFailure(transient);
    breaker.recordFailure(transient);
    breaker.recordSuccess();
    breaker.recordFailure(transient);
    breaker.recordFailure(transient);
    expect(() => breaker.recordFailure(transient)).toThrow(TransientError);
    expect(() => breaker.recordFailure(transient)).toThrow("S3 unavailable: 4 consecutive failures");
  });
});
