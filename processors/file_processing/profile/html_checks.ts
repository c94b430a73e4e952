import { passingPercent } from "./checks";
import { clipped, escapeHtml, formatNumber, percent, valueText } from "./html_format";
import type { CheckResult, CheckStatus, PartitionRejects } from "./profile_document";
import { barStyle } from "./svg_charts";

// Failing rows and rejects shown per check or rule; profile.json keeps --sample-rows, the failures and rejects files every one.
const ROWS_SHOWN = 5;
// A key column's value in a failing row (an id, a partner code) is context: cut. The value that broke the rule is shown whole.
const KEY_SHOWN = 32;
// The raw row of a reject, as context beside the value that broke the rule.
const ROW_SHOWN = 120;

export type Verdict = "pass" | "warn" | "fail";

/** FAIL when an error-level check failed, WARN when a warn-level one did, else PASS; with the checks in each state. */
export function verdictOf(checks: readonly CheckResult[]): { verdict: Verdict; counts: Record<CheckStatus, number> } {
  const counts: Record<CheckStatus, number> = { failed: 0, warned: 0, passed: 0, skipped: 0 };
  for (const c of checks) counts[c.status]++;
  return { verdict: counts.failed ? "fail" : counts.warned ? "warn" : "pass", counts };
}

const ORDER: Record<CheckStatus, number> = { failed: 0, warned: 1, passed: 2, skipped: 3 };
const LABEL: Record<CheckStatus, string> = { failed: "FAIL", warned: "WARN", passed: "PASS", skipped: "SKIP" };

// Counted in rows, so a passing share means something; the others are about the whole table.
const ROW_KINDS = new Set(["not_null", "unique", "in_set", "regex", "between"]);

export const statusPill = (status: CheckStatus) => `<span class="pill ${status}">${LABEL[status]}</span>`;

/** The checks, failing ones first; a failing row check with its failing rows, the fields it read shown whole. */
export function checksTable(checks: readonly CheckResult[], key: readonly string[]): string {
  const sorted = [...checks].sort((a, b) => ORDER[a.status] - ORDER[b.status]);
  const rows = sorted.map((c) => {
    const passing = ROW_KINDS.has(c.kind) && c.evaluated
      ? `<td class="n bar pass" ${barStyle(c.passingShare)}>${passingPercent(c.passingShare)}${c.mostly < 1 ? ` <small>≥ ${passingPercent(c.mostly)}</small>` : ""}</td>`
      : `<td class=n></td>`;
    const failing = c.failing ? `${formatNumber(c.failing)} <small>of ${formatNumber(c.evaluated)}</small>` : `<span class=muted>0</span>`;
    return `<tr class=${c.status} data-check="${escapeHtml(c.name)}"><td>${statusPill(c.status)}</td><td><b>${escapeHtml(c.name)}</b><div class=muted>${escapeHtml(c.kind)}${c.columns.length ? ` · ${escapeHtml(c.columns.join(", "))}` : ""} · ${c.severity}</div></td><td class=n>${failing}</td>${passing}<td>${escapeHtml(c.detail)}${failingRows(c, key)}</td></tr>`;
  });
  return `<table class=checks><thead><tr><th></th><th>check</th><th class=n>failing</th><th class=n>passing</th><th>detail</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>`;
}

/** A value that broke a rule, whole: null in italics, a blank or space-padded text quoted so its spaces show. */
function shownValue(value: unknown): string {
  if (value === null || value === undefined) return "<i>null</i>";
  if (typeof value === "string" && (value.trim() !== value || value === "")) return escapeHtml(JSON.stringify(value));
  return escapeHtml(valueText(value));
}

/** The sample of a failing row check: per row its key (cut) and the checked fields as `field: value`, whole. */
function failingRows(c: CheckResult, key: readonly string[]): string {
  if (!c.sample?.length) return "";
  const lines = c.sample.slice(0, ROWS_SHOWN).map((row) => {
    const context = Object.keys(row).filter((f) => !c.columns.includes(f) && key.includes(f));
    const keyText = context.map((f) => `${escapeHtml(f)} ${clipped(valueText(row[f]), KEY_SHOWN)}`).join(" · ");
    const offending = c.columns.filter((f) => f in row).map((f) => `<b class=bad>${escapeHtml(f)}: ${shownValue(row[f])}</b>`).join(" ");
    return `<li>${keyText ? `<span class=k>${keyText}</span> ` : ""}${offending}</li>`;
  });
  const file = c.failuresKey ? ` · all in <code>${escapeHtml(c.failuresKey)}</code>` : "";
  return `<div class=rows><div class=muted>${Math.min(c.sample.length, ROWS_SHOWN)} of ${formatNumber(c.failing)} failing rows${file}</div><ul>${lines.join("")}</ul></div>`;
}

/** bronze_to_silver's rejects of the partition, by rule: rows, share of the rejected, the rejected values whole. */
export function rejectsSection(r: PartitionRejects): string {
  const summary = `${formatNumber(r.rows)} of ${formatNumber(r.rowsIn)} bronze rows rejected${r.rowsIn ? ` (${percent(r.rows / r.rowsIn)})` : ""}${r.key ? ` · all in <code>${escapeHtml(r.key)}</code>` : ""}`;
  const inputs = r.inputs.length
    ? `<ul class=inputs>${r.inputs.map((i) => `<li><b class=bad>${escapeHtml(i.key)}</b> <span class=muted>${escapeHtml(i.rule)}: ${escapeHtml(i.reason)}</span></li>`).join("")}</ul>`
    : "";
  if (!r.byRule.length) return `<div class="muted" id=rejects-summary>${summary}</div>${inputs}`;
  const rows = r.byRule.map((rule) => {
    const samples = rule.sample.slice(0, ROWS_SHOWN).map((s) => {
      const row = s.row ? ` <span class=k>${clipped(JSON.stringify(s.row), ROW_SHOWN)}</span>` : "";
      return `<li><b class=bad>${escapeHtml(rule.column ?? "row")}: ${shownValue(s.value)}</b>${row}${s.file ? ` <span class=muted>${escapeHtml(s.file.slice(s.file.lastIndexOf("/") + 1))}</span>` : ""}</li>`;
    });
    return `<tr data-rule="${escapeHtml(rule.rule)}" data-column="${escapeHtml(rule.column ?? "")}"><td><b>${escapeHtml(rule.rule)}</b></td><td>${escapeHtml(rule.column ?? "")}</td><td class="n bar rej" ${barStyle(r.rows ? rule.rows / r.rows : 0)}>${formatNumber(rule.rows)}</td><td><ul>${samples.join("")}</ul></td></tr>`;
  });
  return `<div class=muted id=rejects-summary>${summary}</div><table class=rejects><thead><tr><th>rule</th><th>column</th><th class=n>rows</th><th>rejected values</th></tr></thead><tbody>${rows.join("\n")}</tbody></table>${inputs}`;
}
