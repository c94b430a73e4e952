import { JobRunRepository, type JobRun, type LedgerStatus } from "../../ledger/job_runs";
import type { CliIo } from "../io";
import type { Sql } from "../../db/db";
import type { Registry } from "../../runtime/contract";
import { LOST_AFTER_MS } from "../../ledger/ledger";
import { formatLogicalDate } from "../../runtime/logical_date";
import { closestName } from "../suggest";
import { formatDuration } from "../../duration";
import { formatAge, formatCount, formatTable, tableWidth, useColour, type Colour, type Column } from "../table";
import { requireKnownJob } from "./known_job";
import { OUTPUT_OPTIONS, outputOf } from "./output_flag";
import { CommandUsageError, parseCommandArgs, parseLimit, parseSince, runOperatorCommand } from "./operator";

const USAGE = `etl runs [--job J] [--status S] [--since 24h] [--limit N] [-o wide|json]
       etl runs show <run-id or prefix> [-o json]`;

export const RUNS_HELP = `etl runs: the run ledger (etl_job_runs), newest first

usage:
  ${USAGE}

options:
  --job J        runs of one job
  --status S     running, succeeded, partial, failed, interrupted, skipped or lost
  --since T      started within a duration (30m, 24h, 7d) or since a date (2026-11-01)
  --limit N      at most N runs (50)
  -o wide        every column, whole: full run ids, logical dates, exit codes, hosts, exact counts
  -o json        the ledger's rows as a JSON array (--json is the same)

The table fits 120 columns (COLUMNS to change it): RUN is the run id's first 8 characters,
AGE how long ago the run started, COUNTS what the run reported in its own order, REASON its
error, or why it was skipped or lost. STATUS is in colour on a terminal unless NO_COLOR is set.
etl runs show takes a run id or any unique prefix of one (4 characters or more).
`;

const STATUSES: LedgerStatus[] = ["running", "succeeded", "partial", "failed", "interrupted", "skipped", "lost"];
// A prefix shorter than git's shortest abbreviation matches too much of a busy ledger to help.
const MIN_PREFIX = 4;
const CANDIDATES_SHOWN = 10;

const STATUS_COLOURS: Record<LedgerStatus, Colour> = {
  running: "blue",
  succeeded: "green",
  partial: "yellow",
  failed: "red",
  interrupted: "magenta",
  skipped: "grey",
  lost: "red",
};

/** `etl runs`: the run ledger (etl_job_runs), newest first, as a table or JSON. */
export async function runsCommand(args: string[], registry: Registry, io: CliIo): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    io.out(RUNS_HELP);
    return 0;
  }
  return runOperatorCommand("etl runs", io, async (sql) => {
    const { values, positionals } = parseCommandArgs(
      "etl runs",
      args,
      {
        job: { type: "string" },
        status: { type: "string" },
        since: { type: "string" },
        limit: { type: "string" },
        ...OUTPUT_OPTIONS,
      },
      USAGE,
    );
    const output = outputOf("etl runs", values);
    const runs = new JobRunRepository(sql as Sql);
    // Runs whose heartbeat stopped are lost, whether or not their job ran again since.
    await runs.markLost(undefined, LOST_AFTER_MS);
    if (positionals[0] === "show") {
      if (positionals.length !== 2) throw new CommandUsageError(`etl runs show: give one run id, or a prefix of one\nusage: ${USAGE}`);
      const run = await findByPrefix(runs, positionals[1]!);
      io.out(output === "json" ? `${JSON.stringify(run, null, 2)}\n` : describeRun(run));
      return 0;
    }
    if (positionals.length) throw new CommandUsageError(`etl runs: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
    const status = values.status as LedgerStatus | undefined;
    if (status && !STATUSES.includes(status)) {
      const likely = closestName(status, STATUSES);
      throw new CommandUsageError(`etl runs: --status must be one of ${STATUSES.join(", ")} (got "${status}"${likely ? `; did you mean "${likely}"?` : ""})`);
    }
    if (values.job !== undefined) await requireKnownJob("etl runs", values.job, registry, (job) => runs.hasJob(job));
    const list = await runs.listRuns({
      job: values.job,
      status,
      since: values.since === undefined ? undefined : parseSince(values.since),
      limit: parseLimit(values.limit, 50),
    });
    if (output === "json") {
      io.out(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (!list.length) {
      io.out(values.job || status || values.since ? "no runs match\n" : "no runs in the ledger\n");
      return 0;
    }
    const now = Date.now();
    const colour = useColour(io);
    io.out(output === "wide" ? wideTable(list, now, colour) : defaultTable(list, now, { width: tableWidth(io.env), colour }));
    return 0;
  });
}

/**
 * The run whose id starts with `prefix`, as git and docker take an abbreviated id. Ambiguous or
 * unknown is a usage error: the ambiguous one lists the runs it could be.
 */
async function findByPrefix(runs: JobRunRepository, prefix: string): Promise<JobRun> {
  const hex = prefix.replace(/-/g, "");
  if (!/^[0-9a-f-]+$/i.test(prefix) || hex.length < MIN_PREFIX || hex.length > 32) {
    throw new CommandUsageError(`etl runs show: "${prefix}" is not a run id or a prefix of one (${MIN_PREFIX} to 32 hex digits, as etl runs prints them)`);
  }
  const found = await runs.findRunsByPrefix(hex, CANDIDATES_SHOWN + 1);
  if (found.length === 1) return found[0]!;
  if (!found.length) throw new CommandUsageError(`etl runs show: no run in the ledger has an id starting with "${prefix}"`);
  const now = Date.now();
  const listed = found.slice(0, CANDIDATES_SHOWN).map((r) => `  ${r.runId}  ${r.job}  ${r.status}  started ${formatAge(now - r.startedAt.getTime())} ago`);
  const more = found.length > CANDIDATES_SHOWN ? "\n  ... and more: give more of the id" : "";
  throw new CommandUsageError(`etl runs show: run id prefix "${prefix}" is ambiguous; it starts the ids of:\n${listed.join("\n")}${more}`);
}

function durationMs(run: JobRun, now = Date.now()): number {
  const end = run.finishedAt?.getTime() ?? (run.status === "running" ? now : run.heartbeatAt.getTime());
  return Math.max(0, end - run.startedAt.getTime());
}

/** name=value in the run's order; `exact` false shows 12,840 as 13k. */
function formatCounts(counts: Record<string, number>, exact: boolean): string {
  const entries = Object.entries(counts ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${exact || typeof v !== "number" ? v : formatCount(v)}`).join(" ") : "-";
}

/** Why the run is as it is: its error, else its reason (skipped, lost, a replay); a dry run says so. */
function reasonOf(run: JobRun): string {
  const why = run.error ?? run.reason;
  return [run.dryRun ? "dry run" : undefined, why ?? undefined].filter(Boolean).join("; ") || "-";
}

const statusColumn: Column = { header: "STATUS", colour: (cell) => STATUS_COLOURS[cell as LedgerStatus] };

/**
 * RUN JOB [SCHEDULE] STATUS AGE DURATION COUNTS [REASON], within `width`: SCHEDULE when a run has
 * a schedule other than its job's only one, REASON when a run has one; a shard follows its job
 * (get_s3_files[1/4]), which costs no column in practice: the longest job names are not sharded.
 * COUNTS and REASON are cut first (the wider first), then JOB and SCHEDULE: with 120 columns,
 * RUN, JOB, SCHEDULE, STATUS, AGE and DURATION take 76 of them, leaving COUNTS and REASON some 20
 * each when both are long; COUNTS runs on over REASON in a row without a reason (most rows), and
 * -o wide and etl runs show have both whole.
 */
function defaultTable(list: JobRun[], now: number, options: { width: number; colour: boolean }): string {
  const withSchedule = list.some((r) => r.schedule !== null && r.schedule !== "default");
  const withReason = list.some((r) => reasonOf(r) !== "-");
  const columns: Array<[Column, (r: JobRun) => string] | false> = [
    [{ header: "RUN" }, (r) => r.runId.slice(0, 8)],
    [{ header: "JOB", shrink: 12, shrinkOrder: 1 }, (r) => (r.shard ? `${r.job}[${r.shard}]` : r.job)],
    withSchedule && [{ header: "SCHEDULE", shrink: 8, shrinkOrder: 1 }, (r) => r.schedule ?? "-"],
    [statusColumn, (r) => r.status],
    [{ header: "AGE", align: "right" }, (r) => formatAge(now - r.startedAt.getTime())],
    [{ header: "DURATION", align: "right" }, (r) => formatDuration(durationMs(r, now))],
    [{ header: "COUNTS", shrink: 16, overflow: true }, (r) => formatCounts(r.counts, false)],
    withReason && [{ header: "REASON", shrink: 12 }, reasonOf],
  ];
  const shown = columns.filter((c) => c !== false);
  return formatTable(
    shown.map(([column]) => column),
    list.map((r) => shown.map(([, cell]) => cell(r))),
    options,
  );
}

/** Every column, nothing cut (kubectl's -o wide): for a wide terminal, a pager or grep. */
function wideTable(list: JobRun[], now: number, colour: boolean): string {
  return formatTable(
    [
      { header: "RUN ID" },
      { header: "JOB" },
      { header: "SCHEDULE" },
      { header: "LOGICAL DATE" },
      { header: "SHARD" },
      statusColumn,
      { header: "EXIT", align: "right" },
      { header: "STARTED" },
      { header: "AGE", align: "right" },
      { header: "DURATION", align: "right" },
      { header: "HOST" },
      { header: "COUNTS" },
      { header: "REASON" },
    ],
    list.map((r) => [
      r.runId,
      r.job,
      r.schedule ?? "-",
      r.logicalDate ? formatLogicalDate(r.logicalDate) : "-",
      r.shard ?? "-",
      r.status,
      r.exitCode === null ? "-" : String(r.exitCode),
      r.startedAt.toISOString().replace(/\.\d+Z$/, "Z"),
      formatAge(now - r.startedAt.getTime()),
      formatDuration(durationMs(r, now)),
      r.host,
      formatCounts(r.counts, true),
      reasonOf(r),
    ]),
    { colour },
  );
}

function describeRun(run: JobRun): string {
  const fields: Array<[string, string]> = [
    ["run id", run.runId],
    ["job", `${run.job} (${run.lane})`],
    ["schedule", run.schedule ?? "-"],
    ["status", `${run.status}${run.exitCode === null ? "" : `, exit ${run.exitCode}`}${run.dryRun ? ", dry run" : ""}${run.forced ? ", forced" : ""}`],
    ["logical date", run.logicalDate ? formatLogicalDate(run.logicalDate) : "-"],
    ["shard", run.shard ?? "-"],
    ["started", `${run.startedAt.toISOString()} (${formatAge(Date.now() - run.startedAt.getTime())} ago)`],
    ["heartbeat", run.heartbeatAt.toISOString()],
    ["finished", run.finishedAt?.toISOString() ?? "-"],
    ["duration", formatDuration(durationMs(run))],
    ["host", run.host],
    ["version", run.version],
    ["args", JSON.stringify(run.args)],
    ["counts", formatCounts(run.counts, true)],
    ["metrics", JSON.stringify(run.metrics)],
  ];
  if (run.reason) fields.push(["reason", run.reason]);
  if (run.error) fields.push(["error", run.error]);
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}
