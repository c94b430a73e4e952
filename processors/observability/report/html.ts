/** What the report's HTML writers share: escaping, times, ages and anchors. */
import { formatDuration } from "../../../core/duration";
import { escapeHtml as esc } from "../../../core/html";

/** Text and attribute values, escaped for HTML. */
export { esc };

/** 2026-12-08 01:40:00Z */
export function time(at: Date | number | string): string {
  return new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** 2026-12-08 01:15Z: a slot, always on a minute */
export function slotTime(at: number): string {
  return new Date(at).toISOString().replace("T", " ").slice(0, 16) + "Z";
}

/** 30m, 2h, 1d: a whole duration as its flag says it; anything else as formatDuration does. */
export function shortDuration(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000]] as const) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return formatDuration(ms);
}

/** 01:40 (of a slot whose day the grid already shows) */
export function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 16);
}

/** How long ago, as `etl runs` says durations: 45s, 12m05s, 3h20m; days past two days. */
export function age(at: Date | number | string, now: Date): string {
  const ms = Math.max(0, now.getTime() - new Date(at).getTime());
  return ms >= 2 * 86_400_000 ? `${Math.floor(ms / 86_400_000)}d ago` : `${formatDuration(ms)} ago`;
}

export { formatDuration };

/** An id for an anchor from its parts: letters, digits and dashes. */
export function anchor(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9_]+/g, "-").replace(/^-|-$/g, "")).join("--");
}

/** A shell command as the operator would type it, in a <code> block. */
export function command(...words: string[]): string {
  return `<code class="cmd">${esc(words.map((w) => (/^([\w./:=@,+-]+|<[\w-]+>)$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`)).join(" "))}</code>`;
}
