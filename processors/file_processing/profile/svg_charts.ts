import { escapeHtml, formatNumber, shortTime } from "./html_format";

/**
 * The inline SVG charts of profile.html: no script, no external asset, one <path> per chart so a
 * 300-column page stays small; the figures a chart draws are in its <title> (a tooltip, and what
 * a screen reader reads).
 */

// Bars BAR_STEP units apart, 1 unit of gap, HEIGHT high; the SVG is stretched to the card's width.
// Whole units keep a bar's path short: a 300-column page carries 6,000 of them.
const BAR_STEP = 10;
const HEIGHT = 44;
// A bin of one value among a million would be 0.00004 px high: every bin with a value is at least
// this high, so an outlier (the -12.5 among positive amounts) is visible.
const MIN_BAR = 2;

const fixed = (n: number) => String(Math.round(n * 10) / 10);

export interface HistogramData {
  edges: ReadonlyArray<number | string>;
  counts: readonly number[];
}

export const edgeText = (edge: number | string) => (typeof edge === "number" ? formatNumber(edge) : shortTime(edge));

/** The bins in words for the tooltip; temporal edges of one day give their day once. */
function binsText(h: HistogramData): string[] {
  const texts = h.edges.map(edgeText);
  const day = /^\d{4}-\d\d-\d\d /.exec(texts[0]!)?.[0];
  const short = day && texts.every((t) => t.startsWith(day)) ? texts.map((t) => t.slice(day.length).replace(/ UTC$/, "")) : texts;
  return h.counts.map((count, k) => `${short[k]} – ${short[k + 1]}: ${formatNumber(count)}`);
}

/** One bar per bin, its height linear in its count; `bad` bins (values a check failed on) in red. */
export function histogramSvg(name: string, h: HistogramData, bad: (from: number | string, to: number | string) => boolean = () => false): string {
  const width = h.counts.length * BAR_STEP;
  const most = Math.max(...h.counts, 1);
  const paths = { ok: "", bad: "" };
  for (const [k, count] of h.counts.entries()) {
    if (!count) continue;
    // A bar is a line BAR_STEP - 1 wide (the stroke, in the page's CSS) from the axis up: 8 bytes.
    const top = HEIGHT - Math.max(MIN_BAR, Math.round((count / most) * (HEIGHT - 2)));
    paths[bad(h.edges[k]!, h.edges[k + 1]!) ? "bad" : "ok"] += `M${k * BAR_STEP + BAR_STEP / 2} ${HEIGHT}V${top}`;
  }
  const first = edgeText(h.edges[0]!);
  const title = `${name}: ${h.counts.length} bins${/^\d{4}-/.test(first) ? `, ${first.slice(0, 10)}` : ""}\n${binsText(h).join("\n")}`;
  return `<svg class=hist viewBox="0 0 ${width} ${HEIGHT}" preserveAspectRatio=none><title>${escapeHtml(title)}</title>${paths.ok ? `<path d="${paths.ok}"/>` : ""}${paths.bad ? `<path class=bad d="${paths.bad}"/>` : ""}</svg>`;
}

/** A small bar chart of a series (the trend's rows), the last bar (this profile) darker. */
export function sparklineSvg(label: string, series: readonly number[], labels: readonly string[]): string {
  const width = Math.max(series.length * 8, 24);
  const height = 20;
  const most = Math.max(...series, 1);
  let bars = "";
  let last = "";
  for (const [k, value] of series.entries()) {
    const bar = value ? Math.max(1.5, (value / most) * height) : 0;
    const d = `M${k * 8 + 3} ${height}v-${fixed(bar)}`;
    if (k === series.length - 1) last = d;
    else bars += d;
  }
  const title = `${label}\n${series.map((v, k) => `${labels[k]}: ${formatNumber(v)}`).join("\n")}`;
  return `<svg class=spark viewBox="0 0 ${width} ${height}" width=${width} height=${height} role=img><title>${escapeHtml(title)}</title>${bars ? `<path d="${bars}"/>` : ""}${last ? `<path class=now d="${last}"/>` : ""}</svg>`;
}

/** The inline style of a cell whose background is a bar of `share` (0 to 1) of its width (.bar in the page's CSS). */
export const barStyle = (share: number) => `style="--w:${Math.round(Math.min(Math.max(share, 0), 1) * 1000) / 10}%"`;
