import { Command, CommanderError } from "commander";
import { kebabCase, validateArg, type ArgSpec, type ArgSpecs, type ArgValues } from "./args";
import { UsageError } from "../errors";
import { resolveLogicalDate } from "./logical_date";

export type ParsedArgv<S extends ArgSpecs> =
  | { help: string }
  | { help?: undefined; args: ArgValues<S>; dryRun: boolean; force: boolean; logicalDate: Date | undefined };

interface ParseTarget<S extends ArgSpecs> {
  name: string;
  description: string;
  args: S;
  /** One typical invocation's arguments (JobDefinition.example). */
  example?: string;
}

/** Help is wrapped to this width whatever the terminal's, so it reads the same in a pod's log. */
export const HELP_WIDTH = 100;

/**
 * Parses a job's argv: flags from the declarations in `job.args`, plus the flags every job has:
 * `--logical-date`, `--force`, `--dry-run` and `--help`. Unknown flags, missing values and invalid values throw UsageError naming
 * the flag (every required flag that is missing at once); `--help` returns the help text instead.
 */
export function parseJobArgv<S extends ArgSpecs>(job: ParseTarget<S>, argv: readonly string[], env: Record<string, string | undefined>): ParsedArgv<S> {
  const command = buildCommand(job);
  // Commander writes help in pieces (the help, then each addHelpText block): keep them all.
  let help: string | undefined;
  command.exitOverride().configureOutput({
    writeOut: (text) => (help = (help ?? "") + text),
    writeErr: () => {},
    outputError: () => {},
  });
  // Everything after the first `--` belongs to a "rest" argument, when the job declares one.
  const restKey = Object.entries(job.args).find(([, spec]) => spec.kind === "rest")?.[0];
  const split = restKey ? argv.indexOf("--") : -1;
  const own = split >= 0 ? argv.slice(0, split) : argv;
  try {
    command.parse([...own], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.help") return { help: help ?? command.helpInformation() };
      throw new UsageError(`${job.name}: ${error.message.replace(/^error: /, "")}`);
    }
    throw error;
  }
  const raw = command.opts<Record<string, string | boolean | string[] | undefined>>();
  if (restKey) raw[restKey] = split >= 0 ? argv.slice(split + 1) : [];
  const args: Record<string, unknown> = {};
  // Every flag missing is named at once, so a first run is not a round trip per flag.
  const missing: Array<{ flag: string; env?: string }> = [];
  for (const [key, spec] of Object.entries(job.args)) {
    const flag = `--${kebabCase(key)}`;
    const fromEnv = raw[key] === undefined ? spec.fromEnv?.(env) : undefined;
    const value = raw[key] ?? fromEnv ?? spec.default;
    const result = validateArg(spec, value);
    if (!result.ok && value === undefined) {
      missing.push({ flag, env: spec.envHelp });
    } else if (!result.ok) {
      const source = fromEnv !== undefined ? `${flag} (from ${spec.envHelp})` : flag;
      const shown = typeof value === "string" ? ` (got "${value}")` : "";
      throw new UsageError(`${job.name}: ${source} ${result.reason}${shown}`);
    } else args[key] = result.value;
  }
  const [only] = missing;
  if (missing.length === 1) throw new UsageError(`${job.name}: ${only!.flag} is required${only!.env ? ` (or set ${only!.env})` : ""}`);
  if (missing.length) {
    const named = missing.map(({ flag, env }) => `${flag}${env ? ` (or set ${env})` : ""}`);
    throw new UsageError(`${job.name}: ${named.slice(0, -1).join(", ")} and ${named.at(-1)} are required`);
  }
  const logicalDate = resolveLogicalDate({ flag: raw.logicalDate as string | undefined, env });
  if (raw.force === true && !logicalDate) throw new UsageError(`${job.name}: --force reruns a logical date that already succeeded; give --logical-date (or ETL_LOGICAL_DATE)`);
  return { args: args as ArgValues<S>, dryRun: raw.dryRun === true, force: raw.force === true, logicalDate };
}

function buildCommand(job: ParseTarget<ArgSpecs>): Command {
  const command = new Command(job.name).description(job.description).allowExcessArguments(false).helpOption("-h, --help", "show this help");
  command.configureHelp({ helpWidth: HELP_WIDTH });
  const wrap = (text: string) => command.createHelp().boxWrap(text, HELP_WIDTH);
  for (const [key, spec] of Object.entries(job.args)) {
    if (spec.kind === "rest") {
      command.usage(`[options] -- <${kebabCase(key)}...>`);
      command.addHelpText("after", `\n${wrap(`After --: ${spec.help}`)}`);
      continue;
    }
    const flag = `--${kebabCase(key)}`;
    const notes = [isRequired(spec) ? "required" : "", spec.choices ? `one of: ${spec.choices.join(", ")}` : "", spec.default !== undefined ? `default: ${spec.default}` : "", spec.envHelp ? `or from ${spec.envHelp}` : ""].filter(Boolean);
    const help = notes.length ? `${spec.help} (${notes.join("; ")})` : spec.help;
    command.option(spec.kind === "switch" ? flag : `${flag} ${spec.placeholder}`, help);
  }
  command.option("--logical-date <date>", "the slot this run stands for, YYYY-MM-DD or an ISO timestamp (or from ETL_LOGICAL_DATE); a slot that already succeeded is skipped");
  command.option("--force", "run even if this logical date already succeeded");
  command.option("--dry-run", "read and compare, write nothing");
  if (job.example) command.addHelpText("after", `\nExample:\n${exampleLines(`etl ${job.name} ${job.example}`)}`);
  return command;
}

/** A value flag without a default that the job cannot do without (its validation refuses no value). */
export function isRequired(spec: ArgSpec<unknown>): boolean {
  return spec.kind === "value" && spec.default === undefined && !validateArg(spec, undefined).ok;
}

/** `  etl job --a 1 --b 2`, continued with a backslash before a flag where it would pass HELP_WIDTH, as a shell reads it. */
function exampleLines(commandLine: string): string {
  const lines = ["  "];
  const parts = commandLine.split(/ (?=--)/);
  for (const [i, part] of parts.entries()) {
    const last = lines.length - 1;
    // Room for the " \\" a line ends with when another follows it.
    const room = i === parts.length - 1 ? HELP_WIDTH : HELP_WIDTH - 2;
    if (lines[last]!.trim() && lines[last]!.length + 1 + part.length > room) {
      lines[last] += " \\";
      lines.push(`      ${part}`);
    } else lines[last] += lines[last]!.trim() ? ` ${part}` : part;
  }
  return lines.join("\n");
}
