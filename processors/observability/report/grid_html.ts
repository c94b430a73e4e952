/**
 * The report's schedule grid as HTML: a row per schedule (and shard), a strip of cells per day,
 * each cell coloured by its state with a title naming its runs; a problem cell links to its line
 * in the table of problem slots below, which names each run and the command that shows it.
 */
import { anchor, clock, command, esc, formatDuration, slotTime, time } from "./html";
import { BREACH_KINDS, WARNING_KINDS, plural } from "./overall";
import type { SlotRun } from "../../../repositories/slot_runs";
import type { CellKind, ScheduleRow, SlotCell } from "./slot_grid";

export const CELL_LABELS: Record<CellKind, string> = {
  on_time: "on time",
  late: "late",
  healed: "healed",
  missed: "missed",
  failed: "failed",
  doubled: "doubled",
  lost: "lost",
  running: "running",
  not_yet_due: "not yet due",
  not_deployed: "before first run",
};

const LEGEND: Record<CellKind, string> = {
  on_time: "a run succeeded, started within the grace",
  late: "succeeded, started after the grace",
  healed: "missed or failed, rebuilt by a later slot's lookback",
  missed: "no run worked on the slot",
  failed: "every attempt failed",
  doubled: "two runs at once, or two successes",
  lost: "its run died without finishing",
  running: "a run is working on it",
  not_yet_due: "the slot is to come, or younger than the grace",
  not_deployed: "before the schedule's first run ever",
};

// A day strip shows its cells' labels while they fit: a daily or four-times-a-day schedule.
const LABELLED_UP_TO = 4;
const SPACED_UP_TO = 96;

const isProblem = (kind: CellKind) => BREACH_KINDS.has(kind) || WARNING_KINDS.has(kind) || kind === "running";

/**
 * The lines of the problem-slot table of a row: one per problem cell, except that a run of
 * consecutive missed slots with no run at all is one line (a five-minute schedule that stopped
 * misses 288 slots a day). Each line's anchor, and the cells that link to it.
 */
interface ProblemLine {
  anchor: string;
  cells: SlotCell[];
}

function problemLines(row: ScheduleRow): ProblemLine[] {
  const lines: ProblemLine[] = [];
  let previous: SlotCell | undefined;
  for (const cell of row.days.flatMap((d) => d.cells)) {
    const emptyMiss = cell.kind === "missed" && !cell.runs.length;
    const last = lines.at(-1);
    if (emptyMiss && last && previous && last.cells.at(-1) === previous && previous.kind === "missed" && !previous.runs.length) last.cells.push(cell);
    else if (isProblem(cell.kind)) lines.push({ anchor: anchor("slot", row.id, row.shard ?? "", new Date(cell.slot).toISOString()), cells: [cell] });
    previous = cell;
  }
  return lines;
}

function anchorsOf(row: ScheduleRow): Map<SlotCell, string> {
  return new Map(problemLines(row).flatMap((line) => line.cells.map((cell) => [cell, line.anchor] as const)));
}

export function legendHtml(): string {
  return `<ul class="legend">${Object.entries(CELL_LABELS)
    .map(([kind, label]) => `<li title="${esc(LEGEND[kind as CellKind])}"><span class="swatch k-${kind}"></span>${esc(label)}<small>${esc(LEGEND[kind as CellKind])}</small></li>`)
    .join("")}</ul>`;
}

export function gridHtml(rows: readonly ScheduleRow[], days: readonly string[]): string {
  const head = `<tr><th class="schedule">schedule</th>${days.map((d) => `<th class="day">${esc(d)}<div class="ticks"><span>00</span><span>06</span><span>12</span><span>18</span></div></th>`).join("")}<th class="summary">slots</th></tr>`;
  return `<table class="grid"><thead>${head}</thead><tbody>${rows.map(rowHtml).join("")}</tbody></table>`;
}

function rowHtml(row: ScheduleRow): string {
  const cells = row.days.flatMap((d) => d.cells);
  const name = `<span class="id">${esc(row.id)}</span>${row.shard ? ` <span class="shard">shard ${esc(row.shard)}</span>` : ""}`;
  const meta = `<div class="meta">${esc(row.cron)}${row.timeZone === "UTC" ? "" : ` ${esc(row.timeZone)}`}${row.firstSlot ? "" : ` · <b>never ran</b>`}</div>`;
  const anchors = anchorsOf(row);
  const strips = row.days.map((d) => `<td class="day">${stripHtml(row, d.cells, anchors)}</td>`).join("");
  return `<tr data-row="${esc(row.id)}${row.shard ? ` ${esc(row.shard)}` : ""}"><th class="schedule">${name}${meta}</th>${strips}<td class="summary">${summaryHtml(cells)}</td></tr>`;
}

function stripHtml(row: ScheduleRow, cells: readonly SlotCell[], anchors: ReadonlyMap<SlotCell, string>): string {
  if (!cells.length) return `<div class="strip empty">no slot</div>`;
  const labelled = cells.length <= LABELLED_UP_TO;
  const body = cells
    .map((cell) => {
      const attributes = `class="cell k-${cell.kind}" title="${esc(cellTitle(row, cell))}" data-schedule="${esc(row.id)}" data-shard="${esc(row.shard ?? "")}" data-slot="${new Date(cell.slot).toISOString()}" data-kind="${cell.kind}"`;
      const label = labelled ? `<span>${esc(clock(cell.slot))} ${esc(CELL_LABELS[cell.kind])}</span>` : "";
      const target = anchors.get(cell);
      return target ? `<a ${attributes} href="#${target}">${label}</a>` : `<span ${attributes}>${label}</span>`;
    })
    .join("");
  // A labelled cell is as wide as its label; the dense ones share the day's width, without gaps
  // past a quarter-hourly schedule (288 five-minute cells and their gaps are wider than a day's column).
  const columns = `grid-template-columns:repeat(${cells.length},minmax(0,${labelled ? "150px" : "1fr"}))${cells.length > SPACED_UP_TO ? ";gap:0" : ""}`;
  return `<div class="strip${labelled ? " labelled" : ""}" style="${columns}">${body}</div>`;
}

function cellTitle(row: ScheduleRow, cell: SlotCell): string {
  const lines = [`${row.id}${row.shard ? ` shard ${row.shard}` : ""} · slot ${time(cell.slot)}${row.timeZone === "UTC" ? "" : ` (${cell.local})`}`, describeCell(cell)];
  for (const run of cell.runs) lines.push(`run ${run.runId}: ${run.status}, started ${time(run.startedAt)}, ${ranFor(run)}`);
  if (cell.healedBy) lines.push(`rebuilt by run ${cell.healedBy}`);
  return lines.join("\n");
}

/** "ran 3m00s" for a run that stopped (a lost one up to its last heartbeat), "running for 39m48s" for a live one. */
function ranFor(run: SlotRun): string {
  const took = formatDuration(run.endedAt.getTime() - run.startedAt.getTime());
  return run.status === "running" ? `running for ${took}` : `ran ${took}`;
}

function describeCell(cell: SlotCell): string {
  const label = CELL_LABELS[cell.kind];
  if (cell.kind === "late" && cell.delaySeconds !== undefined) return `${label}: started ${formatDuration(cell.delaySeconds * 1000)} after the slot`;
  if (cell.partition) return `${label} (builds dt=${cell.partition})`;
  return label;
}

function summaryHtml(cells: readonly SlotCell[]): string {
  const counts = new Map<CellKind, number>();
  for (const cell of cells) counts.set(cell.kind, (counts.get(cell.kind) ?? 0) + 1);
  const judged = [...counts].filter(([kind]) => kind !== "not_yet_due" && kind !== "not_deployed");
  if (!judged.length) return `<span class="muted">none judged yet</span>`;
  return judged.map(([kind, n]) => `<span class="count k-${kind}-text">${n} ${esc(CELL_LABELS[kind])}</span>`).join(" ");
}

/** Every problem cell of the grid (late, healed, breaches, running), a line each (a run of missed slots with no run, one), with its runs. */
export function problemSlotsHtml(rows: readonly ScheduleRow[]): string {
  const lines = rows.flatMap((row) => problemLines(row).map((line) => ({ row, ...line })));
  if (!lines.length) return `<p class="ok-text">No slot of the last days was late, missed, failed, doubled, lost or is running.</p>`;
  const slots = lines.reduce((sum, line) => sum + line.cells.length, 0);
  const body = lines
    .map(({ row, anchor: id, cells }) => {
      const cell = cells[0]!;
      const when = cells.length > 1 ? `${slotTime(cell.slot)} .. ${slotTime(cells.at(-1)!.slot)}` : slotTime(cell.slot);
      const what = cells.length > 1 ? `${cells.length} slots in a row` : describeCell(cell).slice(CELL_LABELS[cell.kind].length).replace(/^: /, "");
      const runs = cell.runs.length
        ? cell.runs.map((run) => `<div>${command("etl", "runs", "show", run.runId)} ${esc(run.status)}, started ${esc(time(run.startedAt))}, ${esc(ranFor(run))}</div>`).join("")
        : `<span class="muted">${row.firstSlot ? "no run" : "no run: the schedule never ran"}</span>`;
      const healed = cell.healedBy ? `<div>rebuilt by ${command("etl", "runs", "show", cell.healedBy)}</div>` : "";
      return `<tr id="${id}"><td>${esc(row.id)}${row.shard ? ` <span class="shard">${esc(row.shard)}</span>` : ""}</td><td class="when">${esc(when)}</td><td><span class="badge k-${cell.kind}">${esc(CELL_LABELS[cell.kind])}</span> ${esc(what)}</td><td>${runs}${healed}</td></tr>`;
    })
    .join("");
  return `<p>${esc(plural(slots, "slot"))} in ${esc(plural(lines.length, "line"))}; each run's detail: ${command("etl", "runs", "show", "<run-id>")}.</p><table class="list"><thead><tr><th>schedule</th><th>slot</th><th>state</th><th>runs</th></tr></thead><tbody>${body}</tbody></table>`;
}
