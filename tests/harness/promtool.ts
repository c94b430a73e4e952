/**
 * Debian's real promtool (the `prometheus` package, which .ci/run installs; the server is never
 * started) linting an exposition text: `promtool check metrics` reads it on stdin, prints one
 * `<metric name> <problem>` line per lint problem on stderr and exits 3 when there is one; text it
 * cannot parse exits 1 ("error while linting: ...").
 */
import { existsSync } from "node:fs";

export const PROMTOOL = "/usr/bin/promtool";

export interface LintProblem {
  metric: string;
  problem: string;
}

export interface PromtoolVerdict {
  exitCode: number;
  problems: LintProblem[];
  /** Everything promtool printed, for the failure message. */
  output: string;
}

/** `promtool check metrics` on `text`. Throws when promtool is missing or could not parse the text. */
export async function checkMetrics(text: string): Promise<PromtoolVerdict> {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: the metric lint needs Debian's prometheus package, which .ci/run installs (apt-get install -y prometheus)`);
  const child = Bun.spawn([PROMTOOL, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const output = (stdout + stderr).trim();
  if (exitCode !== 0 && exitCode !== 3) throw new Error(`promtool check metrics exited ${exitCode}: ${output}\n--- the text ---\n${text}`);
  const problems = output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const space = line.indexOf(" ");
      return { metric: line.slice(0, space), problem: line.slice(space + 1) };
    });
  return { exitCode, problems, output };
}
