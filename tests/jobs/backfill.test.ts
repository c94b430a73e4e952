import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job as K8sJob } from "kubernetes-models/batch/v1";
import { parse } from "yaml";
import type { EtlError } from "../../core/errors";
import { createLogger } from "../../core/log";
import { discoverJobs, loadJobs } from "../../core/runtime/registry";
import { parseJobArgv } from "../../core/runtime/parse_args";
import { runBackfill } from "../../processors/data_pipeline/backfill";
import { ROOT, createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { startPostgres, type PostgresServer } from "../harness/postgres_server";
import { track } from "../harness/processes";

let db: TestDatabase;
let lake: string;

beforeEach(async () => {
  db = await createTestDatabase();
  await db.sql`insert into agency (id, name) values (10, 'Harbour Agency')`;
  lake = mkdtempSync(join(tmpdir(), "etl-backfill-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(lake, { recursive: true, force: true });
});

const DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"];
const record = (id: number) => JSON.stringify({ id, agency_id: 10, title: "t", status: "open", created_at: "2026-10-01T00:00:00Z", updated_at: "2026-10-01T00:00:00Z" });

const env = () => ({ DATABASE_URL: db.url, ETL_LEASE_TTL_SECONDS: "2" });
/** Runs the backfill over `bucket`; its children's logs share its stdout, so `summary` is the backfill's own. */
async function backfill(argv: string[], bucket = `file:${lake}`) {
  const result = await runCommand(["scripts/etl.ts"], ["backfill", "--job", "bronze_to_silver", "--from", DAYS[0]!, "--to", DAYS.at(-1)!, ...argv, "--", "--dataset", "service_requests", "--bucket", bucket], env());
  return { ...result, summary: result.events.find((e) => e.event === "job.finished" && e.job === "backfill") };
}
const slotRuns = async () =>
  db.sql`select to_char(logical_date at time zone 'UTC', 'YYYY-MM-DD') as day, status from etl_job_runs where job = 'bronze_to_silver' order by started_at`;

describe.each(LAKE_KINDS)("backfill of bronze_to_silver on a %s lake", (kind) => {
  let target: Lake;
  beforeEach(async () => {
    target = await createLake(kind);
  });
  afterEach(() => target.dispose());
  const bronze = (day: string, body: string) => target.write(`bronze/service_requests/dt=${day}/a.ndjson`, body);

  test("runs every day's slot once; a rerun plans nothing; a failed day is retried alone with --reprocess failed; --reprocess all forces", async () => {
    for (const day of DAYS) await bronze(day, record(1) + "\n");
    // Day 2 lacks a required column in every record: its run fails.
    await bronze(DAYS[1]!, JSON.stringify({ id: 1, agency_id: 10 }) + "\n");

    const first = await backfill(["--parallel", "2"], target.arg);
    expect(first.exitCode).toBe(3);
    expect(first.summary).toMatchObject({ job: "backfill", counts: { planned: 3, succeeded: 2, failed: 1 } });
    expect(first.events.find((e) => e.msg === "backfill plan")!.slots).toEqual(DAYS.map((d) => `${d} missing`));
    expect((await slotRuns()).map((r) => `${r.day} ${r.status}`).sort()).toEqual([`${DAYS[0]} succeeded`, `${DAYS[1]} failed`, `${DAYS[2]} succeeded`]);
    for (const day of [DAYS[0]!, DAYS[2]!]) expect(await target.keys(`silver/service_requests/dt=${day}/_manifest.json`)).toHaveLength(1);

    await bronze(DAYS[1]!, record(1) + "\n");
    const failedOnly = await backfill(["--reprocess", "failed"], target.arg);
    expect(failedOnly.exitCode).toBe(0);
    expect(failedOnly.events.find((e) => e.msg === "backfill plan")!.slots).toEqual([`${DAYS[1]} failed`]);
    expect(failedOnly.summary!.counts).toMatchObject({ planned: 1, succeeded: 1 });

    const again = await backfill([], target.arg);
    expect(again.summary!.counts).toMatchObject({ planned: 0, succeeded: 0, failed: 0 });

    const all = await backfill(["--reprocess", "all", "--parallel", "3"], target.arg);
    expect(all.summary!.counts).toMatchObject({ planned: 3, succeeded: 3 });
    const forced = await db.sql`select count(*)::int as n from etl_job_runs where job = 'bronze_to_silver' and forced and status = 'succeeded'`;
    expect(forced[0]!.n).toBe(3);
  });

  test("a backfill killed mid-range, run again, continues where it stopped", async () => {
    const days = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"];
    for (const day of days) await bronze(day, record(1) + "\n");
    const argv = ["scripts/etl.ts", "backfill", "--job", "bronze_to_silver", "--from", days[0]!, "--to", days.at(-1)!, "--parallel", "1", "--", "--dataset", "service_requests", "--bucket", target.arg];
    const killed = track(Bun.spawn(["bun", ...argv], { cwd: ROOT, env: { ...process.env, ...env(), LOG_FORMAT: "json" }, stdout: "ignore" }));
    // Until two days are done (the ledger table appears with the first run).
    while (!((await slotRuns().catch(() => [])).filter((r) => r.status === "succeeded").length >= 2)) await Bun.sleep(50);
    killed.kill("SIGKILL");
    await killed.exited;
    const done = (await slotRuns()).filter((r) => r.status === "succeeded").map((r) => r.day);

    const resumed = await runCommand(argv, [], env());
    expect(resumed.exitCode).toBe(0);
    const planned = resumed.events.find((e) => e.msg === "backfill plan")!.slots as string[];
    expect(planned.length).toBeLessThan(days.length);
    expect(planned.map((s) => s.split(" ")[0])).toEqual(days.filter((d) => !done.includes(d)));
    const succeeded = new Set((await slotRuns()).filter((r) => r.status === "succeeded").map((r) => r.day));
    expect([...succeeded].sort()).toEqual(days);
  });
});

test("--dry-run prints the plan and runs nothing; --emit-k8s writes an Indexed Job whose pods split the days", async () => {
  const dry = await backfill(["--dry-run"]);
  expect(dry.exitCode).toBe(0);
  expect(dry.summary!.counts).toMatchObject({ planned: 3, days: 3 });
  // A dry run migrates nothing: no ledger table, let alone runs.
  expect((await db.sql`select to_regclass('etl_job_runs') as t`)[0]!.t).toBeNull();

  const file = join(lake, "backfill.yaml");
  const emitted = await backfill(["--emit-k8s", file, "--pods", "3"]);
  expect(emitted.exitCode).toBe(0);
  const manifest = parse(readFileSync(file, "utf8"));
  expect(() => new K8sJob(manifest).validate()).not.toThrow();
  expect(manifest.spec).toMatchObject({ completionMode: "Indexed", completions: 3, parallelism: 3 });
  const container = manifest.spec.template.spec.containers[0];
  expect(container.env).toEqual([{ name: "JOB_COMPLETION_COUNT", value: "3" }]);
  // Each pod's arguments parse, and its shard comes from the Indexed Job's completion index.
  const backfillJob = (await loadJobs(discoverJobs())).find((j) => j.name === "backfill")!;
  const [, ...argv] = container.args as string[];
  const pod = parseJobArgv(backfillJob, argv, { JOB_COMPLETION_INDEX: "2", JOB_COMPLETION_COUNT: "3" });
  expect("args" in pod && pod.args).toMatchObject({ job: "bronze_to_silver", shard: { index: 2, count: 3 }, jobArgs: ["--dataset", "service_requests", "--bucket", `file:${lake}`] });
});

test("refuses what it cannot do, with exit 2 naming it", async () => {
  const cases: Array<[string[], string]> = [
    [["backfill", "--job", "nope", "--from", "2026-10-01", "--to", "2026-10-02"], 'no such job to backfill'],
    [["backfill", "--job", "bronze_to_silver", "--from", "2026-10-03", "--to", "2026-10-01", "--", "--dataset", "service_requests", "--bucket", "file:x"], "must run forward"],
    [["backfill", "--job", "bronze_to_silver", "--from", "2026-02-30", "--to", "2026-03-01"], "--from must be a date YYYY-MM-DD that exists"],
    [["backfill", "--job", "bronze_to_silver", "--from", "2026-10-01", "--to", "2026-10-02", "--", "--dataset", "service_requests", "--bucket", "file:x", "--logical-date", "2026-10-01"], "must not set --logical-date"],
    [["backfill", "--job", "bronze_to_silver", "--from", "2026-10-01", "--to", "2026-10-02", "--", "--bogus"], "unknown option '--bogus'"],
  ];
  for (const [argv, message] of cases) {
    const run = await runCommand(["scripts/etl.ts"], argv, env());
    expect(run.exitCode).toBe(2);
    expect(run.summary!.job).toBe("backfill");
    expect(String(run.summary?.error)).toContain(message);
  }
});

test("a backfill whose failed days all failed transiently is transient (75); one with a day that failed for good is partial (3)", async () => {
  const log = createLogger({ format: "json", level: "error", write: () => {} });
  const backfillOf = (codes: number[]) => {
    const slots = codes.map((_, i) => ({ date: `2026-10-0${i + 1}`, state: "missing" as const }));
    const exitCodes = new Map(slots.map((slot, i) => [slot.date, codes[i]!]));
    return runBackfill({ slots, parallel: 2, run: async (date) => exitCodes.get(date)!, log, counts: {}, signal: new AbortController().signal }).then(
      (counts) => ({ counts }),
      (error: EtlError) => ({ code: error.code, message: error.message }),
    );
  };
  expect(await backfillOf([0, 0])).toEqual({ counts: { planned: 2, succeeded: 2, failed: 0 } });
  // A day that exited 1, 2 or 3 stays failed whatever a rerun does: the runner makes the backfill partial.
  expect(await backfillOf([75, 3, 0])).toEqual({ counts: { planned: 3, succeeded: 1, failed: 2 } });
  expect(await backfillOf([2, 75])).toEqual({ counts: { planned: 2, succeeded: 0, failed: 2 } });
  expect(await backfillOf([75, 1])).toEqual({ counts: { planned: 2, succeeded: 0, failed: 2 } });
  expect(await backfillOf([75, 0, 143])).toEqual({
    code: "transient",
    message: "2 of 3 day(s) failed transiently: 2026-10-01 (exit 75), 2026-10-03 (exit 143); a rerun of the backfill retries them",
  });
  // A day child SIGKILLed (137, as the OOM killer does) is run again by the next backfill; beside a day that failed for good, partial.
  expect(await backfillOf([137, 0])).toEqual({ code: "transient", message: "1 of 2 day(s) failed transiently: 2026-10-01 (exit 137); a rerun of the backfill retries them" });
  expect(await backfillOf([137, 1])).toEqual({ counts: { planned: 2, succeeded: 0, failed: 2 } });
});

const FAULTS: Array<[string, (server: PostgresServer) => Promise<void>]> = [
  ["stopped", (server) => server.fastShutdown()],
  ["frozen", async (server) => server.freeze(true)],
];

test.each(FAULTS)("PostgreSQL %s under a backfill: its days exit 75, and so does the backfill (Kubernetes retries it), not 3", async (_, fault) => {
  // A server of its own: stopping the shared one would fail every other test running.
  const server = await startPostgres();
  const sql = (await import("postgres")).default(server.url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(readFileSync(join(ROOT, "tests/fixtures/external_schema.sql"), "utf8"));
    await sql`insert into agency (id, name) values (10, 'Harbour Agency')`;
    await sql.end();
    for (const day of DAYS) {
      mkdirSync(join(lake, `bronze/service_requests/dt=${day}`), { recursive: true });
      writeFileSync(join(lake, `bronze/service_requests/dt=${day}/a.ndjson`), record(1) + "\n");
    }
    const argv = ["scripts/etl.ts", "backfill", "--job", "bronze_to_silver", "--from", DAYS[0]!, "--to", DAYS.at(-1)!, "--parallel", "3", "--", "--dataset", "service_requests", "--bucket", `file:${lake}`];
    const child = track(Bun.spawn(["bun", ...argv], { cwd: ROOT, env: { ...process.env, DATABASE_URL: server.url, LOG_FORMAT: "json" }, stdout: "pipe" }));
    const lines: string[] = [];
    let stopped: Promise<void> | undefined;
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      const complete = pending.split("\n");
      pending = complete.pop()!;
      lines.push(...complete);
      // Once the plan is made the days start: the server goes away, or stops answering, under them.
      if (!stopped && complete.some((l) => l.includes('"msg":"backfill plan"'))) stopped = fault(server);
    }
    await stopped;
    expect(await child.exited).toBe(75);
    const events = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, any>);
    const days = events.filter((e) => e.event === "job.finished" && e.job === "bronze_to_silver");
    const summary = events.find((e) => e.event === "job.finished" && e.job === "backfill")!;
    // A day that finished before the server stopped succeeded; every other one is transient.
    expect(days.filter((d) => d.exitCode !== 0).map((d) => d.exitCode)).toEqual(days.filter((d) => d.exitCode !== 0).map(() => 75));
    expect(summary).toMatchObject({ status: "failed", exitCode: 75 });
    expect(summary.counts.failed).toBeGreaterThan(0);
    expect(summary.error).toContain("a rerun of the backfill retries them");
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    server.stop();
  }
}, 120_000);
