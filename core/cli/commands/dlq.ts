import { DeadLetterAdmin, type DeadLetterRow } from "../../ledger/dead_letters";
import { JobRunRepository } from "../../ledger/job_runs";
import { argvOf, kebabCase } from "../../runtime/args";
import type { CliIo } from "../io";
import type { Sql } from "../../db/db";
import type { Job } from "../../runtime/job";
import { REDACTED } from "../../redact";
import type { Registry } from "../../runtime/registry";
import { CommandUsageError, formatTable, parseCommandArgs, parseLimit, runOperatorCommand } from "./operator";

const USAGE = `etl dlq list [--job J] [--all] [--limit N] [--json]
       etl dlq replay <job> [--item KEY ...]
       etl dlq discard <job> --item KEY [--item KEY ...] --reason TEXT`;

/** `etl dlq`: the dead letters of every job (etl_dead_letters): list, replay through the job, discard. */
export async function dlqCommand(args: string[], registry: Registry, io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list":
      return runOperatorCommand("etl dlq list", io, (sql) => list(rest, sql!, io));
    case "discard":
      return runOperatorCommand("etl dlq discard", io, (sql) => discard(rest, sql!, io));
    case "replay":
      return replay(rest, registry, io);
    default:
      io.err(`etl dlq: ${sub ? `unknown command "${sub}"` : "name a command"}\nusage: ${USAGE}\n`);
      return 2;
  }
}

async function list(args: string[], sql: Sql, io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("etl dlq list", args, { job: { type: "string" }, all: { type: "boolean" }, limit: { type: "string" }, json: { type: "boolean" } }, USAGE);
  if (positionals.length) throw new CommandUsageError(`etl dlq list: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const rows = await new DeadLetterAdmin(sql).list({ job: values.job, includeResolved: values.all === true, limit: parseLimit(values.limit, 200) });
  if (values.json) {
    io.out(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (!rows.length) {
    io.out(values.all ? "no dead letters\n" : "no open dead letters\n");
    return 0;
  }
  const time = (d: Date) => d.toISOString().replace(/\.\d+Z$/, "Z");
  io.out(
    formatTable(
      ["JOB", "ITEM", "ATTEMPTS", "FIRST FAILED", "LAST FAILED", "LAST RUN", ...(values.all ? ["RESOLUTION"] : []), "ERROR"],
      rows.map((r) => [
        r.job,
        r.itemKey,
        String(r.attempts),
        time(r.firstFailedAt),
        time(r.lastFailedAt),
        r.lastRunId,
        ...(values.all ? [r.resolution ? `${r.resolution}${r.resolutionReason ? `: ${r.resolutionReason}` : ""}` : "open"] : []),
        oneLine(r.error, 120),
      ]),
    ),
  );
  return 0;
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
    if (!entry) throw new CommandUsageError(`etl dlq replay: unknown job "${name}"; known jobs: ${registry.jobs.map((j) => j.name).join(", ")}`);
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

function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, " ");
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
