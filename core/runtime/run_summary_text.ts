/**
 * The end of a run as a person reads it on a terminal (pretty logs): a few lines after the log,
 * in place of the `job.finished` event that JSON logs end with (DESIGN.md "Logs and the run
 * summary"; that event is unchanged). The same fields, in words and units, e.g.
 *
 *   ✔ get_s3_files succeeded in 5.6s
 *     copied 20,000 · skipped 0 · failed 0
 *     transferred 66.7 MiB at 11.4 MiB/s
 *     outputs  file:///data/archive/agency_id=10/
 *     run      4f0c5e1a-…  (etl runs show 4f0c5e1a)
 */
import { colors } from "consola/utils";
import { formatBytes } from "../bytes";
import { formatDuration } from "../duration";
import type { Counts, RunStatus } from "./contract";

export interface RunSummaryView {
  job: string;
  runId: string;
  status: RunStatus;
  exitCode: number;
  durationMs: number;
  /** In the order the job reported them. */
  counts: Counts;
  /** Bytes the run moved (its progress), when it reported any. */
  bytes?: number;
  error?: string;
  /** Why a skipped run did nothing. */
  reason?: string;
  /** Where the run wrote its results (the job's `outputs`). */
  outputs?: string[];
  dryRun?: boolean;
  /** The run has a row in etl_job_runs. */
  recorded: boolean;
  /** False when the run was refused before it started (a bad flag, a missing setting). */
  started: boolean;
  /** Refused for its arguments (not its environment): the summary points at --help. */
  arguments?: boolean;
}

// What each exit code tells the reader beyond the status (DESIGN.md "Exit codes").
const EXIT_MEANING: Record<number, string> = {
  1: "an unexpected error",
  2: "usage or configuration: retrying cannot help",
  3: "some items failed, or a monitor found a breach",
  75: "transient: a dependency was unavailable, a retry may succeed",
  130: "SIGINT",
  143: "SIGTERM",
};

const LABEL_WIDTH = 9;

/** The summary's lines, each ending in a newline, none wider than `columns` where words allow. */
export function formatRunSummary(run: RunSummaryView, columns = 100): string {
  const width = Math.max(40, columns - 1);
  if (!run.started) {
    // A usage error names its job already (core/runtime/parse_args.ts).
    const error = (run.error ?? run.status).replace(new RegExp(`^${run.job}: `), "");
    return [wrap(`${colors.red("✖")} ${run.job}: ${error}`, width, 2), `  ${colors.dim(`exit ${run.exitCode}${run.arguments ? " · --help lists every flag" : ""}`)}`].join("\n") + "\n";
  }
  const lines = [headline(run)];
  const counts = Object.entries(run.counts).map(([name, value]) => `${words(name)} ${value.toLocaleString("en-US")}`);
  if (counts.length) lines.push(wrap(`  ${counts.join(" · ")}`, width, 2, " · "));
  if (run.bytes) lines.push(`  transferred ${formatBytes(run.bytes)} at ${formatBytes(run.bytes / Math.max(run.durationMs / 1000, 0.001))}/s`);
  if (run.error) lines.push(labelled("error", run.error, width));
  if (run.reason) lines.push(labelled("reason", run.reason, width));
  if (run.dryRun && run.status !== "failed") lines.push(labelled("outputs", "none: a dry run writes nothing", width));
  else if (run.outputs?.length && (run.status === "succeeded" || run.status === "partial")) run.outputs.forEach((output, i) => lines.push(labelled(i ? "" : "outputs", output, width)));
  lines.push(labelled("run", run.recorded ? `${run.runId}  (etl runs show ${run.runId.slice(0, 8)})` : `${run.runId} (not recorded: no DATABASE_URL)`, width));
  return lines.join("\n") + "\n";
}

/** What a run's first line shows on a terminal: what is particular to the run, not the arguments just typed. */
export function formatRunStart(start: { dryRun: boolean; logicalDate?: string; schedule?: string; force?: boolean; replay?: { items: number } }): string {
  const parts = ["job started"];
  if (start.schedule) parts.push(`schedule ${start.schedule}`);
  if (start.logicalDate) parts.push(`logical date ${start.logicalDate}`);
  if (start.force) parts.push("forced");
  if (start.replay) parts.push(`replaying ${start.replay.items} dead letter(s)`);
  if (start.dryRun) parts.push("dry run: writes nothing");
  return parts.join(" · ");
}

function headline(run: RunSummaryView): string {
  const mark = { succeeded: colors.green("✔"), skipped: colors.cyan("↷"), partial: colors.yellow("▲"), failed: colors.red("✖"), interrupted: colors.red("✖") }[run.status];
  const meaning = EXIT_MEANING[run.exitCode];
  const exit = run.exitCode === 0 ? "" : ` (exit ${run.exitCode}${meaning ? `, ${meaning}` : ""})`;
  return `${mark} ${run.job} ${run.status}${run.dryRun ? " (dry run)" : ""} in ${formatDuration(run.durationMs)}${exit}`;
}

/** `  error    text...`, continued under the text. */
function labelled(label: string, text: string, width: number): string {
  return wrap(`  ${colors.dim(label.padEnd(LABEL_WIDTH))}${text}`, width, 2 + LABEL_WIDTH);
}

/**
 * Breaks `line` at `separator` (spaces by default) so that no piece is wider than `width`
 * (colour codes take no room); continuation lines start `indent` spaces in. A word longer than
 * the room (a URL) stays whole.
 */
export function wrap(line: string, width: number, indent: number, separator = " "): string {
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").length;
  const lead = /^ */.exec(line)![0];
  const out: string[] = [];
  let current = lead;
  for (const word of line.slice(lead.length).split(separator)) {
    const next = current.trim() ? current + separator + word : current + word;
    if (current.trim() && visible(next) > width) {
      out.push(current.trimEnd());
      current = " ".repeat(indent) + word.trimStart();
    } else current = next;
  }
  out.push(current);
  return out.join("\n");
}

/** `neverDelivered` reads "never delivered". */
function words(name: string): string {
  return name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`).replaceAll("_", " ");
}

