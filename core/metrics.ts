/**
 * Counters and timings of one run. They travel in the run summary event (`metrics`), where the
 * log pipeline turns them into series; a batch job lives too briefly to be scraped.
 */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly timings = new Map<string, { count: number; totalMs: number; maxMs: number }>();

  increment(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  async time<T>(name: string, operation: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await operation();
    } finally {
      const ms = performance.now() - started;
      const t = this.timings.get(name) ?? { count: 0, totalMs: 0, maxMs: 0 };
      this.timings.set(name, { count: t.count + 1, totalMs: t.totalMs + ms, maxMs: Math.max(t.maxMs, ms) });
    }
  }

  snapshot(): Record<string, number | { count: number; totalMs: number; maxMs: number }> {
    const out: Record<string, number | { count: number; totalMs: number; maxMs: number }> = Object.fromEntries(this.counters);
    for (const [name, t] of this.timings) out[name] = { count: t.count, totalMs: Math.round(t.totalMs), maxMs: Math.round(t.maxMs) };
    return out;
  }
}
