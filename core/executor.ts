/**
 * Runs `task` over `items` with at most `concurrency` in flight and returns the results in input
 * order. When `signal` aborts, no new item starts; the ones in flight finish (graceful drain), then
 * the abort reason is thrown. The first error thrown by a task stops new starts the same way.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;

  async function worker(): Promise<void> {
    while (next < items.length && !failure && !signal?.aborted) {
      const index = next++;
      try {
        results[index] = await task(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure.error;
  signal?.throwIfAborted();
  return results;
}

export interface OrderedPoolOptions {
  concurrency: number;
  /**
   * How far the pool may run ahead of the oldest unfinished item: results wait in memory until
   * every earlier one is done, so one slow item (a 5 GiB copy) holds at most this many.
   */
  window?: number;
  /** Aborting stops new starts; the items in flight finish, then the reason is thrown. */
  signal?: AbortSignal;
}

/**
 * Runs `task` over a stream of items with `concurrency` in flight and hands each result to
 * `onResult` in input order. Unlike mapBounded over pages, nothing drains between pages: a worker
 * that finishes takes the next item at once. The first error from the stream or a task stops new
 * starts, lets the ones in flight finish, and is thrown.
 */
export async function forEachOrdered<T, R>(
  items: AsyncIterable<T>,
  options: OrderedPoolOptions,
  task: (item: T) => Promise<R>,
  onResult: (result: R) => void,
): Promise<void> {
  const { concurrency, signal } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  const window = Math.max(options.window ?? concurrency * 64, concurrency);
  const iterator = items[Symbol.asyncIterator]();
  const finished = new Map<number, R>();
  let started = 0;
  let emitted = 0;
  let end = Infinity;
  let failure: { error: unknown } | undefined;
  let wake: Array<() => void> = [];
  const wakeAll = () => {
    const waiting = wake;
    wake = [];
    for (const resolve of waiting) resolve();
  };
  signal?.addEventListener("abort", wakeAll, { once: true });
  const stopped = () => failure !== undefined || signal?.aborted === true || started >= end;

  async function worker(): Promise<void> {
    while (!stopped()) {
      if (started - emitted >= window) {
        await new Promise<void>((resolve) => wake.push(resolve));
        continue;
      }
      // Numbered before the await: an async generator answers queued next() calls in order.
      const seq = started++;
      try {
        // A stream that hangs (a query on a dead connection) must not hold the pool after an abort.
        const step = await untilAborted(iterator.next(), signal);
        if (step.done) {
          end = Math.min(end, seq);
          continue;
        }
        finished.set(seq, await task(step.value));
        while (finished.has(emitted)) {
          const result = finished.get(emitted)!;
          finished.delete(emitted++);
          onResult(result);
        }
        wakeAll();
      } catch (error) {
        failure ??= { error };
        wakeAll();
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    signal?.removeEventListener("abort", wakeAll);
    // Not awaited: a stream stuck in its own await would hold the run here.
    if (failure || signal?.aborted) void iterator.return?.().catch(() => undefined);
  }
  if (failure) throw failure.error;
  signal?.throwIfAborted();
}

/** `promise`, or a rejection with the abort reason as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => undefined); // may settle after the abort won; nobody waits for it then
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The items of `source`, pulled up to `limit` ahead of the consumer: memory holds `limit` items,
 * the source works while the consumer does. An error of the source reaches the consumer after the
 * items read before it; a consumer that stops early stops the source.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, limit: number): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let buffer: T[] = [];
  let ended = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const wake = (which: "consumer" | "producer") => {
    const resolve = which === "consumer" ? wakeConsumer : wakeProducer;
    if (which === "consumer") wakeConsumer = undefined;
    else wakeProducer = undefined;
    resolve?.();
  };
  const producer = (async () => {
    try {
      while (!stopped) {
        if (buffer.length >= limit) {
          await new Promise<void>((resolve) => (wakeProducer = resolve));
          continue;
        }
        const step = await iterator.next();
        if (step.done) break;
        buffer.push(step.value);
        wake("consumer");
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      wake("consumer");
    }
  })();
  try {
    for (;;) {
      if (buffer.length) {
        const items = buffer;
        buffer = [];
        wake("producer");
        yield* items;
        continue;
      }
      if (failure) throw failure.error;
      if (ended) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    stopped = true;
    wake("producer");
    await producer;
    await iterator.return?.();
  }
}
