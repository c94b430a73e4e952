import { Command, CommanderError } from "commander";
import { kebabCase, validateArg, type ArgSpecs, type ArgValues } from "./args";
import { UsageError } from "../errors";
import { resolveLogicalDate } from "./logical_date";

export type ParsedArgv<S extends ArgSpecs> =
  | { help: string }
  | { help?: undefined; args: ArgValues<S>; dryRun: boolean; force: boolean; logicalDate: Date | undefined };

interface ParseTarget<S extends ArgSpecs> {
  name: string;
  description: string;
  args: S;
}

/**
 * Parses a job's argv: flags from the declarations in `job.args`, plus the flags every job has:
 * `--logical-date`, `--force`, `--dry-run` and `--help`. Unknown flags, missing values and invalid values throw UsageError naming
 * the flag; `--help` returns the help text instead.
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
  for (const [key, spec] of Object.entries(job.args)) {
    const flag = `--${kebabCase(key)}`;
    const fromEnv = raw[key] === undefined ? spec.fromEnv?.(env) : undefined;
    const value = raw[key] ?? fromEnv ?? spec.default;
    const result = validateArg(spec, value);
    if (!result.ok) {
      const source = fromEnv !== undefined ? `${flag} (from ${spec.envHelp})` : flag;
      const shown = typeof value === "string" ? ` (got "${value}")` : value === undefined && spec.envHelp ? ` (or set ${spec.envHelp})` : "";
      throw new UsageError(`${job.name}: ${source} ${result.reason}${shown}`);
    }
    args[key] = result.value;
  }
  const logicalDate = resolveLogicalDate({ flag: raw.logicalDate as string | undefined, env });
  if (raw.force === true && !logicalDate) throw new UsageError(`${job.name}: --force reruns a logical date that already succeeded; give --logical-date (or ETL_LOGICAL_DATE)`);
  return { args: args as ArgValues<S>, dryRun: raw.dryRun === true, force: raw.force === true, logicalDate };
}

function buildCommand(job: ParseTarget<ArgSpecs>): Command {
  const command = new Command(job.name).description(job.description).allowExcessArguments(false).helpOption("-h, --help", "show this help");
  for (const [key, spec] of Object.entries(job.args)) {
    if (spec.kind === "rest") {
      command.usage(`[options] -- <${kebabCase(key)}...>`);
      command.addHelpText("after", `\nAfter --: ${spec.help}`);
      continue;
    }
    const flag = `--${kebabCase(key)}`;
    const notes = [spec.default !== undefined ? `default: ${spec.default}` : "", spec.envHelp ? `or from ${spec.envHelp}` : ""].filter(Boolean);
    const help = notes.length ? `${spec.help} (${notes.join("; ")})` : spec.help;
    command.option(spec.kind === "switch" ? flag : `${flag} ${spec.placeholder}`, help);
  }
  command.option("--logical-date <date>", "the slot this run stands for, YYYY-MM-DD or an ISO timestamp (or from ETL_LOGICAL_DATE); a slot that already succeeded is skipped");
  command.option("--force", "run even if this logical date already succeeded");
  command.option("--dry-run", "read and compare, write nothing");
  return command;
}
