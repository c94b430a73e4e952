import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, createTestDatabase, runCommand, runEtl, type TestDatabase } from "../../harness/fixtures";
import { track } from "../../harness/processes";

let db: TestDatabase;
let dir: string;

beforeEach(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "etl-ledger-"));
});

afterEach(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

const probe = (argv: string[], env: Record<string, string | undefined> = {}) =>
  runCommand(["tests/fixtures/jobs/probe.ts"], argv, { DATABASE_URL: db.url, ...env });

/** A probe run that works for a minute, once its row is written (it has started working). */
async function startLongProbe() {
  const marker = join(dir, "started");
  const child = track(
    Bun.spawn(["bun", "tests/fixtures/jobs/probe.ts", "--sleep-ms", "60000", "--marker", marker], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json" },
      stdout: "ignore",
    }),
  );
  for (let i = 0; i < 200 && !existsSync(marker); i++) await Bun.sleep(50);
  return { child, runId: JSON.parse(readFileSync(marker, "utf8")).runId as string };
}

const rowOf = async (runId: unknown) => (await db.sql`select * from etl_job_runs where run_id = ${String(runId)}::uuid`)[0];

describe("run ledger", () => {
  test("every status gets one row that agrees with the job.finished event", async () => {
    const expected = { succeeded: 0, partial: 3, quarantined: 3, failed: 1, transient: 75, skip: 0 } as const;
    for (const [outcome, exitCode] of Object.entries(expected)) {
      const run = await probe(["--outcome", outcome, "--label", "secret-free"]);
      expect(run.exitCode).toBe(exitCode);
      const summary = run.summary!;
      const row = await rowOf(summary.runId);
      expect(row).toBeDefined();
      expect(row!.status).toBe(summary.status);
      expect(row!.exit_code).toBe(exitCode);
      expect(row!.counts).toEqual(summary.counts as object);
      expect(row!.job).toBe("probe");
      expect(row!.lane).toBe("core");
      expect(row!.args).toMatchObject({ outcome, label: "secret-free", sleepMs: 0 });
      expect(row!.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(row!.host).toBeTruthy();
      expect(row!.finished_at).toBeInstanceOf(Date);
      if (outcome === "failed" || outcome === "transient") expect(row!.error).toBe(summary.error as string);
      if (outcome === "skip") expect(row!.reason).toBe("the probe was told to skip");
      if (outcome === "succeeded") expect(row!.metrics).toMatchObject({ probe_calls: 1 });
    }
    const statuses = await db.sql`select status from etl_job_runs order by started_at`;
    expect(statuses.map((r) => r.status)).toEqual(["succeeded", "partial", "partial", "failed", "failed", "skipped"]);
  });

  test("an interrupted run is finished as interrupted", async () => {
    const { child, runId } = await startLongProbe();
    expect((await rowOf(runId))!.status).toBe("running");
    child.kill("SIGTERM");
    expect(await child.exited).toBe(143);
    const row = await rowOf(runId);
    expect(row!.status).toBe("interrupted");
    expect(row!.exit_code).toBe(143);
  });

  test("a run killed without finishing is marked lost by the next run of its job, found by its stale heartbeat", async () => {
    const { child, runId } = await startLongProbe();
    child.kill("SIGKILL");
    await child.exited;

    // A fresh heartbeat: the next run leaves it alone.
    await probe([]);
    expect((await rowOf(runId))!.status).toBe("running");

    await db.sql`update etl_job_runs set heartbeat_at = now() - interval '3 minutes' where run_id = ${runId}::uuid`;
    const next = await probe([]);
    expect(next.events.some((e) => e.msg === "marked runs lost: their heartbeat stopped or their process died" && (e.runIds as string[]).includes(runId))).toBe(true);
    const lost = await rowOf(runId);
    expect(lost!.status).toBe("lost");
    expect(lost!.reason).toContain("no heartbeat since");

    const runs = await runEtl(["runs", "--job", "probe", "--status", "lost"], { DATABASE_URL: db.url });
    expect(runs.exitCode).toBe(0);
    expect(runs.stdout).toContain(runId.slice(0, 8));
    expect(runs.stdout).toContain("lost");
  });

  test("a retry after its run was SIGKILLed waits out the dead run's slot and does the work", async () => {
    const marker = join(dir, "started");
    const env = { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json", ETL_LEASE_TTL_SECONDS: "2", PROBE_SLEEP_MS: "60000" };
    const argv = ["tests/fixtures/jobs/probe.ts", "--logical-date", "2026-11-06", "--marker", marker];
    const killed = track(Bun.spawn(["bun", ...argv], { cwd: ROOT, env, stdout: "ignore" }));
    for (let i = 0; i < 200 && !existsSync(marker); i++) await Bun.sleep(50);
    const { runId } = JSON.parse(readFileSync(marker, "utf8"));
    killed.kill("SIGKILL");
    await killed.exited;
    // The retry has the same key (same arguments): it is not skipped behind the dead run.
    const started = performance.now();
    const retry = await probe(argv.slice(1), { ETL_LEASE_TTL_SECONDS: "2" });
    expect(retry.summary!.status).toBe("succeeded");
    expect(retry.summary!.runId).not.toBe(runId);
    expect(JSON.parse(readFileSync(marker, "utf8")).runId).toBe(retry.summary!.runId);
    // It waited for the dead run's lease to expire (2 s), not longer.
    expect(performance.now() - started).toBeLessThan(6000);
    const dead = await rowOf(runId);
    expect(dead!.status).toBe("lost");
    expect(dead!.reason).toContain(`run ${retry.summary!.runId} took over its slot`);
  });

  test("a run that cannot write its ledger row does not start: exit 75", async () => {
    await probe([]); // migrates
    await db.sql`alter table etl_job_runs add constraint refuse_all check (false) not valid`;
    const marker = join(dir, "started");
    const run = await probe(["--marker", marker]);
    expect(run.exitCode).toBe(75);
    expect(run.summary!.error).toContain("could not be recorded in the run ledger");
    expect(existsSync(marker)).toBe(false);
  });

  test("without DATABASE_URL a job that needs no database runs and reports in its event only", async () => {
    const run = await runCommand(["tests/fixtures/jobs/probe.ts"], [], { DATABASE_URL: "" });
    expect(run.exitCode).toBe(0);
    expect(run.summary).toMatchObject({ status: "succeeded" });
  });
});

describe("logical dates", () => {
  test("taken from a CronJob's Job name, from --logical-date and from ETL_LOGICAL_DATE, and seen by the job", async () => {
    const marker = join(dir, "m");
    // 29,383,200 minutes since the epoch = 2025-11-13T02:00:00Z.
    const fromJobName = await probe(["--marker", marker], { ETL_KUBERNETES_JOB_NAME: "get-s3-files-29383320" });
    expect(fromJobName.exitCode).toBe(0);
    const expected = new Date(29383320 * 60_000);
    expect(JSON.parse(readFileSync(marker, "utf8")).logicalDate).toBe(expected.toISOString());
    expect((await rowOf(fromJobName.summary!.runId))!.logical_date).toEqual(expected);

    const fromFlag = await probe(["--marker", marker, "--logical-date", "2026-11-01"]);
    expect(JSON.parse(readFileSync(marker, "utf8")).logicalDate).toBe("2026-11-01T00:00:00.000Z");
    expect(fromFlag.events.find((e) => e.event === "job.started")!.logicalDate).toBe("2026-11-01");

    const fromEnv = await probe(["--marker", marker], { ETL_LOGICAL_DATE: "2026-11-02T03:30:00+01:00" });
    expect(fromEnv.exitCode).toBe(0);
    expect(JSON.parse(readFileSync(marker, "utf8")).logicalDate).toBe("2026-11-02T02:30:00.000Z");

    // A Job created by hand from the CronJob has no scheduled time in its name.
    await probe(["--marker", marker], { ETL_KUBERNETES_JOB_NAME: "get-s3-files-manual" });
    expect(JSON.parse(readFileSync(marker, "utf8")).logicalDate).toBeNull();
  });

  test("a bad logical date is a usage error naming its source", async () => {
    for (const [argv, env, source] of [
      [["--logical-date", "2026-02-30"], {}, "--logical-date"],
      [["--logical-date", "yesterday"], {}, "--logical-date"],
      [[], { ETL_LOGICAL_DATE: "2026-13-01" }, "ETL_LOGICAL_DATE"],
      [["--force"], {}, "--force"],
    ] as const) {
      const run = await probe([...argv], env);
      expect(run.exitCode).toBe(2);
      expect(run.summary!.error).toContain(source);
    }
  });

  test("a logical date that succeeded is skipped naming the earlier run; --force, other args and failed runs do not block", async () => {
    const date = ["--logical-date", "2026-11-01"];
    const failed = await probe([...date, "--outcome", "failed"]);
    expect(failed.exitCode).toBe(1);
    const first = await probe(date);
    expect(first.summary!.status).toBe("succeeded"); // the failure did not block the retry

    const again = await probe(date);
    expect(again.exitCode).toBe(0);
    expect(again.summary!.status).toBe("skipped");
    expect(again.summary!.reason).toContain(String(first.summary!.runId));
    expect((await rowOf(again.summary!.runId))!.status).toBe("skipped");

    expect((await probe([...date, "--label", "other"])).summary!.status).toBe("succeeded");
    expect((await probe([...date, "--shard", "1/2"])).summary!.status).toBe("succeeded");
    expect((await probe(["--logical-date", "2026-11-02"])).summary!.status).toBe("succeeded");
    const forced = await probe([...date, "--force"]);
    expect(forced.summary!.status).toBe("succeeded");
    expect((await rowOf(forced.summary!.runId))!.forced).toBe(true);
  });

  test("two runs of one key started at once: exactly one works, the other is skipped naming it", async () => {
    await probe([]); // migrate first, so both start on equal terms
    // The same arguments, so the same key: the marker file is one of them.
    const marker = join(dir, "started");
    // A short lease: the loser sees the winner renew its slot's lease within a second.
    const runs = await Promise.all([1, 2].map(() => probe(["--logical-date", "2026-11-05", "--sleep-ms", "1500", "--marker", marker], { ETL_LEASE_TTL_SECONDS: "3" })));
    const statuses = runs.map((r) => r.summary!.status).sort();
    expect(statuses).toEqual(["skipped", "succeeded"]);
    const worker = runs.find((r) => r.summary!.status === "succeeded")!;
    const skipped = runs.find((r) => r.summary!.status === "skipped")!;
    expect(skipped.summary!.reason).toContain(String(worker.summary!.runId));
    expect(JSON.parse(readFileSync(marker, "utf8")).runId).toBe(worker.summary!.runId);
    const working = await db.sql`select count(*)::int as n from etl_job_runs where logical_date = '2026-11-05' and status = 'succeeded'`;
    expect(working[0]!.n).toBe(1);
  });
});

test("the heartbeat moves while the run lives and stops when it finishes", async () => {
  const { startLedger } = await import("../../../core/ledger/ledger");
  const { openDatabase } = await import("../../../core/db/db");
  const { createLogger } = await import("../../../core/log");
  await probe([]); // migrates
  const database = await openDatabase(db.url, { applicationName: "ledger-test" });
  try {
    const runId = crypto.randomUUID();
    const run = { runId, job: "probe", lane: "core", logicalDate: undefined, shard: undefined, args: {}, forced: false, dryRun: false };
    const log = createLogger({ format: "json", level: "error", write: () => {} });
    const { ledger } = await startLedger(database.sql, run, log, { acquireLease: () => Promise.reject(new Error("no logical date, no lease")), heartbeatMs: 100 });
    const heartbeat = async () => (await rowOf(runId))!.heartbeat_at as Date;
    const first = await heartbeat();
    await Bun.sleep(400);
    const moved = await heartbeat();
    expect(moved.getTime()).toBeGreaterThan(first.getTime());
    await ledger.finish({ status: "succeeded", exitCode: 0, counts: { done: 1 }, metrics: {} });
    const finished = await heartbeat();
    await Bun.sleep(300);
    expect((await heartbeat()).getTime()).toBe(finished.getTime());
    expect((await rowOf(runId))!.status).toBe("succeeded");
  } finally {
    await database.close();
  }
});
