import { passingPercent } from "./checks";
import type { CheckResult, ColumnProfile, ProfileDocument } from "./profile_document";

// What a person reads in a browser; profile.json has everything. Caps keep a 300-column profile
// at about 1 KB a column.
const TOP_VALUES_SHOWN = 5;
const TEXT_SHOWN = 40;
const SAMPLE_ROWS_SHOWN = 5;

const STYLE = `
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}
.meta{color:#555}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.passed{color:#176f2c}.warned{color:#9a6700}.failed{color:#b3261e;font-weight:600}.skipped{color:#777}
.bar{display:inline-block;height:8px;background:#e05d44;vertical-align:middle;margin-left:4px}
code{font-size:12px;color:#444}
ul{margin:0;padding-left:18px}
`;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const clip = (text: string) => (text.length > TEXT_SHOWN ? `${text.slice(0, TEXT_SHOWN - 1)}…` : text);
const show = (value: unknown) => (value === null || value === undefined ? "" : escapeHtml(clip(typeof value === "number" ? formatNumber(value) : String(value))));

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return Math.abs(n) >= 1000 ? n.toFixed(1) : Number(n.toPrecision(4)).toString();
}

const percent = (share: number) => `${(share * 100).toFixed(share > 0 && share < 0.01 ? 2 : 1)}%`;

/** profile.html: one self-contained page (inline CSS, no script, no external URL). */
export function renderProfileHtml(p: ProfileDocument): string {
  const title = p.dataset ? `${p.dataset}${p.partition ? ` dt=${p.partition}` : ""}` : p.source.files[0]?.replace(/[^/]*$/, "") || p.source.store;
  const failing = p.checks.filter((c) => c.status === "failed" || c.status === "warned").length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Profile ${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>Profile ${escapeHtml(title)}</h1>
<div class="meta">${formatNumber(p.rows)} rows, ${Object.keys(p.columns).length} columns, ${p.source.files.length} ${p.source.format} file(s) in ${escapeHtml(p.source.store)}; generated ${escapeHtml(p.generatedAt)} by run ${escapeHtml(p.runId)}${p.source.manifest ? `; partition built by run ${escapeHtml(p.source.manifest.runId)}` : ""}</div>
<div class="meta">duplicate rows ${formatNumber(p.duplicates.rows)}${p.duplicates.keys ? `; key (${escapeHtml(p.duplicates.keys.columns.join(", "))}): ${formatNumber(p.duplicates.keys.duplicatedKeys)} duplicated, on ${formatNumber(p.duplicates.keys.rowsWithDuplicatedKey)} rows` : ""}</div>
${p.checks.length ? `<h2>Checks: ${p.checks.length - failing} of ${p.checks.length} pass</h2>${checksTable(p.checks)}` : ""}
<h2>Changes since ${p.diff.against ? escapeHtml(p.diff.against.partition ?? p.diff.against.generatedAt) : "(no earlier profile)"}</h2>
${p.diff.changes.length ? `<ul>${p.diff.changes.map((c) => `<li>${escapeHtml(c.message)}</li>`).join("")}</ul>` : "<div class=meta>none above the thresholds</div>"}
<h2>Columns</h2>
${columnsTable(p.columns)}
</body></html>
`;
}

function checksTable(checks: readonly CheckResult[]): string {
  const rows = checks.map((c) => {
    const sample = c.sample?.length ? `<details><summary>${c.sample.length} failing rows</summary><code>${c.sample.slice(0, SAMPLE_ROWS_SHOWN).map((r) => escapeHtml(clip(JSON.stringify(r)))).join("<br>")}</code></details>` : "";
    const file = c.failuresKey ? `<div><code>${escapeHtml(c.failuresKey)}</code></div>` : "";
    return `<tr><td class="${c.status}">${c.status}</td><td>${escapeHtml(c.name)}</td><td>${c.severity}</td><td class=n>${formatNumber(c.failing)}</td><td class=n>${passingPercent(c.passingShare)}</td><td class=n>${passingPercent(c.mostly)}</td><td>${escapeHtml(c.detail)}${sample}${file}</td></tr>`;
  });
  return `<table><tr><th>status</th><th>check</th><th>severity</th><th>failing</th><th>passing</th><th>mostly</th><th>detail</th></tr>${rows.join("\n")}</table>`;
}

function columnsTable(columns: Record<string, ColumnProfile>): string {
  const rows = Object.entries(columns).map(([name, c]) => {
    const nulls = `${formatNumber(c.nulls)} (${percent(c.nullRatio)})<span class=bar style="width:${Math.round(c.nullRatio * 40)}px"></span>`;
    const spread = typeof c.mean === "number" ? `${formatNumber(c.mean)}${typeof c.stddev === "number" ? ` ± ${formatNumber(c.stddev)}` : ""}` : "";
    const quantiles = c.quantiles ? [c.quantiles.p05, c.quantiles.p50, c.quantiles.p95].map(show).join(" / ") : "";
    const top = c.topValues.slice(0, TOP_VALUES_SHOWN).map((t) => `${show(t.value)} <span class=meta>${formatNumber(t.count)}</span>`).join("<br>");
    const length = c.length ? `${show(c.length.min)} / ${show(c.length.mean)} / ${show(c.length.max)}` : "";
    const flags = [
      c.empty ? `${formatNumber(c.empty)} blank` : "",
      c.zeros ? `${formatNumber(c.zeros)} zero` : "",
      c.negatives ? `${formatNumber(c.negatives)} negative` : "",
      c.notFit ? `<span class=failed>${formatNumber(c.notFit)} not ${c.declaredType}</span>` : "",
    ].filter(Boolean).join("<br>");
    return `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(c.type)}</td><td class=n>${nulls}</td><td class=n>${c.distinctExact ? "" : "≈"}${formatNumber(c.distinct)}</td><td>${show(c.min)}</td><td>${show(c.max)}</td><td class=n>${spread}</td><td>${quantiles}</td><td>${top}</td><td>${length}</td><td>${flags}</td></tr>`;
  });
  return `<table><tr><th>column</th><th>type</th><th>nulls</th><th>distinct</th><th>min</th><th>max</th><th>mean ± sd</th><th>p05 / p50 / p95</th><th>top values</th><th>length min / mean / max</th><th>notes</th></tr>${rows.join("\n")}</table>`;
}
