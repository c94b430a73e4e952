import { columnCards } from "./html_columns";
import { checksTable, rejectsSection, verdictOf } from "./html_checks";
import { escapeHtml, formatNumber, percent, shortTime, timeRelative } from "./html_format";
import { trendTable } from "./html_trend";
import type { ProfileDocument } from "./profile_document";

export { escapeHtml } from "./html_format";

const FILES_SHOWN = 20;

const STYLE = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--soft:#eaeef2;--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e}
*{box-sizing:border-box}
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:#fff}
main{max-width:1440px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:15px;margin:26px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h2 small,.muted,.sub{color:var(--muted);font-weight:400}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;color:#424a53;word-break:break-all}
.banner{display:flex;align-items:center;gap:18px;flex-wrap:wrap;padding:12px 18px;border-radius:8px;margin:14px 0 10px;border:1px solid}
.banner.pass{background:#dafbe1;border-color:#4ac26b}.banner.warn{background:#fff8c5;border-color:#d4a72c}.banner.fail{background:#ffebe9;border-color:#ff8182}
.verdict{font-size:26px;font-weight:800;letter-spacing:.05em}
.pass .verdict{color:var(--pass)}.warn .verdict{color:var(--warn)}.fail .verdict{color:var(--fail)}
.counts{display:flex;gap:14px;font-size:14px;align-items:baseline}.counts b{font-size:18px}.which{color:var(--muted)}
.tiles{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 4px}
.tile{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:120px}
.tile b{display:block;font-size:18px;font-variant-numeric:tabular-nums}.tile span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;text-align:left;vertical-align:top;border-bottom:1px solid var(--soft)}
th{font-weight:600;color:var(--muted);font-size:12px}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
small{color:var(--muted)}
.pill{display:inline-block;min-width:40px;text-align:center;padding:1px 6px;border-radius:10px;font-size:11px;font-weight:700;color:#fff}
.pill.passed{background:var(--pass)}.pill.warned{background:#bf8700}.pill.failed{background:var(--fail)}.pill.skipped{background:#8c959f}
tr.failed td:first-child{box-shadow:inset 3px 0 var(--fail)}tr.warned td:first-child{box-shadow:inset 3px 0 #d4a72c}
.bar{background:linear-gradient(90deg,var(--c,#ddf4ff) var(--w),transparent var(--w))}
.bar.null{--c:#ffb77c}.bar.pass{--c:#4ac26b}.bar.rej{--c:#ff8182}
.bar.null,.bar.pass,.bar.rej{background-size:100% 3px;background-repeat:no-repeat;background-position:0 calc(100% - 2px)}
.bad{color:var(--fail);font-weight:600;word-break:break-word}
.k{color:var(--muted)}
.rows ul,.rejects ul,.inputs{margin:2px 0 0;padding-left:16px}
.checks td:nth-child(2){white-space:nowrap}
.scroll{overflow-x:auto}
table.trend{width:auto;min-width:50%}.trend td,.trend th{padding:3px 10px}
.trend th:first-child{white-space:nowrap;font-weight:400;color:var(--fg)}
.trend th.now,.trend td[data-now]{font-weight:700;border-left:2px solid #54aeff}.trend th.now{color:var(--fg)}
.trend td.st{text-align:center;font-weight:700}
.st.passed{color:var(--pass)}.st.warned{color:var(--warn);background:#fff8c5}.st.failed{color:#fff;background:var(--fail)}.st.skipped{color:var(--muted)}
svg path{fill:none;stroke:#54aeff}svg path.bad{stroke:var(--fail)}svg path.now{stroke:#0969da}.hist path{stroke-width:9}.spark path{stroke-width:6}
.hist{border-bottom:1px solid #8c959f}
.spark{display:block}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.ch{display:flex;gap:6px;align-items:baseline;flex-wrap:wrap;margin-bottom:4px}.ch b{font-size:14px}
.type{color:var(--muted);font:11px ui-monospace,monospace}
.badge{font-size:11px;border-radius:4px;padding:0 5px;border:1px solid var(--line)}
.badge.failed{color:var(--fail);border-color:#ff8182}.badge.warned{color:var(--warn);border-color:#d4a72c}.badge.key{color:#0969da;border-color:#54aeff}
.st{margin:0 0 4px;color:var(--muted);font-size:12px}.st b{color:var(--fg);font-weight:600;font-variant-numeric:tabular-nums}.st b.nul{color:#bc4c00}
figure{margin:4px 0 6px}.hist{display:block;width:100%;height:44px}
figcaption,.range{display:flex;justify-content:space-between;color:var(--muted);font-size:11px;gap:8px;font-variant-numeric:tabular-nums}
.range{margin-bottom:6px}
.top{margin-top:2px}.top td{padding:1px 6px;border:0;font-size:12px;text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;width:1%}
.top td:first-child{text-align:left;width:auto;max-width:200px;overflow:hidden;text-overflow:ellipsis;background:linear-gradient(90deg,#ddf4ff var(--w),transparent var(--w))}
.top td.note{text-align:left;background:none}
.note{color:var(--muted);font-size:12px}
ul.changes{margin:0;padding-left:18px}
details summary{cursor:pointer;color:var(--muted)}
`;

/** profile.html: one self-contained page (inline CSS and SVG, no script, no external URL), the verdict first. */
export function renderProfileHtml(p: ProfileDocument): string {
  const title = p.dataset ? `${p.dataset}${p.partition ? ` · dt=${p.partition}` : ""}` : p.source.files[0]?.replace(/[^/]*$/, "") || p.source.store;
  const key = p.duplicates.keys?.columns ?? [];
  const sections = [
    p.checks.length ? `<h2>Checks <small>${p.checks.length}</small></h2>${checksTable(p.checks, key)}` : "",
    p.rejects ? `<h2>Rejected by bronze_to_silver <small>by rule</small></h2>${rejectsSection(p.rejects)}` : "",
    p.trend?.length ? `<h2>Trend <small>the last ${p.trend.length + 1} profiles</small></h2>${trendTable(p)}` : "",
    `<h2>Changes since ${p.diff.against ? escapeHtml(p.diff.against.partition ?? shortTime(p.diff.against.generatedAt)) : "the previous profile"}</h2>${changes(p)}`,
    `<h2>Columns <small>${Object.keys(p.columns).length}</small></h2>${columnCards(p.columns, p.rows, p.checks, key)}`,
    `<h2>Source</h2>${source(p)}`,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(`${bannerWord(p)} · Profile ${title}`)}</title><style>${STYLE}</style></head>
<body><main>
<h1>Profile ${escapeHtml(title)}</h1>
<div class=sub>${subtitle(p)}</div>
${banner(p)}
${tiles(p)}
${sections.filter(Boolean).join("\n")}
</main></body></html>
`;
}

const bannerWord = (p: ProfileDocument) => verdictOf(p.checks).verdict.toUpperCase();

function subtitle(p: ProfileDocument): string {
  const built = p.source.manifest
    ? ` · partition built by run <code>${escapeHtml(p.source.manifest.runId)}</code>, committed ${escapeHtml(shortTime(p.source.manifest.committedAt))} (${timeRelative(p.source.manifest.committedAt, p.generatedAt)} this profile)`
    : "";
  return `profiled ${escapeHtml(shortTime(p.generatedAt))} by run <code>${escapeHtml(p.runId)}</code>${built}`;
}

function banner(p: ProfileDocument): string {
  const { verdict, counts } = verdictOf(p.checks);
  const count = (status: keyof typeof counts, word: string) => `<span data-status=${status}><b>${counts[status]}</b> ${word}</span>`;
  const text = !p.checks.length
    ? `<span>no declared checks</span>`
    : `${count("failed", "failed")}${count("warned", "warned")}${count("passed", "passed")}${counts.skipped ? count("skipped", "skipped") : ""}`;
  const failing = p.checks.filter((c) => c.status === "failed" || c.status === "warned").map((c) => escapeHtml(c.name));
  const which = failing.length ? `<span class=which>${failing.join(", ")}</span>` : "";
  return `<div id=banner class="banner ${verdict}"><span class=verdict>${verdict.toUpperCase()}</span><div class=counts>${text}${which}</div></div>`;
}

function tiles(p: ProfileDocument): string {
  const tile = (id: string, value: string, label: string) => `<div class=tile id="tile-${id}"><b>${value}</b><span>${label}</span></div>`;
  const keys = p.duplicates.keys;
  return `<div class=tiles>${[
    tile("rows", formatNumber(p.rows), "rows"),
    tile("columns", formatNumber(Object.keys(p.columns).length), "columns"),
    tile("duplicates", formatNumber(p.duplicates.rows), "duplicate rows"),
    keys ? tile("keys", formatNumber(keys.duplicatedKeys), `duplicated keys (${escapeHtml(keys.columns.join(", "))}) on ${formatNumber(keys.rowsWithDuplicatedKey)} rows`) : "",
    p.rejects ? tile("rejected", formatNumber(p.rejects.rows), `rejected by bronze_to_silver of ${formatNumber(p.rejects.rowsIn)}${p.rejects.rowsIn ? ` (${percent(p.rejects.rows / p.rejects.rowsIn)})` : ""}`) : "",
    p.rejects?.inputs.length ? tile("unreadable", formatNumber(p.rejects.inputs.length), "bronze files unreadable") : "",
  ].join("")}</div>`;
}

function changes(p: ProfileDocument): string {
  if (!p.diff.against) return `<div class=muted>no earlier profile to compare with</div>`;
  if (!p.diff.changes.length) return `<div class=muted>none above the thresholds</div>`;
  return `<ul class=changes>${p.diff.changes.map((c) => `<li>${escapeHtml(c.message)}</li>`).join("")}</ul>`;
}

function source(p: ProfileDocument): string {
  const files = p.source.files.slice(0, FILES_SHOWN).map((f) => `<li><code>${escapeHtml(f)}</code></li>`).join("");
  const more = p.source.files.length > FILES_SHOWN ? `<li class=muted>${p.source.files.length - FILES_SHOWN} more in profile.json</li>` : "";
  const timings = Object.entries(p.timings).map(([step, ms]) => `${escapeHtml(step)} ${formatNumber(ms)} ms`).join(" · ");
  return `<div>${p.source.files.length} ${p.source.format} file(s) in <code>${escapeHtml(p.source.store)}</code>${p.source.manifest ? ` · manifest <code>${escapeHtml(p.source.manifest.key)}</code>` : ""}</div>
<details><summary>files and timings</summary><ul>${files}${more}</ul><div class=muted>${timings}</div></details>`;
}
