/**
 * The status page of `etl report`: one HTML file with its CSS inline and no script, image, font
 * or link that would fetch anything, so it opens from a laptop's disk, a CI artefact or an
 * e-mail alike. Sections: the header (overall status, when, what was read), the schedule grid,
 * freshness and completeness, dead letters, quarantine, and the problem slots the grid links to.
 */
import type { BacklogSection } from "./backlog";
import type { FreshnessSection } from "./freshness";
import { gridHtml, legendHtml, problemSlotsHtml } from "./grid_html";
import { age, anchor, command, esc, formatDuration, shortDuration, time } from "./html";
import { plural, type Overall } from "./overall";
import { STYLE } from "./style";
import type { ScheduleRow } from "./slot_grid";

export interface StatusReport {
  generatedAt: Date;
  /** host:port/database, or embedded:<dir>: never a password. */
  database: string;
  /** The declared buckets read and where from (after --bucket-map). */
  buckets: Array<{ bucket: string; url: string }>;
  days: string[];
  graceMs: number;
  grid: ScheduleRow[];
  freshness: FreshnessSection;
  backlog: BacklogSection;
  overall: Overall;
}

export function statusPage(r: StatusReport): string {
  return [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>etl status: ${esc(r.overall.status)} (${esc(time(r.generatedAt))})</title><style>${STYLE}</style></head>`,
    `<body>`,
    headerHtml(r),
    `<nav><a href="#schedules">Schedules</a><a href="#freshness">Freshness &amp; completeness</a><a href="#dead-letters">Dead letters</a><a href="#quarantine">Quarantine</a><a href="#problem-slots">Problem slots</a></nav>`,
    `<main>`,
    `<section id="schedules"><h2>Schedules: the last ${esc(plural(r.days.length, "day"))} (UTC)</h2>`,
    `<p class="note">Each slot judged by schedule_audit's rules against the run ledger (a run that started more than ${esc(shortDuration(r.graceMs))} after its slot is late). Hover a cell for its runs; a problem cell links to its line under <a href="#problem-slots">Problem slots</a>.</p>`,
    legendHtml(),
    gridHtml(r.grid, r.days),
    `</section>`,
    freshnessHtml(r.freshness, r.generatedAt),
    deadLettersHtml(r.backlog, r.generatedAt),
    quarantineHtml(r.backlog, r.generatedAt),
    `<section id="problem-slots"><h2>Problem slots</h2>${problemSlotsHtml(r.grid)}</section>`,
    `</main></body></html>`,
    "",
  ].join("\n");
}

function headerHtml(r: StatusReport): string {
  const findings = r.overall.findings.length
    ? `<ul class="findings">${r.overall.findings.map((f) => `<li class="${f.level}">${esc(f.text)}</li>`).join("")}</ul>`
    : `<p class="findings">Every slot on time, every source fresh, nothing waiting.</p>`;
  const buckets = r.buckets.map((b) => `${esc(b.bucket)}${b.url === b.bucket || b.url === `s3://${b.bucket}` ? "" : ` = ${esc(b.url)}`}`).join(", ");
  return `<header class="overall ${r.overall.status}" id="top"><div class="status" data-status="${r.overall.status}">${esc(r.overall.status)}</div><div><h1>etl-platform status</h1>
<p class="read">generated ${esc(time(r.generatedAt))} · database ${esc(r.database)} · buckets ${buckets || "none"}</p>${findings}</div></header>`;
}

const FRESHNESS_BADGE: Record<string, string> = { pass: "ok", warn: "warn", error: "error", "runtime error": "error", "never delivered": "muted" };

function freshnessHtml(f: FreshnessSection, now: Date): string {
  const rows = f.sources
    .map(({ source, result }) => {
      const lag = result.max_loaded_at_time_ago_in_s;
      const detail = result.error ?? Object.entries(result.detail ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ");
      const unbuilt = result.unbuilt ? `; bronze of dt=${result.unbuilt.partition} unbuilt for ${formatDuration(result.unbuilt.waiting_in_s * 1000)} (${result.unbuilt.files} files)` : "";
      return `<tr id="${anchor("freshness", source.name)}" data-source="${esc(source.name)}" data-status="${esc(result.status)}"><td><b>${esc(source.name)}</b><div class="meta">${esc(source.description)}</div></td><td>${esc(source.kind)}</td><td><span class="badge s-${FRESHNESS_BADGE[result.status]}">${esc(result.status)}</span></td>
<td class="when">${result.max_loaded_at ? `${esc(time(result.max_loaded_at))}<div class="meta">${esc(age(result.max_loaded_at, now))}</div>` : `<span class="muted">never</span>`}</td><td>${lag === null ? "-" : esc(formatDuration(lag * 1000))}</td><td>${esc(source.warnAfter)} / ${esc(source.errorAfter)}</td><td class="detail">${esc(detail + unbuilt)}</td></tr>`;
    })
    .join("");
  const last = f.lastSourcesRun;
  const lastRun = last
    ? `The ledger's last freshness_monitor run over the sources: ${esc(last.status)}, finished ${esc(last.finishedAt ? age(last.finishedAt, now) : "-")} (${command("etl", "runs", "show", last.runId)}).`
    : "freshness_monitor has not run over the sources yet (etl_job_runs).";
  return `<section id="freshness"><h2>Freshness &amp; completeness</h2>
<p class="note">Every declared source measured at ${esc(time(f.measuredAt))} by freshness_monitor's own checks. ${lastRun}</p>
<table class="list"><thead><tr><th>source</th><th>kind</th><th>status</th><th>last loaded</th><th>lag</th><th>warn / error after</th><th>detail</th></tr></thead><tbody>${rows}</tbody></table>
<h3 id="completeness">Completeness of get_s3_files</h3>${completenessHtml(f, now)}</section>`;
}

function completenessHtml(f: FreshnessSection, now: Date): string {
  const c = f.completeness;
  if (!c) return `<p class="muted">No completeness check in the ledger yet: ${command("etl", "freshness_monitor", "--all-agencies", "--destination-bucket", "<bucket>")}.</p>`;
  const state = c.run.status === "succeeded" ? "ok" : c.run.status === "partial" || c.run.status === "failed" ? "error" : "warn";
  const figures = (x: { expected: number; present: number; missing: number; sizeMismatch: number; unexpected: number }) =>
    `<td>${x.expected}</td><td>${x.present}</td><td>${x.missing}</td><td>${x.sizeMismatch}</td><td>${x.unexpected}</td>`;
  const agencies = c.byAgency.map((a) => `<tr data-agency="${esc(a.agencyId)}"><td>agency ${esc(a.agencyId)}</td>${figures(a)}</tr>`).join("");
  return `<p><span class="badge s-${state}" id="completeness-status">${esc(c.run.status)}</span> the last check finished ${esc(c.run.finishedAt ? `${time(c.run.finishedAt)}, ${age(c.run.finishedAt, now)}` : "-")}: ${(c.ratio * 100).toFixed(1)}% of the expected attachments present (${command("etl", "runs", "show", c.run.runId)}).</p>
<table class="list narrow" id="completeness-figures"><thead><tr><th></th><th>expected</th><th>present</th><th>missing</th><th>changed</th><th>unexpected</th></tr></thead><tbody><tr class="total"><td>all</td>${figures(c)}</tr>${agencies}</tbody></table>`;
}

function deadLettersHtml(b: BacklogSection, now: Date): string {
  const { byJob, listed, open } = b.deadLetters;
  if (!open) return `<section id="dead-letters"><h2>Dead letters</h2><p class="ok-text">No open dead letter.</p></section>`;
  const summary = byJob
    .map((row) => `<tr data-job="${esc(row.job)}" data-dataset="${esc(row.dataset ?? "")}" data-open="${row.open}"><td><a href="#${anchor("dlq", row.job)}">${esc(row.job)}</a></td><td>${esc(row.dataset ?? "-")}</td><td class="num">${row.open}</td><td class="when">${esc(time(row.oldestFailedAt))}<div class="meta">${esc(age(row.oldestFailedAt, now))}</div></td><td>${esc(age(row.lastFailedAt, now))}</td><td>${command("etl", "dlq", "list", "--job", row.job)}</td></tr>`)
    .join("");
  const jobs = [...new Set(listed.map((l) => l.job))];
  const lists = jobs
    .map((job) => {
      const letters = listed.filter((l) => l.job === job);
      const items = letters
        .map((l) => `<tr id="${anchor("dlq", job, String(l.id))}"><td>${esc(l.itemKey)}</td><td class="num">${l.attempts}</td><td class="when">${esc(time(l.firstFailedAt))}</td><td>${esc(age(l.lastFailedAt, now))}</td><td class="detail">${esc(l.error)}</td><td>${command("etl", "runs", "show", l.lastRunId)}<br>${command("etl", "dlq", "replay", job, "--item", l.itemKey)}</td></tr>`)
        .join("");
      return `<h3 id="${anchor("dlq", job)}">${esc(job)}</h3><table class="list"><thead><tr><th>item</th><th>attempts</th><th>first failed</th><th>last failed</th><th>error</th><th>act</th></tr></thead><tbody>${items}</tbody></table>`;
    })
    .join("");
  const more = open > listed.length ? `<p class="note">The ${listed.length} most recent of ${open} are listed; ${command("etl", "dlq", "list")} shows them all.</p>` : "";
  return `<section id="dead-letters"><h2>Dead letters: <span id="dead-letters-open">${open}</span> open</h2>
<table class="list"><thead><tr><th>job</th><th>dataset</th><th>open</th><th>oldest</th><th>last failure</th><th>list</th></tr></thead><tbody>${summary}</tbody></table>${more}${lists}</section>`;
}

function quarantineHtml(b: BacklogSection, now: Date): string {
  const total = b.quarantine.reduce((sum, q) => sum + q.files.length, 0);
  const buckets = b.quarantine
    .map((q) => {
      if (q.error) return `<p class="error-text" data-bucket="${esc(q.bucket)}">${esc(q.url)}: could not be read (${esc(q.error)})</p>`;
      if (!q.files.length) return `<p class="ok-text" data-bucket="${esc(q.bucket)}" data-quarantined="0">Nothing quarantined in ${esc(q.url)}.</p>`;
      const oldest = q.files[0]!;
      const rows = q.files
        .map((file) => `<tr id="${anchor("quarantine", q.bucket, file.quarantineKey)}"><td>${esc(file.key)}<div class="meta">${esc(file.quarantineKey)}</div></td><td>${esc(file.job)}</td><td>${esc(file.rule)}</td><td class="num">${file.size}</td><td class="when">${esc(time(file.quarantinedAt))}<div class="meta">${esc(age(file.quarantinedAt, now))}</div></td><td class="detail">${esc(file.detail)}</td><td>${command("etl", "quarantine", "release", file.quarantineKey, "--bucket", q.url, "--reason", "<why>")}</td></tr>`)
        .join("");
      return `<h3 data-bucket="${esc(q.bucket)}" data-quarantined="${q.files.length}">${esc(q.url)}: ${esc(plural(q.files.length, "file"))}, the oldest ${esc(age(oldest.quarantinedAt, now))}</h3>
<p class="note">${command("etl", "quarantine", "list", "--bucket", q.url)}</p>
<table class="list"><thead><tr><th>file</th><th>job</th><th>rule</th><th>bytes</th><th>quarantined</th><th>detail</th><th>release</th></tr></thead><tbody>${rows}</tbody></table>`;
    })
    .join("");
  return `<section id="quarantine"><h2>Quarantine: <span id="quarantined">${total}</span> ${total === 1 ? "file" : "files"}</h2>${buckets || `<p class="muted">No bucket to read: no schedule works on a bucket in place.</p>`}</section>`;
}
