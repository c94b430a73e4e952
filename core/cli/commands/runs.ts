import { JobRunRepository, type JobRun, type LedgerStatus } from "../../ledger/job_runs";
import type { CliIo } from "../io";
import type { Sql } from "../../db/db";
import { LOST_AFTER_MS } from "../../ledger/ledger";
import { formatLogicalDate } from "../../runtime/logical_date";
import { CommandUsageError, formatDuration, formatTable, parseCommandArgs, parseLimit, parseSince, runOperatorCommand } from "./operator";

const USAGE = "etl runs [--job J] [--status S] [--since 24h] [--limit N] [--json] | etl runs show <run-id> [--json]";
const STATUSES: LedgerStatus[] = ["running", "succeeded", "partial", "failed", "interrupted", "skipped", "lost"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `etl runs`: the run ledger (etl_job_runs), newest first, as a table or JSON. */
export async function runsCommand(args: string[], io: CliIo): Promise<number> {
  return runOperatorCommand("etl runs", io, async (sql) => {
    const { values, positionals } = parseCommandArgs(
      "etl runs",
      args,
      { job: { type: "string" }, status: { type: "string" }, since: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" } },
      USAGE,
    );
    const runs = new JobRunRepository(sql as Sql);
    // Runs whose heartbeat stopped are lost, whether or not their job ran again since.
    await runs.markLost(undefined, LOST_AFTER_MS);
    if (positionals[0] === "show") {
      const runId = positionals[1];
      if (!runId || !UUID.test(runId) || positionals.length > 2) throw new CommandUsageError(`etl runs show: give one run id (a uuid)\nusage: ${USAGE}`);
      const run = await runs.findRun(runId);
      if (!run) throw new CommandUsageError(`etl runs show: no run ${runId} in the ledger`);
      io.out(values.json ? `${JSON.stringify(run, null, 2)}\n` : describeRun(run));
      return 0;
    }
    if (positionals.length) throw new CommandUsageError(`etl runs: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
    const status = values.status as LedgerStatus | undefined;
    if (status && !STATUSES.includes(status)) throw new CommandUsageError(`etl runs: --status must be one of ${STATUSES.join(", ")} (got "${status}")`);
    const list = await runs.listRuns({
      job: values.job,
      status,
      since: values.since === undefined ? undefined : parseSince(values.since),
      limit: parseLimit(values.limit, 50),
    });
    if (values.json) {
      io.out(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (!list.length) {
      io.out("no runs match\n");
      return 0;
    }
    io.out(
      formatTable(
        ["JOB", "LOGICAL DATE", "SHARD", "STATUS", "EXIT", "DURATION", "COUNTS", "STARTED", "RUN ID"],
        list.map((r) => [
          r.job,
          r.logicalDate ? formatLogicalDate(r.logicalDate) : "-",
          r.shard ?? "-",
          r.status + (r.dryRun ? " (dry run)" : ""),
          r.exitCode === null ? "-" : String(r.exitCode),
          formatDuration(durationMs(r)),
          formatCounts(r.counts),
          r.startedAt.toISOString().replace(/\.\d+Z$/, "Z"),
          r.runId,
        ]),
      ),
    );
    return 0;
  });
}

function durationMs(run: JobRun): number {
  const end = run.finishedAt ?? (run.status === "running" ? new Date() : run.heartbeatAt);
  return Math.max(0, end.getTime() - run.startedAt.getTime());
}

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(" ") : "-";
}

function describeRun(run: JobRun): string {
  const fields: Array<[string, string]> = [
    ["run id", run.runId],
    ["job", `${run.job} (${run.lane})`],
    ["status", `${run.status}${run.exitCode === null ? "" : `, exit ${run.exitCode}`}${run.dryRun ? ", dry run" : ""}${run.forced ? ", forced" : ""}`],
    ["logical date", run.logicalDate ? formatLogicalDate(run.logicalDate) : "-"],
    ["shard", run.shard ?? "-"],
    ["started", run.startedAt.toISOString()],
    ["heartbeat", run.heartbeatAt.toISOString()],
    ["finished", run.finishedAt?.toISOString() ?? "-"],
    ["duration", formatDuration(durationMs(run))],
    ["host", run.host],
    ["version", run.version],
    ["args", JSON.stringify(run.args)],
    ["counts", formatCounts(run.counts)],
    ["metrics", JSON.stringify(run.metrics)],
  ];
  if (run.reason) fields.push(["reason", run.reason]);
  if (run.error) fields.push(["error", run.error]);
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}
