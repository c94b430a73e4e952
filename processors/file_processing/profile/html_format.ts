/** Text for profile.html: every value from the data goes through escapeHtml, in text and in attributes alike. */

import { escapeHtml } from "../../../core/html";

export { escapeHtml };

export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return Math.abs(n) >= 1000 ? n.toFixed(1) : Number(n.toPrecision(4)).toString();
}

/** A share as a percentage, with two decimals below 1% so 0.2% does not read as 0%. */
export const percent = (share: number) => `${(share * 100).toFixed(share > 0 && share < 0.01 ? 2 : 1)}%`;

/** A value as text: numbers formatted, null as empty. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return formatNumber(value);
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * `text` escaped, cut to `max` characters with an ellipsis; a cut one carries its whole text as
 * a tooltip. For labels that must stay on a line (top values, key columns); the values that broke
 * a rule are shown whole.
 */
export function clipped(text: string, max: number): string {
  if (text.length <= max) return escapeHtml(text);
  return `<span title="${escapeHtml(text)}">${escapeHtml(text.slice(0, max - 1))}…</span>`;
}

/** How long `event` was before (or after) `reference`, in words: "3.2 h before", "8.3 h after", "4 min before", "2.5 d after". */
export function timeRelative(event: string, reference: string): string {
  const seconds = (Date.parse(reference) - Date.parse(event)) / 1000;
  if (!Number.isFinite(seconds)) return "";
  const side = seconds < 0 ? "after" : "before";
  const s = Math.abs(seconds);
  const amount = s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86_400).toFixed(1)} d`;
  return `${amount} ${side}`;
}

/** An ISO time as "2026-11-01 02:00 UTC". */
export function shortTime(iso: string): string {
  const match = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)/.exec(iso);
  return match ? `${match[1]} ${match[2]} UTC` : iso;
}
