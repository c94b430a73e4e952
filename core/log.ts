import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { colors } from "consola/utils";
import { redactText, redactValue } from "./redact";

export type LogFormat = "json" | "pretty";
export type LogLevelName = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

/** How a line shows in pretty mode, where a person reads it; its JSON line is the same either way. */
export interface LineOptions {
  /**
   * The text a terminal shows in place of `msg` and the fields (a one-line reading of a wide
   * event), or false for a line only machines read (a document whose lines were already shown).
   */
  pretty?: string | false;
}

export interface Logger {
  /** json or pretty: what the lines are written as (DESIGN.md LOG_FORMAT). */
  readonly format: LogFormat;
  debug(msg: string, fields?: LogFields, options?: LineOptions): void;
  info(msg: string, fields?: LogFields, options?: LineOptions): void;
  warn(msg: string, fields?: LogFields, options?: LineOptions): void;
  error(msg: string, fields?: LogFields, options?: LineOptions): void;
  /** A logger that adds `fields` to every line it writes. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevelName;
  /** Secret values to scrub from every line (see core/redact.ts). */
  secrets?: readonly string[];
  /** Where lines go; one call per line, newline included. */
  write?: (line: string) => void;
}

const CONSOLA_LEVEL: Record<LogLevelName, number> = { error: 0, warn: 1, info: 3, debug: 4 };
const LEVEL_OF_TYPE: Record<string, LogLevelName> = { error: "error", fatal: "error", warn: "warn", info: "info", debug: "debug" };
const PRETTY_COLOR: Record<LogLevelName, (s: string) => string> = {
  debug: colors.gray,
  info: colors.cyan,
  warn: colors.yellow,
  error: colors.red,
};

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const secrets = options.secrets ?? [];
  const format = options.format === "json" ? formatJson : formatPretty;
  const consola = createConsola({
    level: CONSOLA_LEVEL[options.level],
    // Identical lines in a burst (one per failed item, say) must all be written, not folded.
    throttle: 0,
    reporters: [
      {
        log(logObj: LogObject) {
          const [msg, fields, line = {}] = logObj.args as [string, LogFields, LineOptions?];
          if (options.format === "pretty" && line.pretty === false) return;
          const level = LEVEL_OF_TYPE[logObj.type] ?? "info";
          const text = options.format === "pretty" && typeof line.pretty === "string" ? line.pretty : undefined;
          write(format(logObj.date, level, redactText(text ?? msg, secrets), redactValue(fields, secrets) as LogFields, text !== undefined));
        },
      },
    ],
  });
  return bind(consola, options.format, {});
}

function bind(consola: ConsolaInstance, format: LogFormat, bound: LogFields): Logger {
  const emit = (level: LogLevelName) => (msg: string, fields?: LogFields, options?: LineOptions) =>
    consola[level](msg, { ...bound, ...serializeErrors(fields) }, options ?? {});
  return {
    format,
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (fields) => bind(consola, format, { ...bound, ...fields }),
  };
}

function serializeErrors(fields: LogFields | undefined): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields ?? {})) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message, ...("code" in value ? { code: value.code } : {}) } : value;
  }
  return out;
}

function formatJson(date: Date, level: LogLevelName, msg: string, fields: LogFields): string {
  return JSON.stringify({ time: date.toISOString(), level, msg, ...fields }) + "\n";
}

/**
 * `12:00:00.000 INFO  [job 1a2b3c4d] msg key=value ...`: the fields a person reads. Left out: the
 * `event` name (for machines), fields without a value, and all of them when the line's own text
 * (`pretty`) already says what they hold.
 */
function formatPretty(date: Date, level: LogLevelName, msg: string, fields: LogFields, textOnly = false): string {
  const { job, runId, ...rest } = fields;
  const context = textOnly
    ? ""
    : Object.entries(rest)
        .filter(([k, v]) => k !== "event" && v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
  const time = date.toISOString().slice(11, 23);
  const tag = job ? colors.dim(`[${job}${runId ? ` ${String(runId).slice(0, 8)}` : ""}]`) : "";
  return `${colors.dim(time)} ${PRETTY_COLOR[level](level.toUpperCase().padEnd(5))} ${tag} ${msg}${context ? " " + colors.dim(context) : ""}\n`;
}
