/**
 * Counters and timings of one run. They travel in the run summary event (`metrics`), where the
 * log pipeline turns them into series; a batch job lives too briefly to be scraped.
 */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly timings = new Map<string, { count: number; totalMs: number; maxMs: number }>();
  private readonly gaugeSamples = new Map<string, Gauge>();
  private readonly breakdowns = new Map<string, Map<string, Record<string, number>>>();

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

  /**
   * Sets a labelled gauge pushed with the run's metrics under the full Prometheus `name` given
   * (e.g. `etl_profile_null_ratio{dataset,column}`): the values a job measures, as opposed to its
   * counters. Kept apart from snapshot(), which the ledger row and the summary carry: a profile
   * of a wide table sets hundreds.
   */
  gauge(name: string, help: string, labels: Record<string, string>, value: number): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`gauge name "${name}" is not a Prometheus metric name`);
    const key = name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    this.gaugeSamples.set(key, { name, help, labels, value });
  }

  gauges(): Gauge[] {
    return [...this.gaugeSamples.values()];
  }

  /**
   * Records one part's counts under `name` (e.g. `byAgency`, part "10"): the summary and the
   * ledger row carry them beside the totals, so a run over many agencies says what each got.
   */
  breakdown(name: string, part: string, counts: Record<string, number>): void {
    let parts = this.breakdowns.get(name);
    if (!parts) this.breakdowns.set(name, (parts = new Map()));
    parts.set(part, { ...counts });
  }

  snapshot(): MetricsSnapshot {
    const out: MetricsSnapshot = Object.fromEntries(this.counters);
    for (const [name, t] of this.timings) out[name] = { count: t.count, totalMs: Math.round(t.totalMs), maxMs: Math.round(t.maxMs) };
    for (const [name, parts] of this.breakdowns) out[name] = { parts: Object.fromEntries(parts) };
    return out;
  }
}

export type Timing = { count: number; totalMs: number; maxMs: number };
/** Counters, timings, and breakdowns (per part, its counts). */
export type MetricsSnapshot = Record<string, number | Timing | { parts: Record<string, Record<string, number>> }>;

export interface Gauge {
  name: string;
  help: string;
  labels: Record<string, string>;
  value: number;
}
