import { isShard } from "./args";
import { loadConfig, type PlatformConfig } from "../config";
import { createRunResources } from "./context";
import type { Sql } from "../db/db";
import { ConfigError, EtlError, TransientError, UsageError, errorMessage } from "../errors";
import { SkippedRun, type DataInterval, type Job, type RunnerEnvironment, type RunStatus } from "./contract";
import { resolveDataInterval } from "./data_interval";
import { scheduleOfArgs } from "./schedules";
import { recordedArgs, startLedger, type LedgerOptions, type LedgerRun, type RunLedger } from "../ledger/ledger";
import { createLogger, type Logger } from "../log";
import { formatLogicalDate } from "./logical_date";
import type { Metrics } from "../metrics/metrics";
import { parseJobArgv } from "./parse_args";
import { RunProgress } from "./progress";
import { formatRunStart, formatRunSummary, type RunSummaryView } from "./run_summary_text";
import type { RunMetrics } from "../metrics/pushgateway";
import { isMissingTable } from "../db/missing_table";
import { isPermissionDenied, permissionDenial } from "../db/permission_denied";
import { isPostgresWriteToClosedSocket } from "../db/query_deadline";
import { redactText, secretsFromEnv } from "../redact";
import { DEFAULT_GRACE_MS, SHUTDOWN_SIGNALS, handleShutdownSignals, type ShutdownSignal } from "./signals";
import { isTransientError } from "../http/transient";

/** Exit codes besides the signals' (core/runtime/signals.ts). */
export const EXIT = { succeeded: 0, failed: 1, usage: 2, partial: 3, transient: 75 } as const;
export type { RunStatus, RunnerEnvironment } from "./contract";

function processEnvironment(): RunnerEnvironment {
  return { env: process.env, stdoutIsTTY: process.stdout.isTTY === true };
}

/**
 * Runs one job from argv to exit code. This is the one place where outcomes become exit codes
 * (see DESIGN.md): 0 succeeded or skipped, 1 failed, 2 usage/config, 3 partial, 75 transient,
 * 130/143 interrupted. Every run that got past `--help` ends with exactly one `job.finished` event.
 */
export async function runJob(job: Job, argv: readonly string[], overrides: Partial<RunnerEnvironment> = {}): Promise<number> {
  const environment = { ...processEnvironment(), ...overrides };
  const started = performance.now();
  const runId = environment.env.ETL_RUN_ID?.trim() || crypto.randomUUID();
  const secrets = secretsFromEnv(environment.env);
  const writeOut = environment.write ?? writeStdout;
  // While a live progress line shows, every log line is written above it.
  let progress: RunProgress | undefined;
  const write = (line: string) => (progress ? progress.writeAbove(line, writeOut) : writeOut(line));

  let config: PlatformConfig | undefined;
  let configError: unknown;
  try {
    config = loadConfig(environment.env, environment.stdoutIsTTY ?? false);
  } catch (error) {
    configError = error;
  }
  const log = createLogger({
    format: config?.logFormat ?? (environment.stdoutIsTTY ? "pretty" : "json"),
    level: config?.logLevel ?? "info",
    secrets,
    write,
  }).child({ job: job.name, runId });

  let finished = false;
  /** Past parsing and configuration: the run has a context and its job.started line. */
  let runStarted = false;
  let ledger: RunLedger | undefined;
  /** The job's metrics, once the run has a context: their gauges go with the push. */
  let jobMetrics: Metrics | undefined;
  /** Ends the run exactly once: the ledger row, the metrics push, then the summary event, all with the same fields. */
  const finish = async (status: RunStatus, exitCode: number, fields: Record<string, unknown> = {}): Promise<number> => {
    if (finished) return exitCode;
    finished = true;
    progress?.stop();
    const counts = (fields.counts ?? {}) as Record<string, number>;
    await ledger?.finish({
      status,
      exitCode,
      counts,
      metrics: (fields.metrics ?? {}) as Record<string, unknown>,
      error: fields.error as string | undefined,
      reason: fields.reason as string | undefined,
    });
    const durationMs = Math.round(performance.now() - started);
    if (config?.pushgatewayUrl) {
      const grouping = parsed && "args" in parsed ? job.metricsGroup?.(parsed.args, config) : undefined;
      await pushRunMetrics(config.pushgatewayUrl, { job: job.name, shard: shardOf(parsed), grouping, status, exitCode, durationMs, counts, metrics: fields.metrics, gauges: jobMetrics?.gauges() }, log);
    }
    // The summary is the run's last line; a terminal gets it in words (core/runtime/run_summary_text.ts).
    log.info("job finished", { event: "job.finished", status, exitCode, durationMs, ...fields }, { pretty: false });
    if (log.format === "pretty") write(redactText(formatRunSummary(summaryView(status, exitCode, durationMs, fields), process.stdout.columns || 100), secrets));
    return exitCode;
  };
  /** What the terminal's summary shows (only a run that started has arguments, outputs and a ledger row). */
  const summaryView = (status: RunStatus, exitCode: number, durationMs: number, fields: Record<string, unknown>): RunSummaryView => ({
    job: job.name,
    runId,
    status,
    exitCode,
    durationMs,
    counts: (fields.counts ?? {}) as Record<string, number>,
    bytes: progress?.snapshot().bytes,
    error: fields.error as string | undefined,
    reason: fields.reason as string | undefined,
    outputs: runStarted && parsed && "args" in parsed ? job.outputs?.(parsed.args, { partitionDate: resources.context.partitionDate }) : undefined,
    dryRun: runStarted && parsed && "args" in parsed ? parsed.dryRun : false,
    recorded: ledger !== undefined,
    started: runStarted,
    // Refused before it started, for its arguments rather than the environment: --help lists them.
    arguments: !runStarted && configError === undefined,
  });
  const fail = (error: unknown, done: Record<string, unknown> = { counts: {} }): Promise<number> => {
    // Wherever a permission denial surfaced (the ledger, a repository), a grant is what it needs: exit 2.
    error = permissionDenial(error, config?.databaseUrl && databaseRole(config.databaseUrl)) ?? error;
    const exitCode = exitCodeOf(error);
    const message = redactText(errorMessage(error), secrets);
    // On a terminal the summary says it, once.
    log.error(message, { error: { name: (error as Error)?.name, code: (error as EtlError)?.code } }, { pretty: false });
    if (exitCode === EXIT.failed && error instanceof Error && error.stack) log.debug("stack", { stack: redactText(error.stack, secrets) });
    return finish("failed", exitCode, { ...done, error: message });
  };

  if (configError) return await fail(configError);
  let parsed: ReturnType<typeof parseJobArgv> | undefined;
  try {
    parsed = parseJobArgv(job, argv, environment.env);
  } catch (error) {
    return await fail(error);
  }
  if (parsed.help !== undefined) {
    process.stdout.write(parsed.help);
    return EXIT.succeeded;
  }
  const replay = environment.replay;
  // The schedule whose arguments the run has gives its cron, hence the slot's data interval.
  const schedule = replay ? undefined : scheduleOfArgs(job, parsed.args);
  let dataInterval: DataInterval | undefined;
  try {
    dataInterval = replay ? undefined : resolveDataInterval({ logicalDate: parsed.logicalDate, env: environment.env, schedule });
  } catch (error) {
    return await fail(error);
  }
  if (replay && !job.replay) return await fail(new UsageError(`job ${job.name} cannot replay dead letters: it has no replay hook`));
  // A replay is not its slot's scheduled run: it has no logical date and is never skipped as done.
  if (replay) parsed = { ...parsed, logicalDate: undefined, force: false };

  const controller = new AbortController();
  let interruptedBy: ShutdownSignal | undefined;
  const removeSignalHandlers =
    environment.handleSignals === false
      ? () => {}
      : handleShutdownSignals(
          {
            onSignal: (signal) => {
              interruptedBy = signal;
              log.warn(`received ${signal}: finishing items in flight, starting no new ones`);
              controller.abort(new EtlError("interrupted", `interrupted by ${signal}`));
            },
            onForce: (signal) => {
              void finish("interrupted", SHUTDOWN_SIGNALS[signal], { counts: resources.context.counts, error: `forced exit after ${signal}` }).then(
                environment.exit ?? process.exit,
              );
            },
          },
          environment.graceMs ?? DEFAULT_GRACE_MS,
        );

  // An exception thrown from a callback (a timer, a socket event) reaches no caller. Bun prints
  // it and, while the entry's top-level await is pending, never exits: the run would hang.
  const onUncaught = (error: unknown) => {
    if (isPostgresWriteToClosedSocket(error)) {
      log.warn("a database connection was lost under a query; the query fails at its deadline");
      return;
    }
    void fail(error, { counts: resources.context.counts }).then(environment.exit ?? process.exit);
  };
  process.on("uncaughtException", onUncaught);

  progress = new RunProgress(
    config!.logFormat === "pretty" && environment.stdoutIsTTY
      ? { kind: "live", write: writeOut, columns: () => process.stdout.columns || 80 }
      : { kind: "events", log, intervalMs: config!.progressIntervalMs },
  );
  const resources = createRunResources({
    job: job.name,
    runId,
    log,
    progress,
    signal: controller.signal,
    dryRun: parsed.dryRun,
    logicalDate: parsed.logicalDate,
    dataInterval,
    schedule: schedule?.name,
    force: parsed.force,
    env: environment.env,
    config: config!,
    registry: environment.registry,
  });
  const { context } = resources;
  jobMetrics = context.metrics;
  const args = recordedArgs(parsed.args, secrets);
  const shard = shardOf(parsed);
  const particulars = {
    dryRun: parsed.dryRun,
    ...(parsed.logicalDate && { logicalDate: formatLogicalDate(parsed.logicalDate) }),
    ...(dataInterval && { dataInterval: { start: dataInterval.start.toISOString(), end: dataInterval.end.toISOString() } }),
    ...(schedule && { schedule: schedule.name }),
    ...(parsed.force && { force: true }),
    ...(replay && { replay: { items: replay.length } }),
  };
  log.info("job started", { event: "job.started", args, ...particulars }, { pretty: formatRunStart(particulars) });
  runStarted = true;

  let exitCode: number;
  try {
    if (config!.databaseUrl) {
      const run = {
        runId,
        job: job.name,
        lane: job.lane,
        logicalDate: parsed.logicalDate,
        schedule: schedule?.name,
        shard,
        args,
        forced: parsed.force,
        dryRun: parsed.dryRun,
        note: replay && `replay of ${replay.length} dead letter(s) by etl dlq replay`,
      };
      const start = await openLedger(() => context.db(), run, log, { acquireLease: context.lease });
      ledger = start?.ledger;
      if (start?.skipReason && interruptedBy) return await finish("interrupted", SHUTDOWN_SIGNALS[interruptedBy], { reason: start.skipReason, counts: {} });
      if (start?.skipReason) return await finish("skipped", EXIT.succeeded, { reason: start.skipReason, counts: {} });
      // Losing the slot's lease stops new work as SIGTERM does; the run exits 75.
      start?.signal?.addEventListener("abort", () => controller.abort(start.signal!.reason), { once: true });
    }
    progress.start();
    const result = replay ? await job.replay!(replay, parsed.args, context) : await job.run(parsed.args, context);
    // Interrupted wins over skipped: a job that stopped early for the signal may report nothing to do.
    if (interruptedBy) {
      exitCode = await finish("interrupted", SHUTDOWN_SIGNALS[interruptedBy], { counts: result instanceof SkippedRun ? context.counts : result });
    } else if (result instanceof SkippedRun) {
      exitCode = await finish("skipped", EXIT.succeeded, { reason: result.reason, counts: {} });
    } else {
      // A quarantined file is an item the job refused (file_processing): the run is partial too.
      const partial = (result.failed ?? 0) + (result.quarantined ?? 0) > 0;
      exitCode = await finish(partial ? "partial" : "succeeded", partial ? EXIT.partial : EXIT.succeeded, {
        counts: result,
        metrics: context.metrics.snapshot(),
        dryRun: parsed.dryRun,
      });
    }
  } catch (error) {
    // What was done before the run stopped: the counts it kept as it went.
    const done = { counts: context.counts, metrics: context.metrics.snapshot() };
    exitCode = interruptedBy ? await finish("interrupted", SHUTDOWN_SIGNALS[interruptedBy], done) : await fail(error, done);
  } finally {
    removeSignalHandlers();
    process.off("uncaughtException", onUncaught);
    // After finish: the ledger row is finished through the run's database connection.
    await resources.close().catch((error) => log.warn("closing the run's connections failed", { error: errorMessage(error) }));
  }
  return exitCode;
}

/**
 * Writes the run's ledger row. A run that cannot be recorded does not start (exit 75, or 2 when
 * the database rejects the configuration or refuses the role a privilege); a dry run, which never
 * migrates, runs unrecorded in a database that has no ledger yet.
 */
async function openLedger(db: () => Promise<Sql>, run: LedgerRun, log: Logger, options: LedgerOptions) {
  try {
    return await startLedger(await db(), run, log, options);
  } catch (error) {
    if (run.dryRun && isMissingTable(error)) {
      log.warn("this database has no run ledger yet (a dry run does not migrate): the run is not recorded");
      return undefined;
    }
    if (error instanceof ConfigError || isPermissionDenied(error)) throw error;
    throw new TransientError(`the run could not be recorded in the run ledger, so it does not start: ${errorMessage(error)}`, { cause: error });
  }
}

/** Log lines to stdout. A closed stdout (EPIPE) loses the line but must not fail the run. */
function writeStdout(line: string): void {
  try {
    process.stdout.write(line);
  } catch {
    // Nothing left to report to: the reader is gone.
  }
}

function exitCodeOf(error: unknown): number {
  if (error instanceof EtlError) {
    switch (error.code) {
      case "usage":
      case "config":
        return EXIT.usage;
      case "transient":
        return EXIT.transient;
    }
  }
  return isTransientError(error) ? EXIT.transient : EXIT.failed;
}

/** The role DATABASE_URL logs in as, for an error that says what it was refused. */
function databaseRole(url: string): string | undefined {
  return URL.canParse(url) ? decodeURIComponent(new URL(url).username) || undefined : undefined;
}

/** The run's shard as `i/n`, when its job takes `--shard` and this run has one. */
function shardOf(parsed: ReturnType<typeof parseJobArgv> | undefined): string | undefined {
  const shard = parsed && "args" in parsed ? Object.values(parsed.args).find(isShard) : undefined;
  return shard && `${shard.index}/${shard.count}`;
}

/** Pushes the run's metrics (DESIGN.md "Metrics"); a push that fails is a warning, never the run's outcome. */
async function pushRunMetrics(url: string, run: Omit<RunMetrics, "finishedAt" | "metrics"> & { shard?: string; grouping?: Record<string, string>; metrics: unknown }, log: Logger): Promise<void> {
  try {
    const { pushMetrics, renderRunMetrics } = await import("../metrics/pushgateway");
    const body = renderRunMetrics({ ...run, finishedAt: new Date(), metrics: (run.metrics ?? {}) as RunMetrics["metrics"] });
    await pushMetrics({ url, job: run.job, shard: run.shard, grouping: run.grouping, body });
  } catch (error) {
    log.warn("could not push the run's metrics", { error: errorMessage(error) });
  }
}

