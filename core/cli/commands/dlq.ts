import { DeadLetterAdmin, type DeadLetterRow } from "../../ledger/dead_letters";
import { JobRunRepository } from "../../ledger/job_runs";
import { argvOf, kebabCase } from "../../runtime/args";
import type { CliIo } from "../io";
import type { Sql } from "../../db/db";
import type { Job } from "../../runtime/job";
import { REDACTED } from "../../redact";
import type { Registry } from "../../runtime/registry";
import { unknownJobMessage } from "../suggest";
import { formatAge, formatTable, tableWidth, useColour, type Column } from "../table";
import { requireKnownJob } from "./known_job";
import { OUTPUT_OPTIONS, outputOf } from "./output_flag";
import { CommandUsageError, parseCommandArgs, parseLimit, runOperatorCommand } from "./operator";

const USAGE = `etl dlq list [--job J] [--all] [--limit N] [-o wide|json]
       etl dlq replay <job> [--item KEY ...]
       etl dlq discard <job> --item KEY [--item KEY ...] --reason TEXT`;

export const DLQ_HELP = `etl dlq: the dead letters of every job (etl_dead_letters): items a run could not process

usage:
  ${USAGE}

list:
  --job J        one job's dead letters
  --all          resolved ones too (processed, replayed, discarded, released), with how
  --limit N      at most N (200)
  -o wide        every column, whole: timestamps, the first and last run's full ids, whole errors
  -o json        the rows as a JSON array (--json is the same)
  The table fits 120 columns (COLUMNS to change it): AGE is how long ago the item first failed,
  LAST FAILED its latest failure, RUN the first 8 characters of the run that failed it last
  (etl runs show takes them), ERROR why it failed, cut to fit.
replay           runs those items again through the job, with the arguments of the run that failed them
discard          closes dead letters that will not be replayed, saying why (--reason)
`;

/** `etl dlq`: the dead letters of every job (etl_dead_letters): list, replay through the job, discard. */
export async function dlqCommand(args: string[], registry: Registry, io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h" || sub === "help" || rest.includes("--help") || rest.includes("-h")) {
    io.out(DLQ_HELP);
    return 0;
  }
  switch (sub) {
    case "list":
      return runOperatorCommand("etl dlq list", io, (sql) => list(rest, registry, sql!, io));
    case "discard":
      return runOperatorCommand("etl dlq discard", io, (sql) => discard(rest, sql!, io));
    case "replay":
      return replay(rest, registry, io);
    default:
      io.err(`etl dlq: ${sub ? `unknown command "${sub}"` : "name a command"}\nusage: ${USAGE}\n`);
      return 2;
  }
}

async function list(args: string[], registry: Registry, sql: Sql, io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "etl dlq list",
    args,
    { job: { type: "string" }, all: { type: "boolean" }, limit: { type: "string" }, ...OUTPUT_OPTIONS },
    USAGE,
  );
  if (positionals.length) throw new CommandUsageError(`etl dlq list: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const output = outputOf("etl dlq list", values);
  // Dead letters come from runs: a job the ledger has runs of is known even when this binary lacks it.
  if (values.job !== undefined) await requireKnownJob("etl dlq list", values.job, registry, (job) => new JobRunRepository(sql).hasJob(job));
  const rows = await new DeadLetterAdmin(sql).list({ job: values.job, includeResolved: values.all === true, limit: parseLimit(values.limit, 200) });
  if (output === "json") {
    io.out(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (!rows.length) {
    io.out(values.all ? "no dead letters\n" : "no open dead letters\n");
    return 0;
  }
  const options = { withResolution: values.all === true, now: Date.now(), colour: useColour(io) };
  io.out(output === "wide" ? wideTable(rows, options) : defaultTable(rows, { ...options, width: tableWidth(io.env) }));
  return 0;
}

interface TableOptions {
  withResolution: boolean;
  now: number;
  colour: boolean;
}

const resolutionOf = (r: DeadLetterRow) => (r.resolution ? `${r.resolution}${r.resolutionReason ? `: ${r.resolutionReason}` : ""}` : "open");

/**
 * JOB ITEM ATTEMPTS AGE LAST-FAILED RUN [RESOLUTION] ERROR within `width`. JOB and ITEM name the
 * dead letter (dlq replay and discard take them), so ERROR is cut first, then RESOLUTION.
 */
function defaultTable(rows: DeadLetterRow[], options: TableOptions & { width: number }): string {
  const age = (d: Date) => formatAge(options.now - d.getTime());
  const columns: Column[] = [
    { header: "JOB", shrink: 12, shrinkOrder: 2 },
    { header: "ITEM", shrink: 16, shrinkOrder: 2 },
    { header: "ATTEMPTS", align: "right" },
    { header: "AGE", align: "right" },
    { header: "LAST FAILED", align: "right" },
    { header: "RUN" },
    ...(options.withResolution ? [{ header: "RESOLUTION", shrink: 12, shrinkOrder: 1, colour: (cell: string) => (cell === "open" ? ("yellow" as const) : undefined) }] : []),
    { header: "ERROR", shrink: 16 },
  ];
  return formatTable(
    columns,
    rows.map((r) => [
      r.job,
      r.itemKey,
      String(r.attempts),
      age(r.firstFailedAt),
      age(r.lastFailedAt),
      r.lastRunId.slice(0, 8),
      ...(options.withResolution ? [resolutionOf(r)] : []),
      r.error,
    ]),
    options,
  );
}

/** Every column, nothing cut: timestamps, both runs' full ids, the whole error. */
function wideTable(rows: DeadLetterRow[], options: TableOptions): string {
  const time = (d: Date | null) => d?.toISOString().replace(/\.\d+Z$/, "Z") ?? "-";
  const resolution: Column[] = options.withResolution ? [{ header: "RESOLUTION" }, { header: "RESOLVED" }, { header: "RESOLVED BY" }] : [];
  return formatTable(
    [
      { header: "JOB" },
      { header: "ITEM" },
      { header: "ATTEMPTS", align: "right" },
      { header: "FIRST FAILED" },
      { header: "LAST FAILED" },
      { header: "AGE", align: "right" },
      { header: "FIRST RUN" },
      { header: "LAST RUN" },
      ...resolution,
      { header: "ERROR" },
    ],
    rows.map((r) => [
      r.job,
      r.itemKey,
      String(r.attempts),
      time(r.firstFailedAt),
      time(r.lastFailedAt),
      formatAge(options.now - r.firstFailedAt.getTime()),
      r.runId,
      r.lastRunId,
      ...(options.withResolution ? [resolutionOf(r), time(r.resolvedAt), r.resolvedByRunId ?? "-"] : []),
      r.error,
    ]),
    { colour: options.colour },
  );
}

async function discard(args: string[], sql: Sql, io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("etl dlq discard", args, { item: { type: "string", multiple: true }, reason: { type: "string" } }, USAGE);
  const [job, ...extra] = positionals;
  if (!job || extra.length) throw new CommandUsageError(`etl dlq discard: name one job\nusage: ${USAGE}`);
  const items = values.item ?? [];
  if (!items.length) throw new CommandUsageError(`etl dlq discard: give the items to discard with --item KEY (etl dlq list shows them)`);
  const reason = values.reason?.trim();
  if (!reason) throw new CommandUsageError(`etl dlq discard: say why with --reason TEXT; it is kept with the dead letter`);
  const admin = new DeadLetterAdmin(sql);
  await requireOpen(admin, job, items);
  const discarded = await admin.discard(job, items, reason);
  io.out(`discarded ${discarded.length} dead letter(s) of ${job}: ${discarded.join(", ")}\n`);
  return 0;
}

/**
 * Runs the job's replay hook on its open dead letters (all, or those of --item), once per run
 * that failed them, with that run's arguments from the ledger. Each replay is a run of its own:
 * its ledger row, its summary event, its exit code; the command exits with the first that failed.
 */
async function replay(args: string[], registry: Registry, io: CliIo): Promise<number> {
  const batches: Array<{ argv: string[]; items: DeadLetterRow[] }> = [];
  let job: Job | undefined;
  const prepared = await runOperatorCommand("etl dlq replay", io, async (sql) => {
    const { values, positionals } = parseCommandArgs("etl dlq replay", args, { item: { type: "string", multiple: true } }, USAGE);
    const [name, ...extra] = positionals;
    if (!name || extra.length) throw new CommandUsageError(`etl dlq replay: name one job\nusage: ${USAGE}`);
    const entry = registry.jobs.find((j) => j.name === name);
    if (!entry) {
      throw new CommandUsageError(unknownJobMessage("etl dlq replay", name, registry.jobs.map((j) => j.name)));
    }
    job = await entry.load();
    if (!job.replay) throw new CommandUsageError(`etl dlq replay: job ${name} cannot replay dead letters (it has no replay hook); etl dlq discard closes them`);
    const admin = new DeadLetterAdmin(sql!);
    const items = values.item ? await requireOpen(admin, name, values.item) : await admin.open(name);
    if (!items.length) {
      io.out(`no open dead letters of ${name}\n`);
      return 0;
    }
    const runs = new JobRunRepository(sql!);
    const byRun = Map.groupBy(items, (item) => item.lastRunId);
    for (const [runId, letters] of byRun) {
      const run = await runs.findRun(runId);
      if (!run) throw new CommandUsageError(`etl dlq replay: run ${runId}, which failed ${letters[0]!.itemKey}, is not in the run ledger, so its arguments are unknown`);
      batches.push({ argv: recordedArgv(job, run.args, runId), items: letters });
    }
    return 0;
  });
  if (prepared !== 0) return prepared;
  let exitCode = 0;
  for (const batch of batches) {
    io.err(`etl dlq replay: ${batch.items.length} item(s) of ${job!.name} with ${batch.argv.join(" ")}\n`);
    const code = await job!.entrypoint(batch.argv, { registry, replay: batch.items });
    if (exitCode === 0) exitCode = code;
  }
  return exitCode;
}

/** The open dead letters of these items; any item without one is a usage error naming it. */
async function requireOpen(admin: DeadLetterAdmin, job: string, items: string[]): Promise<DeadLetterRow[]> {
  const open = await admin.open(job, items);
  const missing = items.filter((item) => !open.some((row) => row.itemKey === item));
  if (missing.length) throw new CommandUsageError(`${job} has no open dead letter for ${missing.map((m) => JSON.stringify(m)).join(", ")} (etl dlq list --job ${job} shows them)`);
  return open;
}

/** The argv that gives these recorded arguments (as the ledger keeps them) back to the job. */
function recordedArgv(job: Job, args: Record<string, unknown>, runId: string): string[] {
  const redacted = Object.keys(job.args).find((key) => args[key] === REDACTED);
  if (redacted) throw new CommandUsageError(`etl dlq replay: run ${runId}'s --${kebabCase(redacted)} was redacted in the ledger; it cannot be replayed`);
  return argvOf(job.args, args);
}
