import { loadConfig, type PlatformConfig } from "./config";
import { createRunResources } from "./context";
import { EtlError, errorMessage } from "./errors";
import { SkippedRun, type Job } from "./job";
import { createLogger } from "./log";
import type { Migration } from "./migrate";
import { locationUrl, type Location } from "./object_store";
import { parseJobArgv } from "./parse_args";
import { isPostgresWriteToClosedSocket } from "./query_deadline";
import { redactText, secretsFromEnv } from "./redact";
import { DEFAULT_GRACE_MS, SHUTDOWN_SIGNALS, handleShutdownSignals, type ShutdownSignal } from "./signals";
import { isTransientError } from "./transient";

/** Exit codes besides the signals' (core/signals.ts). */
export const EXIT = { succeeded: 0, failed: 1, usage: 2, partial: 3, transient: 75 } as const;
export type RunStatus = "succeeded" | "partial" | "failed" | "interrupted" | "skipped";

export interface RunnerEnvironment {
  env: Record<string, string | undefined>;
  /** Log sink, one line per call; stdout by default. */
  write?: (line: string) => void;
  stdoutIsTTY?: boolean;
  /** Installs SIGINT/SIGTERM handlers for the run (on by default). */
  handleSignals?: boolean;
  graceMs?: number;
  /** How a forced shutdown ends the process; process.exit by default. */
  exit?: (code: number) => void;
  /** The platform's migrations: the migrations/ glob from source, the generated list in a compiled binary. */
  migrations?: () => Promise<Migration[]>;
}

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
  const write = environment.write ?? writeStdout;

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
  const finish = (status: RunStatus, exitCode: number, fields: Record<string, unknown> = {}): number => {
    if (!finished) {
      finished = true;
      log.info("job finished", { event: "job.finished", status, exitCode, durationMs: Math.round(performance.now() - started), ...fields });
    }
    return exitCode;
  };
  const fail = (error: unknown, done: Record<string, unknown> = { counts: {} }): number => {
    const exitCode = exitCodeOf(error);
    const message = redactText(errorMessage(error), secrets);
    log.error(message, { error: { name: (error as Error)?.name, code: (error as EtlError)?.code } });
    if (exitCode === EXIT.failed && error instanceof Error && error.stack) log.debug("stack", { stack: redactText(error.stack, secrets) });
    return finish("failed", exitCode, { ...done, error: message });
  };

  if (configError) return fail(configError);
  let parsed;
  try {
    parsed = parseJobArgv(job, argv, environment.env);
  } catch (error) {
    return fail(error);
  }
  if (parsed.help !== undefined) {
    process.stdout.write(parsed.help);
    return EXIT.succeeded;
  }

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
              const code = finish("interrupted", SHUTDOWN_SIGNALS[signal], { counts: resources.context.counts, error: `forced exit after ${signal}` });
              (environment.exit ?? process.exit)(code);
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
    (environment.exit ?? process.exit)(fail(error, { counts: resources.context.counts }));
  };
  process.on("uncaughtException", onUncaught);

  const resources = createRunResources({
    job: job.name,
    runId,
    log,
    signal: controller.signal,
    dryRun: parsed.dryRun,
    env: environment.env,
    config: config!,
    migrations: environment.migrations,
  });
  const { context } = resources;
  log.info("job started", { event: "job.started", args: describeArgs(parsed.args), dryRun: parsed.dryRun });

  let exitCode: number;
  try {
    const result = await job.run(parsed.args, context);
    await resources.close();
    if (result instanceof SkippedRun) {
      exitCode = finish("skipped", EXIT.succeeded, { reason: result.reason, counts: {} });
    } else if (interruptedBy) {
      exitCode = finish("interrupted", SHUTDOWN_SIGNALS[interruptedBy], { counts: result });
    } else {
      const partial = (result.failed ?? 0) > 0;
      exitCode = finish(partial ? "partial" : "succeeded", partial ? EXIT.partial : EXIT.succeeded, {
        counts: result,
        metrics: context.metrics.snapshot(),
        dryRun: parsed.dryRun,
      });
    }
  } catch (error) {
    await resources.close().catch((closeError) => log.warn("closing resources failed", { error: closeError }));
    // What was done before the run stopped: the counts it kept as it went.
    const done = { counts: context.counts, metrics: context.metrics.snapshot() };
    exitCode = interruptedBy ? finish("interrupted", SHUTDOWN_SIGNALS[interruptedBy], done) : fail(error, done);
  } finally {
    removeSignalHandlers();
    process.off("uncaughtException", onUncaught);
  }
  return exitCode;
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

/** Arguments as they appear in the start event: locations as URLs, everything else as parsed. */
function describeArgs(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).map(([key, value]) => [key, isLocation(value) ? locationUrl(value) : value]));
}

function isLocation(value: unknown): value is Location {
  return typeof value === "object" && value !== null && "kind" in value && (value.kind === "s3" || value.kind === "file");
}
