import { formatBytes } from "../bytes";
import type { Logger } from "../log";

/** What a job reports as it goes: items done (of a total when it knows one) and bytes moved. */
export interface Progress {
  /** The number of items the run will do, once it knows. */
  setTotal(items: number): void;
  /** Items finished (any outcome) and the bytes they moved. */
  advance(items?: number, bytes?: number): void;
}

export interface ProgressSnapshot {
  done: number;
  total?: number;
  bytes: number;
  elapsedSeconds: number;
  itemsPerSecond: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

// The live line is redrawn at most this often; JSON and non-TTY logs get an event per interval.
const REDRAW_MS = 250;
const CLEAR_LINE = "\r\x1b[2K";

/**
 * Progress of one run, shown two ways (core/runtime/runner.ts picks one):
 * - on a terminal with pretty logs, one live line under the log: every log line first clears it,
 *   is written, and the line is drawn again below, so the lines above are never garbled;
 * - otherwise a `job.progress` event every interval (30 s by default).
 */
export class RunProgress implements Progress {
  private done = 0;
  private total: number | undefined;
  private bytes = 0;
  private readonly started = performance.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private drawn = "";

  constructor(private readonly view: { kind: "live"; write: (text: string) => void; columns: () => number } | { kind: "events"; log: Logger; intervalMs: number }) {}

  setTotal(items: number): void {
    this.total = items;
  }

  advance(items = 1, bytes = 0): void {
    this.done += items;
    this.bytes += bytes;
  }

  start(): void {
    if (this.view.kind === "live") {
      this.timer = setInterval(() => this.redraw(), REDRAW_MS);
    } else {
      const { log, intervalMs } = this.view;
      this.timer = setInterval(() => this.done + (this.total ?? 0) > 0 && log.info("progress", { event: "job.progress", ...this.snapshot() }), intervalMs);
    }
    this.timer.unref?.();
  }

  /** Stops the updates and removes the live line. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.view.kind === "live" && this.drawn) this.view.write(CLEAR_LINE);
    this.drawn = "";
  }

  /** The log's writer while a live line shows: each log line goes above the live line. */
  writeAbove(line: string, write: (text: string) => void): void {
    if (!this.drawn) return write(line);
    write(CLEAR_LINE + line + this.drawn);
  }

  snapshot(): ProgressSnapshot {
    const elapsedSeconds = (performance.now() - this.started) / 1000;
    const itemsPerSecond = elapsedSeconds > 0 ? this.done / elapsedSeconds : 0;
    const remaining = this.total === undefined ? undefined : Math.max(0, this.total - this.done);
    return {
      done: this.done,
      ...(this.total !== undefined && { total: this.total }),
      bytes: this.bytes,
      elapsedSeconds: round(elapsedSeconds),
      itemsPerSecond: round(itemsPerSecond),
      bytesPerSecond: Math.round(elapsedSeconds > 0 ? this.bytes / elapsedSeconds : 0),
      ...(remaining !== undefined && itemsPerSecond > 0 && { etaSeconds: Math.round(remaining / itemsPerSecond) }),
    };
  }

  private redraw(): void {
    if (this.view.kind !== "live" || (this.done === 0 && this.total === undefined)) return;
    // Cut to the terminal's width: a wrapped line could not be cleared with one \r.
    const line = formatProgressLine(this.snapshot()).slice(0, Math.max(20, this.view.columns() - 1));
    if (line === this.drawn) return;
    this.drawn = line;
    this.view.write(CLEAR_LINE + line);
  }
}

/** e.g. "▸ 1,234/2,000 items (62%) · 128/s · 45.2 MiB, 2.3 MiB/s · eta 0:06" */
export function formatProgressLine(s: ProgressSnapshot): string {
  const count = s.total === undefined ? `${s.done.toLocaleString("en-US")} items` : `${s.done.toLocaleString("en-US")}/${s.total.toLocaleString("en-US")} items (${s.total ? Math.floor((100 * s.done) / s.total) : 100}%)`;
  const parts = [`▸ ${count}`, `${s.itemsPerSecond < 10 ? s.itemsPerSecond.toFixed(1) : Math.round(s.itemsPerSecond)}/s`];
  if (s.bytes > 0) parts.push(`${formatBytes(s.bytes)}, ${formatBytes(s.bytesPerSecond)}/s`);
  if (s.etaSeconds !== undefined) parts.push(`eta ${formatClock(s.etaSeconds)}`);
  return parts.join(" · ");
}

function formatClock(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
