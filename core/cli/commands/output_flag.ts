import { CommandUsageError } from "./operator";

/** The operator commands' `-o` (kubectl's): the table that fits, `wide` for every column whole, `json`. */
export const OUTPUT_OPTIONS = { output: { type: "string", short: "o" }, json: { type: "boolean" } } as const;

const OUTPUTS = ["wide", "json"] as const;
export type Output = "table" | (typeof OUTPUTS)[number];

/** `-o wide|json`, or `--json` (the flag before -o, kept), or the table; anything else is a usage error. */
export function outputOf(command: string, values: { output?: string; json?: boolean }): Output {
  if (values.output === undefined) return values.json ? "json" : "table";
  if (!(OUTPUTS as readonly string[]).includes(values.output)) throw new CommandUsageError(`${command}: -o must be one of ${OUTPUTS.join(", ")} (got "${values.output}")`);
  if (values.json && values.output !== "json") throw new CommandUsageError(`${command}: --json and -o ${values.output} ask for two outputs; give one`);
  return values.output as Output;
}
