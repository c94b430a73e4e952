import { escapeHtml, formatNumber, percent, shortTime } from "./html_format";
import type { CheckStatus, ProfileDocument, TrendPoint } from "./profile_document";
import { barStyle, sparklineSvg } from "./svg_charts";
import { trendPoint } from "./trend";

const LETTER: Record<CheckStatus, string> = { failed: "F", warned: "W", passed: "✓", skipped: "–" };

/**
 * The earlier profiles and this one side by side, oldest first: rows (and rows rejected) with a
 * sparkline, each check's status, and the null share of each column that had nulls in any of them.
 */
export function trendTable(document: ProfileDocument): string {
  const points: TrendPoint[] = [...(document.trend ?? []), trendPoint(document, "")];
  const labels = points.map((p) => p.partition ?? shortTime(p.generatedAt));
  const last = points.length - 1;
  const head = points.map((p, k) => `<th class="n${k === last ? " now" : ""}" title="${escapeHtml(`run ${p.runId}, ${p.generatedAt}`)}">${escapeHtml(labels[k]!.replace(/^\d{4}-/, ""))}</th>`).join("");
  // One cell per profile: `cell` gives its attributes and content; this profile's is marked.
  const cells = (cell: (p: TrendPoint) => [attributes: string, content: string]) =>
    points.map((p, k) => {
      const [attributes, content] = cell(p);
      return `<td${k === last ? " data-now" : ""}${attributes ? ` ${attributes}` : ""}>${content}</td>`;
    }).join("");
  const missing: [string, string] = ["class=muted", "·"];
  const lines = [`<tr data-series=rows><th>rows</th><td>${sparklineSvg("rows", points.map((p) => p.rows), labels)}</td>${cells((p) => ["class=n", formatNumber(p.rows)])}</tr>`];
  if (points.some((p) => p.rejected !== undefined)) {
    lines.push(`<tr data-series=rejected><th>rejected</th><td></td>${cells((p) => ["class=n", p.rejected === undefined ? "<span class=muted>–</span>" : formatNumber(p.rejected)])}</tr>`);
  }
  const checks = [...new Set(points.flatMap((p) => Object.keys(p.checks)))];
  for (const check of checks) {
    lines.push(`<tr data-check="${escapeHtml(check)}"><th>${escapeHtml(check)}</th><td></td>${cells((p) => {
      const status = p.checks[check];
      return status ? [`class="st ${status}" title=${status}`, LETTER[status]] : missing;
    })}</tr>`);
  }
  const columns = [...new Set(points.flatMap((p) => Object.keys(p.nullRatio)))];
  const nullable = columns.filter((c) => points.some((p) => (p.nullRatio[c] ?? 0) > 0));
  for (const column of nullable) {
    lines.push(`<tr data-nulls="${escapeHtml(column)}"><th>null % <b>${escapeHtml(column)}</b></th><td></td>${cells((p) => {
      const ratio = p.nullRatio[column];
      return ratio === undefined ? missing : [`class="n bar null" ${barStyle(ratio)}`, percent(ratio)];
    })}</tr>`);
  }
  const never = columns.length - nullable.length;
  const note = never ? `<div class=muted>${never} of ${columns.length} columns had no null in any of these profiles.</div>` : "";
  return `<div class=scroll><table class=trend><thead><tr><th></th><th></th>${head}</tr></thead><tbody>${lines.join("\n")}</tbody></table></div>${note}`;
}
