/**
 * The README's commands run as written: after the demo (`bun run demo`, what `make demo` runs),
 * every line of each shell block marked `<!-- runnable -->` is run in a shell of its own, from the
 * clone's root, with no variable of this process but PATH and HOME, as a new terminal would be:
 * `./etl` must find Bun and the demo's settings by itself. Each must exit 0 without a stack trace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const NEW_SHELL = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };

/** The commands of the runnable blocks, one per line, comments and blank lines left out. */
function runnableCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/<!-- runnable -->\n```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((block) => block.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#")));
}

async function shell(command: string, env: Record<string, string> = NEW_SHELL) {
  const child = Bun.spawn(["bash", "-euo", "pipefail", "-c", command], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, exitCode };
}

const commands = runnableCommands(README);

beforeAll(async () => {
  const demo = await shell(`"${process.execPath}" run demo`);
  if (demo.exitCode !== 0) throw new Error(`bun run demo exited ${demo.exitCode}:\n${demo.stdout.slice(-2000)}\n${demo.stderr.slice(-2000)}`);
}, 180_000);

afterAll(async () => {
  await shell("./etl db stop");
});

describe("the README", () => {
  test("says in its first screen how to run commands after the set-up, and has runnable blocks", () => {
    const firstScreen = README.split("\n").slice(0, 60).join("\n");
    expect(firstScreen).toContain("make demo");
    expect(firstScreen).toContain("./etl");
    expect(commands.length).toBeGreaterThanOrEqual(8);
    expect(commands.every((command) => command.startsWith("./etl "))).toBe(true);
  });

  test("every link to a file of the clone points at one", () => {
    const links = [...README.matchAll(/\]\(((?!https?:)[^)#]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(5);
    for (const link of links) expect({ link, exists: existsSync(join(ROOT, link)) }).toEqual({ link, exists: true });
    expect(README).not.toContain("../shared/");
  });

  for (const command of commands) {
    test(`runs as written in a new shell: ${command.replace(/\s+#.*$/, "")}`, async () => {
      const run = await shell(command);
      console.log(`$ ${command}\n${run.stdout}${run.stderr}`);
      expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: expect.not.stringMatching(/\n\s+at .+:\d+:\d+/) });
      expect(run.stdout).not.toMatch(/\n\s+at .+:\d+:\d+/);
    }, 60_000);
  }
});
