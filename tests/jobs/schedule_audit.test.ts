import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createLogger } from "../../core/log";
import { Metrics } from "../../core/metrics/metrics";
import { loadMigrations, migrate } from "../../core/db/migrate";
import { discoverJobs, loadJobs } from "../../core/runtime/registry";
import { jobSchedules } from "../../core/runtime/schedules";
import { auditSchedules, type AuditedJob } from "../../processors/observability/schedule/audit";
import { expectedSlots } from "../../core/runtime/cron";
import { SlotRunRepository } from "../../repositories/slot_runs";
import { createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";

let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
});
afterEach(async () => {
  await db.drop();
});

const MINUTE = 60_000;
let runNumber = 0;

interface SeededRun {
  job: string;
  status: string;
  slot: string | number;
  shard?: string;
  /** Minutes after the slot the run started. */
  startedAfter?: number;
  /** Minutes it ran (finished_at, or for lost and running rows the last heartbeat). */
  ranFor?: number;
  /** A running row whose heartbeat the database sees as just now. */
  liveHeartbeat?: boolean;
  argsHash?: string;
}

/** Writes a ledger row as the runner would have left it; returns its run id. */
async function seedRun(run: SeededRun): Promise<string> {
  const runId = `00000000-0000-4000-8000-${String(++runNumber).padStart(12, "0")}`;
  const slot = new Date(run.slot).getTime();
  const started = new Date(slot + (run.startedAfter ?? 1) * MINUTE);
  const ended = new Date(started.getTime() + (run.ranFor ?? 5) * MINUTE);
  const open = run.status === "running" || run.status === "lost";
  await db.sql`
    insert into etl_job_runs (run_id, job, lane, status, logical_date, shard, args_hash, host, version, started_at, heartbeat_at, finished_at)
    values (${runId}::uuid, ${run.job}, 'data_pipeline', ${run.status}, ${new Date(slot)}, ${run.shard ?? null}, ${run.argsHash ?? "h"}, 'test', '0.0.0',
            ${started}, ${run.liveHeartbeat ? db.sql`now()` : ended}, ${open && run.status === "running" ? null : ended})`;
  return runId;
}

const quietLog = () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ format: "json", level: "info", secrets: [], write: (line) => void lines.push(JSON.parse(line)) });
  return { log, lines };
};

async function audit(jobs: AuditedJob[], now: string, since = "7d", grace = 10) {
  const { log, lines } = quietLog();
  const metrics = new Metrics();
  const sinceMs = Number(since.slice(0, -1)) * { d: 86_400_000, h: 3_600_000 }[since.slice(-1) as "d" | "h"];
  const counts = await auditSchedules({ jobs, runs: new SlotRunRepository(db.sql), sinceMs, graceMs: grace * MINUTE, now: new Date(now), log, metrics });
  const slots = lines.filter((l) => l.event === "schedule_audit.slot");
  return { counts, slots, gauges: metrics.gauges() };
}

describe("schedule_audit", () => {
  test("every kind of slot of a Europe/Berlin job across the spring-forward day", async () => {
    const job = "berlin_nightly";
    // 02:30 Berlin: 01:30Z in winter, 00:30Z in summer; 2026-03-29's 02:30 does not exist.
    const onTime = await seedRun({ job, status: "succeeded", slot: "2026-03-25T01:30Z", startedAfter: 1 });
    const late = await seedRun({ job, status: "succeeded", slot: "2026-03-26T01:30Z", startedAfter: 30 });
    // 03-27: missed. A run at 03-27 02:30 UTC stands for no slot and is left out.
    await seedRun({ job, status: "succeeded", slot: "2026-03-27T02:30Z" });
    const doubled = [await seedRun({ job, status: "succeeded", slot: "2026-03-28T01:30Z" }), await seedRun({ job, status: "succeeded", slot: "2026-03-28T01:30Z", startedAfter: 20 })];
    // Not a slot (the wall time did not exist): a run for it is left out, and no slot is missed.
    await seedRun({ job, status: "succeeded", slot: "2026-03-29T01:30Z" });
    // A run that failed and was retried (a Job's backoffLimit) is on time when the retry was.
    const retried = [await seedRun({ job, status: "failed", slot: "2026-03-30T00:30Z", startedAfter: 0, ranFor: 1 }), await seedRun({ job, status: "succeeded", slot: "2026-03-30T00:30Z", startedAfter: 2 })];
    const lost = await seedRun({ job, status: "running", slot: "2026-03-31T00:30Z" });
    const failed = [await seedRun({ job, status: "failed", slot: "2026-04-01T00:30Z", ranFor: 1 }), await seedRun({ job, status: "interrupted", slot: "2026-04-01T00:30Z", startedAfter: 3 })];
    // The last slot, 04-02 00:30Z, is still running with a live heartbeat; a skipped run did no work.
    const running = await seedRun({ job, status: "running", slot: "2026-04-02T00:30Z", liveHeartbeat: true });
    await seedRun({ job, status: "skipped", slot: "2026-04-02T00:30Z", startedAfter: 2 });

    const { counts, slots, gauges } = await audit(
      [{ name: job, schedule: { name: "default", cron: "30 2 * * *", timeZone: "Europe/Berlin" } }],
      "2026-04-02T00:45Z",
      "8d",
    );
    // A slot whose every attempt failed delivered nothing: a breach like a missed one.
    expect(counts).toEqual({ schedules: 1, slots: 8, onTime: 2, late: 1, healed: 0, missed: 1, doubled: 1, lost: 1, failedSlots: 1, running: 1, failed: 4 });
    expect(slots.map((s) => [s.slot, s.slotLocal, s.kind, s.runIds])).toEqual([
      ["2026-03-26T01:30:00.000Z", "2026-03-26T02:30:00+01:00", "late", [late]],
      ["2026-03-27T01:30:00.000Z", "2026-03-27T02:30:00+01:00", "missed", []],
      ["2026-03-28T01:30:00.000Z", "2026-03-28T02:30:00+01:00", "doubled", doubled],
      ["2026-03-31T00:30:00.000Z", "2026-03-31T02:30:00+02:00", "lost", [lost]],
      ["2026-04-01T00:30:00.000Z", "2026-04-01T02:30:00+02:00", "failed", failed],
    ]);
    expect(slots[0]).toMatchObject({ auditedJob: job, timeZone: "Europe/Berlin", delaySeconds: 1800, level: "warn" });
    expect(slots[1]).toMatchObject({ level: "error" });
    expect(slots[4]).toMatchObject({ kind: "failed", level: "error" });
    expect(slots.flatMap((s) => s.runIds as string[])).not.toContain(onTime);
    expect(slots.flatMap((s) => s.runIds as string[])).not.toContain(retried[1]);
    expect(slots.flatMap((s) => s.runIds as string[])).not.toContain(running);
    const gauge = (kind: string) => gauges.find((g) => g.name === "etl_schedule_slots" && g.labels.job === job && g.labels.kind === kind)?.value;
    expect([gauge("on_time"), gauge("late"), gauge("missed"), gauge("doubled"), gauge("lost"), gauge("failed"), gauge("running")]).toEqual([2, 1, 1, 1, 1, 1, 1]);
  });

  test("America/New_York fall back: 01:30 comes twice and each is a slot of its own", async () => {
    const job = "ny_nightly";
    const schedule = { name: "default", cron: "30 1 * * *", timeZone: "America/New_York" };
    // 10-31 05:30Z (EDT), 11-01 05:30Z (EDT) and 06:30Z (EST), 11-02 06:30Z (EST).
    for (const slot of ["2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"]) await seedRun({ job, status: "succeeded", slot });
    const first = await audit([{ name: job, schedule }], "2026-11-02T12:00Z", "3d");
    expect(first.counts).toMatchObject({ slots: 4, onTime: 3, missed: 1, failed: 1 });
    expect(first.slots.map((s) => [s.slot, s.slotLocal, s.kind])).toEqual([["2026-11-01T06:30:00.000Z", "2026-11-01T01:30:00-05:00", "missed"]]);

    await seedRun({ job, status: "succeeded", slot: "2026-11-01T06:30Z" });
    const second = await audit([{ name: job, schedule }], "2026-11-02T12:00Z", "3d");
    expect(second.counts).toMatchObject({ slots: 4, onTime: 4, missed: 0, failed: 0 });
    expect(second.slots).toEqual([]);
  });

  test("sharded jobs expect every shard; runs of one slot at the same time are doubled; slots inside the grace wait", async () => {
    const job = "sharded_hourly";
    for (const shard of ["0/2", "1/2"]) await seedRun({ job, status: "succeeded", slot: "2026-11-20T10:00Z", shard });
    await seedRun({ job, status: "succeeded", slot: "2026-11-20T11:00Z", shard: "0/2" });
    // Two runs of shard 0 at 12:00 with different arguments, working at once.
    const together = [await seedRun({ job, status: "succeeded", slot: "2026-11-20T12:00Z", shard: "0/2", ranFor: 30, argsHash: "a" }), await seedRun({ job, status: "failed", slot: "2026-11-20T12:00Z", shard: "0/2", startedAfter: 10, argsHash: "b" })];
    await seedRun({ job, status: "lost", slot: "2026-11-20T12:00Z", shard: "1/2" });
    // 13:00 is 5 minutes old at the audit: inside the 10-minute grace, not judged yet.
    const { counts, slots } = await audit([{ name: job, schedule: { name: "default", cron: "0 * * * *", shards: 2 } }], "2026-11-20T13:05Z", "4h");
    expect(counts).toEqual({ schedules: 1, slots: 6, onTime: 3, late: 0, healed: 0, missed: 1, doubled: 1, lost: 1, failedSlots: 0, running: 0, failed: 3 });
    expect(slots.map((s) => [s.slot, s.shard, s.kind, (s.runIds as string[]).length])).toEqual([
      ["2026-11-20T11:00:00.000Z", "1/2", "missed", 0],
      ["2026-11-20T12:00:00.000Z", "0/2", "doubled", 2],
      ["2026-11-20T12:00:00.000Z", "1/2", "lost", 1],
    ]);
    expect(slots[1]!.runIds).toEqual(together);
  });

  test("on a terminal: one line per schedule with problems, labelled with schedule_audit's own name, none per slot", async () => {
    const job = "terminal_hourly";
    await seedRun({ job, status: "succeeded", slot: "2026-11-21T10:00Z" });
    await seedRun({ job: "terminal_sharded", status: "succeeded", slot: "2026-11-21T10:00Z", shard: "0/4" });
    const lines: string[] = [];
    const log = createLogger({ format: "pretty", level: "info", write: (line) => void lines.push(line.replace(/\x1b\[[0-9;]*m/g, "")) }).child({ job: "schedule_audit", runId: "abcdef12-0000-4000-8000-000000000000" });
    const jobs = [
      { name: job, schedule: { name: "default", cron: "0 * * * *" } },
      { name: "terminal_sharded", schedule: { name: "default", cron: "0 10 * * *", shards: 4 } },
    ];
    // 10:00 to 13:00 (09:00 was before the first run ever): 10:00 on time, the three after it missed.
    const counts = await auditSchedules({ jobs, runs: new SlotRunRepository(db.sql), sinceMs: 6 * 60 * MINUTE, graceMs: 10 * MINUTE, now: new Date("2026-11-21T14:05Z"), log, metrics: new Metrics() });
    expect(counts).toMatchObject({ schedules: 2, missed: 6 });
    expect(lines.map((l) => l.slice(13))).toEqual([
      "ERROR [schedule_audit abcdef12] terminal_hourly (4 slots, UTC): 3 missed: 2026-11-21 11:00, 2026-11-21 12:00, 2026-11-21 13:00\n",
      "ERROR [schedule_audit abcdef12] terminal_sharded (4 slots, UTC): 3 missed: 2026-11-21 10:00 (3 shards)\n",
    ]);
  });

  test("end to end on the real jobs: get_s3_files's four shards a night; exit 0, then 3 when a shard is missing", async () => {
    const now = Date.now();
    const nights = expectedSlots("0 2 * * *", "UTC", now - 3 * 86_400_000, now - 10 * MINUTE);
    const ids: string[] = [];
    for (const slot of nights) for (let i = 0; i < 4; i++) ids.push(await seedRun({ job: "get_s3_files", status: "succeeded", slot, shard: `${i}/4` }));
    const run = (argv: string[]) => runCommand(["jobs/schedule_audit.ts"], argv, { DATABASE_URL: db.url });

    const clean = await run(["--job", "get_s3_files", "--since", "3d"]);
    expect(clean.exitCode).toBe(0);
    expect(clean.summary?.counts).toMatchObject({ schedules: 1, slots: nights.length * 4, onTime: nights.length * 4, failed: 0 });
    expect(clean.events.filter((e) => e.event === "schedule_audit.slot")).toEqual([]);

    await db.sql`delete from etl_job_runs where run_id = ${ids[ids.length - 2]!}::uuid`;
    const gap = await run(["--job", "get_s3_files", "--since", "3d"]);
    expect(gap.exitCode).toBe(3);
    expect(gap.summary?.counts).toMatchObject({ missed: 1, failed: 1 });
    expect(gap.events.filter((e) => e.event === "schedule_audit.slot")).toMatchObject([
      { job: "schedule_audit", auditedJob: "get_s3_files", slot: new Date(nights[nights.length - 1]!).toISOString(), shard: "2/4", kind: "missed", runIds: [] },
    ]);
    // One line per schedule with problems, the one a terminal shows in place of the slots' lines.
    expect(gap.events.filter((e) => e.event === "schedule_audit.schedule")).toMatchObject([
      { job: "schedule_audit", level: "error", auditedJob: "get_s3_files", schedule: "default", slots: nights.length * 4, problems: { missed: 1 } },
    ]);

    // Every schedule of the registry: the others have no runs in this ledger, so they miss.
    const scheduled = (await loadJobs(discoverJobs())).flatMap((j) => jobSchedules(j)).length;
    const all = await run(["--since", "2h", "--grace", "0m"]);
    expect(all.exitCode).toBe(3);
    expect(all.summary?.counts).toMatchObject({ schedules: scheduled });
    expect((all.summary?.counts as Record<string, number>).missed).toBeGreaterThan(0);
  });

  test("a job's named schedules are audited apart, and a missed day a later slot rebuilt (lookbackDays) is healed, not a breach", async () => {
    const job = "daily_build";
    const schedule = (name: string) => ({ name, cron: "30 1 * * *", partitioned: true, args: { lookbackDays: 3 } });
    const seedNamed = async (name: string, slot: string, status = "succeeded") => {
      const runId = await seedRun({ job, status, slot });
      await db.sql`update etl_job_runs set schedule = ${name} where run_id = ${runId}::uuid`;
      return runId;
    };
    // a: 11-02 01:30 missed (builds 11-01), made up by 11-03's slot (11-02, 11-01, 10-31). b: 11-03 01:30 missed, and no slot after it.
    for (const day of ["2026-11-01", "2026-11-03", "2026-11-04"]) await seedNamed("a", `${day}T01:30Z`);
    for (const day of ["2026-11-01", "2026-11-02"]) await seedNamed("b", `${day}T01:30Z`);
    const failedB = await seedNamed("b", "2026-11-04T01:30Z", "failed");
    const { counts, slots } = await audit([{ name: job, schedule: schedule("a") }, { name: job, schedule: schedule("b") }], "2026-11-04T12:00Z", "4d");
    expect(counts).toMatchObject({ schedules: 2, slots: 8, onTime: 5, healed: 1, missed: 1, failedSlots: 1, failed: 2 });
    expect(slots.map((s) => [s.schedule, s.slot, s.partition, s.kind, s.level])).toEqual([
      ["a", "2026-11-02T01:30:00.000Z", "2026-11-01", "healed", "warn"],
      ["b", "2026-11-03T01:30:00.000Z", "2026-11-02", "missed", "error"],
      ["b", "2026-11-04T01:30:00.000Z", "2026-11-03", "failed", "error"],
    ]);
    expect(slots[2]!.runIds).toEqual([failedB]);
  });

  test("slots before a schedule's first run ever are not judged (it was not deployed yet); one that never ran misses every slot", async () => {
    const job = "new_hourly";
    for (const slot of ["2026-11-20T10:00Z", "2026-11-20T11:00Z"]) await seedRun({ job, status: "succeeded", slot });
    const deployed = await audit([{ name: job, schedule: { name: "default", cron: "0 * * * *" } }], "2026-11-20T11:30Z", "1d");
    expect(deployed.counts).toMatchObject({ slots: 2, onTime: 2, missed: 0, failed: 0 });
    const never = await audit([{ name: "never_ran", schedule: { name: "default", cron: "0 * * * *" } }], "2026-11-20T11:30Z", "3h");
    expect(never.counts).toMatchObject({ slots: 3, missed: 3, failed: 3 });
  });

  test("an audit reaches back to where the last full audit that succeeded stopped, beyond its --since", async () => {
    const run = (argv: string[]) => runCommand(["jobs/schedule_audit.ts"], argv, { DATABASE_URL: db.url });
    const first = await run(["--since", "2h", "--grace", "0m"]);
    expect(first.exitCode).toBe(3);
    // The last audit that succeeded started 30 hours ago with a 10-minute grace: the window opens there.
    const audited = await seedRun({ job: "schedule_audit", status: "succeeded", slot: Date.now() - 30 * 60 * MINUTE, startedAfter: 0 });
    await db.sql`update etl_job_runs set args = ${db.sql.json({ since: "25h", grace: "10m" })} where run_id = ${audited}::uuid`;
    const second = await run(["--since", "2h", "--grace", "0m"]);
    expect(second.events.find((e) => e.msg === "auditing back to where the last audit that succeeded stopped")).toBeDefined();
    // 30 hours hold about fifteen times the slots of 2 hours, over every schedule.
    const slots = (counts: unknown) => (counts as Record<string, number>).slots!;
    expect(slots(second.summary?.counts)).toBeGreaterThan(10 * slots(first.summary?.counts));
  });

  test("bad flags exit 2 naming the flag", async () => {
    const run = (argv: string[]) => runCommand(["jobs/schedule_audit.ts"], argv, { DATABASE_URL: db.url });
    for (const [argv, flag] of [
      [["--since", "7x"], "--since"],
      [["--grace", "soon"], "--grace"],
      [["--since", "30m", "--grace", "1h"], "--since"],
      [["--since", "400d"], "--since"],
      [["--job", "no_such_job"], "--job"],
      [["--job", "backfill"], "--job"],
    ] as const) {
      const result = await run([...argv]);
      expect(result.exitCode, argv.join(" ")).toBe(2);
      expect(result.stdout + result.stderr).toContain(flag);
      expect(result.stdout + result.stderr).not.toContain("    at ");
    }
  });
});
