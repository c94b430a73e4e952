import { expect, test } from "bun:test";
import { ROOT, runCommand } from "../../harness/fixtures";

/**
 * What a terminal shows after `raw`: \r returns to the line's start, ESC[2K clears the line,
 * other escape sequences (colours) take no room, and characters overwrite what is under them.
 */
function screen(raw: string): string[] {
  const lines: string[][] = [[]];
  let column = 0;
  for (let i = 0; i < raw.length; i++) {
    const line = lines[lines.length - 1]!;
    const c = raw[i]!;
    if (c === "\x1b") {
      const match = /^\x1b\[([0-9;]*)([A-Za-z])/.exec(raw.slice(i));
      if (match?.[2] === "K" && match[1] === "2") line.length = 0;
      i += (match?.[0].length ?? 1) - 1;
    } else if (c === "\r") column = 0;
    else if (c === "\n") (lines.push([]), (column = 0));
    else line[column++] = c;
  }
  return lines.map((l) => l.join("")).filter((l) => l.trim() !== "");
}

test("on a terminal, one live progress line sits under the log lines and never garbles them", async () => {
  const command = "bun tests/fixtures/jobs/probe.ts --items 12 --sleep-ms 2400";
  const child = Bun.spawn(["script", "-qec", command, "/dev/null"], {
    cwd: ROOT,
    // No LOG_FORMAT: pretty because stdout is a terminal. No database: the runner needs none here.
    env: { ...process.env, LOG_FORMAT: "", DATABASE_URL: "", COLUMNS: "120", TERM: "xterm" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [raw, exitCode] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  expect(exitCode).toBe(0);
  // The live line was drawn, with a total, a rate, the bytes and an ETA...
  expect(raw).toMatch(/▸ \d+\/12 items \(\d+%\) · [\d.]+\/s · [\d.]+ MiB, [\d.]+ MiB\/s · eta \d+:\d\d/);
  // ...and the terminal ends with the log lines alone, each whole, in order, the live line gone.
  const shown = screen(raw);
  expect(shown.some((l) => l.includes("▸"))).toBe(false);
  expect(shown).toHaveLength(7);
  expect(shown[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  \[probe [0-9a-f]{8}\] job started$/);
  expect(shown[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  \[probe [0-9a-f]{8}\] a log line between items item=5$/);
  expect(shown[2]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  \[probe [0-9a-f]{8}\] a log line between items item=10$/);
  // Then the summary in words (core/runtime/run_summary_text.ts), the bytes the progress counted.
  expect(shown.slice(3)).toEqual([
    expect.stringMatching(/^✔ probe succeeded in \d\.\ds$/),
    "  done 12 · failed 0",
    expect.stringMatching(/^  transferred 12\.0 MiB at \d+\.\d MiB\/s$/),
    expect.stringMatching(/^  run      [0-9a-f-]{36} \(not recorded: no DATABASE_URL\)$/),
  ]);
});

test("without a terminal, a job.progress event every interval with done, total, rate and ETA", async () => {
  const run = await runCommand(["tests/fixtures/jobs/probe.ts"], ["--items", "10", "--sleep-ms", "2000"], { DATABASE_URL: "", ETL_PROGRESS_SECONDS: "0.4" });
  expect(run.exitCode).toBe(0);
  const progress = run.events.filter((e) => e.event === "job.progress");
  expect(progress.length).toBeGreaterThanOrEqual(3);
  const done = progress.map((e) => e.done as number);
  expect(done).toEqual([...done].sort((a, b) => a - b));
  expect(progress.at(-1)).toMatchObject({ msg: "progress", total: 10, job: "probe" });
  expect(progress.at(-1)!.etaSeconds).toBeNumber();
  expect(progress.at(-1)!.bytes).toBe((done.at(-1) as number) * 1024 * 1024);
  expect(run.stdout).not.toContain("▸");
});

test("get_s3_files counts its attachments first: its progress has the total", async () => {
  const { createBucket, createTestDatabase, putObject, seedAttachments } = await import("../../harness/fixtures");
  const db = await createTestDatabase();
  try {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    const attachments = Array.from({ length: 60 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `p/${i}.txt` }));
    await seedAttachments(db.sql, [10], attachments);
    await Promise.all(attachments.map((a) => putObject(source, a.key, "x".repeat(100))));
    const run = await runCommand(["jobs/get_s3_files.ts"], ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination, "--concurrency", "2"], {
      DATABASE_URL: db.url,
      ETL_PROGRESS_SECONDS: "0.1",
    });
    expect(run.exitCode).toBe(0);
    const progress = run.events.filter((e) => e.event === "job.progress");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => e.total === 60)).toBe(true);
  } finally {
    await db.drop();
  }
});
