/**
 * core/runtime/work_directory.ts against real processes: the directories of one SIGKILLed go, those of
 * live ones stay, whatever else is in $TMPDIR stays.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { makeWorkDirectory, removeAbandonedWorkDirectories } from "../../../core/runtime/work_directory";
import { ROOT } from "../../harness/fixtures";
import { track } from "../../harness/processes";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A process that makes a work directory in `dir` and waits to be killed; resolves once it made it. */
async function startHolder(dir: string): Promise<{ kill(): Promise<void>; directory: string }> {
  const code = `const { makeWorkDirectory } = await import(${JSON.stringify(join(ROOT, "core/runtime/work_directory.ts"))}); console.log(await makeWorkDirectory("silver")); await Bun.sleep(120_000);`;
  const child = track(Bun.spawn(["bun", "-e", code], { env: { ...process.env, TMPDIR: dir }, stdout: "pipe", stderr: "inherit" }));
  cleanups.push(() => child.kill("SIGKILL"));
  const reader = child.stdout.getReader();
  let printed = "";
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the holder exited with ${await child.exited} before it made its directory`);
    printed += new TextDecoder().decode(value);
  }
  return {
    directory: printed.trim(),
    async kill() {
      child.kill("SIGKILL");
      await child.exited;
    },
  };
}

describe("work directories", () => {
  test("a SIGKILLed process's directory is removed by the next sweep; a live process's, another host's and others are kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etl-workdir-test-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const [killed, live] = [await startHolder(dir), await startHolder(dir)];
    writeFileSync(join(killed.directory, "staged.ndjson"), "{}\n");
    await killed.kill();
    const own = await makeWorkDirectory("profile", dir);
    const kept = [
      basename(live.directory),
      basename(own),
      // Made before work directories were named for their process, another host's, a file.
      "etl-silver-AbC123",
      `etl-silver-elsewhere-${process.pid}.1-AbC123`,
    ];
    for (const name of kept.slice(2)) mkdirSync(join(dir, name));
    writeFileSync(join(dir, `etl-silver-${hostname()}-999999999.1-AbC123`), "a file, not a directory");
    // This process's pid with another start time: a process that had the pid before.
    const reused = `etl-silver-${hostname()}-${process.pid}.1-XyZ789`;
    mkdirSync(join(dir, reused));

    expect(basename(killed.directory)).toMatch(new RegExp(`^etl-silver-${hostname()}-\\d+\\.\\d+-[A-Za-z0-9]{6}$`));
    expect((await removeAbandonedWorkDirectories(dir)).sort()).toEqual([basename(killed.directory), reused].sort());
    expect(existsSync(killed.directory)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual([...kept, `etl-silver-${hostname()}-999999999.1-AbC123`].sort());

    await live.kill();
    expect(await removeAbandonedWorkDirectories(dir)).toEqual([basename(live.directory)]);
  });
});
