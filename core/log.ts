import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { colors } from "consola/utils";
import { redactText, redactValue } from "./redact";

export type LogFormat = "json" | "pretty";
export type LogLevelName = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
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
          const [msg, fields] = logObj.args as [string, LogFields];
          const level = LEVEL_OF_TYPE[logObj.type] ?? "info";
          write(format(logObj.date, level, redactText(msg, secrets), redactValue(fields, secrets) as LogFields));
        },
      },
    ],
  });
  return bind(consola, {});
}

function bind(consola: ConsolaInstance, bound: LogFields): Logger {
  const emit = (level: LogLevelName) => (msg: string, fields?: LogFields) =>
    consola[level](msg, { ...bound, ...serializeErrors(fields) });
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (fields) => bind(consola, { ...bound, ...fields }),
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

function formatPretty(date: Date, level: LogLevelName, msg: string, fields: LogFields): string {
  const { job, runId, ...rest } = fields;
  const context = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const time = date.toISOString().slice(11, 23);
  const tag = job ? colors.dim(`[${job}${runId ? ` ${String(runId).slice(0, 8)}` : ""}]`) : "";
  return `${colors.dim(time)} ${PRETTY_COLOR[level](level.toUpperCase().padEnd(5))} ${tag} ${msg}${context ? " " + colors.dim(context) : ""}\n`;
}
