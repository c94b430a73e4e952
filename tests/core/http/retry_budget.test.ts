import { describe, expect, test } from "bun:test";
import { RetryBudget, retriesSpent, retry } from "../../../core/http/retry";

const reset = () => Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
const fast = { baseDelayMs: 1, maxDelayMs: 1 };

describe("retry, nested", () => {
  test("an error an inner retry gave up on is not retried by an outer one: 4 sends, not 16", async () => {
    let sends = 0;
    const inner = () => retry(async () => { sends++; throw reset(); }, { attempts: 4, ...fast });
    const error = await retry(inner, { attempts: 4, ...fast }).catch((e) => e);
    expect(sends).toBe(4);
    expect(retriesSpent(error)).toBe(true);
    // Wrapped, it is still spent.
    expect(retriesSpent(new Error("copy failed", { cause: error }))).toBe(true);
  });

  test("what the inner loop did not give up on (a body that broke off after it returned) the outer one retries", async () => {
    let reads = 0;
    const result = await retry(async () => {
      await retry(async () => "headers", fast);
      if (++reads < 3) throw reset();
      return "body";
    }, fast);
    expect([result, reads]).toEqual(["body", 3]);
  });

  test("attempts may depend on the error: fewer after a timeout", async () => {
    const timeout = Object.assign(new Error("timed out"), { code: "ETIMEDOUT" });
    let sends = 0;
    await retry(async () => { sends++; throw sends % 2 ? reset() : timeout; }, { attempts: (e) => (e === timeout ? 4 : 10), ...fast }).catch(() => undefined);
    // Resets at 1 and 3, timeouts at 2 and 4: the timeout at the 4th send ends it.
    expect(sends).toBe(4);
  });
});

describe("RetryBudget", () => {
  test("retries while it holds tokens; an empty budget makes the first error final (and spent); successes refill it", async () => {
    const budget = new RetryBudget({ capacity: 10, costOf: () => 5, successRefund: 1 });
    let sends = 0;
    const failing = () => retry(async () => { sends++; throw reset(); }, { attempts: 10, budget, ...fast });
    const first = await failing().catch((e) => e);
    expect(sends).toBe(3); // two retries of 5 tokens each
    expect(retriesSpent(first)).toBe(true);
    sends = 0;
    await failing().catch(() => undefined);
    expect(sends).toBe(1);

    // Five successes give 5 tokens back: one retry again.
    for (let i = 0; i < 5; i++) await retry(async () => "ok", { budget });
    sends = 0;
    await failing().catch(() => undefined);
    expect(sends).toBe(2);
  });

  test("a success after retries gives back what its last retry cost", async () => {
    const budget = new RetryBudget({ capacity: 10, costOf: () => 5, successRefund: 1 });
    let sends = 0;
    expect(await retry(async () => (++sends < 3 ? Promise.reject(reset()) : "ok"), { budget, ...fast })).toBe("ok");
    // 10 - 5 - 5 + 5: one retry's worth left.
    sends = 0;
    await retry(async () => { sends++; throw reset(); }, { attempts: 10, budget, ...fast }).catch(() => undefined);
    expect(sends).toBe(2);
  });
});
