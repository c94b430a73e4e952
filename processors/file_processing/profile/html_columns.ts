import { clipped, escapeHtml, formatNumber, percent, valueText } from "./html_format";
import type { CheckResult, ColumnProfile } from "./profile_document";
import { barStyle, histogramSvg } from "./svg_charts";

// What a card shows of a column; profile.json has all of it.
const TOP_VALUES_SHOWN = 5;
const VALUE_SHOWN = 48;

/** One card per column: its type and counts, a histogram (numeric and temporal), its top values as bars with their share of the rows. */
export function columnCards(columns: Record<string, ColumnProfile>, rows: number, checks: readonly CheckResult[], key: readonly string[]): string {
  const cards = Object.entries(columns).map(([name, c]) => columnCard(name, c, rows, checks.filter((k) => k.columns.includes(name)), key.includes(name)));
  return `<div class=cards>${cards.join("\n")}</div>`;
}

function columnCard(name: string, c: ColumnProfile, rows: number, checks: readonly CheckResult[], isKey: boolean): string {
  const failing = checks.filter((k) => k.status === "failed" || k.status === "warned");
  const badges = [
    isKey ? `<span class="badge key">key</span>` : "",
    c.notFit ? `<span class="badge failed">${formatNumber(c.notFit)} not ${escapeHtml(c.declaredType ?? "")}</span>` : "",
    ...failing.map((k) => `<span class="badge ${k.status}" title="${escapeHtml(k.detail)}">${escapeHtml(k.name)}</span>`),
  ].join("");
  const stats = [
    `nulls <b${c.nulls ? " class=nul" : ""}>${formatNumber(c.nulls)}</b>${c.nulls ? ` ${percent(c.nullRatio)}` : ""}`,
    `distinct <b>${c.distinctExact ? "" : "≈"}${formatNumber(c.distinct)}</b>`,
    c.empty ? `blank <b>${formatNumber(c.empty)}</b>` : "",
    c.zeros ? `zeros <b>${formatNumber(c.zeros)}</b>` : "",
    c.negatives ? `negative <b>${formatNumber(c.negatives)}</b>` : "",
    typeof c.mean === "number" ? `mean <b>${formatNumber(c.mean)}</b>${typeof c.stddev === "number" ? ` ± ${formatNumber(c.stddev)}` : ""}` : "",
    c.length ? `length <b>${valueText(c.length.min)}–${valueText(c.length.max)}</b>` : "",
  ].filter(Boolean).join(" · ");
  const range = c.histogram ? "" : c.min !== null || c.max !== null ? `<div class=range><span>min ${clipped(valueText(c.min), VALUE_SHOWN)}</span><span>max ${clipped(valueText(c.max), VALUE_SHOWN)}</span></div>` : "";
  return `<div class=card data-column="${escapeHtml(name)}"><div class=ch><b>${escapeHtml(name)}</b><span class=type>${escapeHtml(c.type)}</span>${badges}</div>
<p class=st>${stats}</p>${histogram(name, c, checks)}${range}${topValues(c, rows)}</div>`;
}

function histogram(name: string, c: ColumnProfile, checks: readonly CheckResult[]): string {
  if (!c.histogram) return "";
  const ranges = checks.flatMap((k) => (k.range ? [k.range] : []));
  const number = (v: number | string) => (typeof v === "number" ? v : Date.parse(v));
  // A bin wholly outside a between check's bounds holds only values that fail it.
  const bad = (from: number | string, to: number | string) =>
    ranges.some((r) => (r.min !== undefined && number(to) <= number(r.min)) || (r.max !== undefined && number(from) > number(r.max)));
  const quantile = (q: string) => (c.quantiles?.[q] ?? null) === null ? "" : `<span>p${q.slice(1)} ${clipped(valueText(c.quantiles![q]), VALUE_SHOWN)}</span>`;
  return `<figure>${histogramSvg(name, c.histogram, bad)}<figcaption><span>min ${clipped(valueText(c.min), VALUE_SHOWN)}</span>${quantile("p50")}<span>max ${clipped(valueText(c.max), VALUE_SHOWN)}</span></figcaption></figure>`;
}

/** The top values as rows whose background is a bar of their share of the rows (end tags left out: a 300-column page carries 1,500 of them). */
function topValues(c: ColumnProfile, rows: number): string {
  if (!c.topValues.length) return c.distinct ? `<div class=note>no value repeats in these rows</div>` : "";
  const shown = c.topValues.slice(0, TOP_VALUES_SHOWN);
  const lines = shown.map((t) => {
    const share = rows ? t.count / rows : 0;
    return `<tr><td ${barStyle(share)}>${t.value === null ? "<i>null</i>" : clipped(t.value, VALUE_SHOWN)}<td>${formatNumber(t.count)}<td>${percent(share)}`;
  });
  const more = c.topValues.length > shown.length ? `<tr><td colspan=3 class=note>+${c.topValues.length - shown.length} in profile.json` : "";
  return `<table class=top>${lines.join("")}${more}</table>`;
}
