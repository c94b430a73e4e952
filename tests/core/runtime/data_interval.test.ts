import { describe, expect, test } from "bun:test";
import { arg } from "../../../core/runtime/args";
import { parseCron, previousSlot, Zone } from "../../../core/runtime/cron";
import { partitionDateOf, resolveDataInterval } from "../../../core/runtime/data_interval";
import { defineJob, type JobContext } from "../../../core/runtime/job";
import { lookbackDays } from "../../../core/runtime/partition_days";
import { scheduleOfArgs } from "../../../core/runtime/schedules";

const at = (iso: string) => new Date(iso);
const interval = (cron: string, logical: string, env: Record<string, string> = {}, timeZone = "UTC") =>
  resolveDataInterval({ logicalDate: at(logical), env, schedule: { cron, timeZone } });
const iso = (i: { start: Date; end: Date } | undefined) => i && [i.start.toISOString(), i.end.toISOString()];

describe("data intervals", () => {
  test("a slot stands for the time since the previous slot; a daily partition is the day that closed", () => {
    const daily = interval("30 1 * * *", "2026-11-03T01:30:00Z");
    expect(iso(daily)).toEqual(["2026-11-02T01:30:00.000Z", "2026-11-03T01:30:00.000Z"]);
    expect(partitionDateOf(at("2026-11-03T01:30:00Z"), daily)).toBe("2026-11-02");
    // The hourly pull at 00:15 covers 23:15 to 00:15: it closes the day before.
    const hourly = interval("15 * * * *", "2026-11-03T00:15:00Z");
    expect(iso(hourly)).toEqual(["2026-11-02T23:15:00.000Z", "2026-11-03T00:15:00.000Z"]);
    expect(partitionDateOf(at("2026-11-03T00:15:00Z"), hourly)).toBe("2026-11-02");
    expect(partitionDateOf(at("2026-11-03T01:15:00Z"), interval("15 * * * *", "2026-11-03T01:15:00Z"))).toBe("2026-11-03");
  });

  test("a logical date that is no slot of the schedule (a day by hand) has no interval and is its own day", () => {
    expect(interval("30 1 * * *", "2026-11-03T00:00:00Z")).toBeUndefined();
    expect(partitionDateOf(at("2026-11-03T00:00:00Z"), undefined)).toBe("2026-11-03");
    expect(resolveDataInterval({ logicalDate: at("2026-11-03T01:30:00Z"), env: {}, schedule: undefined })).toBeUndefined();
    expect(partitionDateOf(undefined, undefined)).toBeUndefined();
  });

  test("Airflow's data interval is taken as given; an empty one (CronTriggerTimetable) falls back to the cron", () => {
    expect(iso(interval("30 1 * * *", "2026-11-03T01:30:00Z", { ETL_DATA_INTERVAL_START: "2026-11-02T01:30:00+00:00" }))).toEqual(["2026-11-02T01:30:00.000Z", "2026-11-03T01:30:00.000Z"]);
    expect(iso(interval("30 1 * * *", "2026-11-03T01:30:00Z", { ETL_DATA_INTERVAL_START: "2026-11-03T01:30:00+00:00" }))).toEqual(["2026-11-02T01:30:00.000Z", "2026-11-03T01:30:00.000Z"]);
    expect(() => interval("30 1 * * *", "2026-11-03T01:30:00Z", { ETL_DATA_INTERVAL_START: "2026-11-04T00:00:00Z" })).toThrow("is after the logical date");
    expect(() => interval("30 1 * * *", "2026-11-03T01:30:00Z", { ETL_DATA_INTERVAL_START: "yesterday" })).toThrow("ETL_DATA_INTERVAL_START must be a date");
    expect(() => resolveDataInterval({ logicalDate: undefined, env: { ETL_DATA_INTERVAL_START: "2026-11-02" }, schedule: undefined })).toThrow("needs the interval's end");
  });

  test("the previous slot follows the zone's DST as the CronJob controller does", () => {
    // 02:30 Berlin does not exist on 2026-03-29: the slot before 03-30's is 03-28's.
    expect(new Date(previousSlot(parseCron("30 2 * * *"), new Zone("Europe/Berlin"), Date.parse("2026-03-30T00:30:00Z"))!).toISOString()).toBe("2026-03-28T01:30:00.000Z");
    expect(new Date(previousSlot(parseCron("0 0 1 1 *"), new Zone("UTC"), Date.parse("2026-01-01T00:00:00Z"))!).toISOString()).toBe("2025-01-01T00:00:00.000Z");
    expect(iso(interval("*/5 * * * *", "2026-11-03T10:05:00Z"))).toEqual(["2026-11-03T10:00:00.000Z", "2026-11-03T10:05:00.000Z"]);
  });

  test("lookbackDays lists the days oldest first, ending with the day, across a month end", () => {
    expect(lookbackDays("2026-12-01", 3)).toEqual(["2026-11-29", "2026-11-30", "2026-12-01"]);
    expect(lookbackDays("2026-12-01", 1)).toEqual(["2026-12-01"]);
  });
});

describe("a run and its schedule", () => {
  const seen: Array<Pick<JobContext, "logicalDate" | "dataInterval" | "partitionDate" | "schedule">> = [];
  const JOB = defineJob({
    name: "interval_probe",
    description: "records what its context says",
    lane: "core",
    args: { dataset: arg.text("dataset"), depth: arg.integer("depth", { min: 0, default: 1 }) },
    schedules: {
      alpha: { cron: "30 1 * * *", args: { dataset: "alpha" } },
      beta: { cron: "0 */6 * * *", args: { dataset: "beta", depth: 2 } },
    },
    async run(_, ctx) {
      seen.push({ logicalDate: ctx.logicalDate, dataInterval: ctx.dataInterval, partitionDate: ctx.partitionDate, schedule: ctx.schedule });
      return { done: 1 };
    },
  });
  const run = async (argv: string[], env: Record<string, string> = {}) => {
    const lines: string[] = [];
    const exitCode = await JOB.entrypoint(argv, { env: { LOG_FORMAT: "json", ...env }, write: (l) => void lines.push(l), handleSignals: false });
    return { exitCode, started: lines.map((l) => JSON.parse(l)).find((e) => e.event === "job.started"), context: seen.at(-1)! };
  };

  test("the schedule whose arguments the run has gives the interval; the CronJob's Job name gives the slot", async () => {
    // The controller names the Job <cronjob>-<scheduled minutes since the epoch>.
    const minutes = Date.parse("2026-11-03T01:30:00Z") / 60_000;
    const alpha = await run(["--dataset", "alpha"], { ETL_KUBERNETES_JOB_NAME: `interval-probe-alpha-${minutes}` });
    expect(alpha.exitCode).toBe(0);
    expect(alpha.context).toMatchObject({ schedule: "alpha", partitionDate: "2026-11-02" });
    expect(alpha.started).toMatchObject({ schedule: "alpha", dataInterval: { start: "2026-11-02T01:30:00.000Z", end: "2026-11-03T01:30:00.000Z" } });
    // beta's arguments, at one of beta's slots: six hours back.
    const beta = await run(["--dataset", "beta", "--depth", "2", "--logical-date", "2026-11-03T00:00:00Z"]);
    expect(beta.context).toMatchObject({ schedule: "beta", partitionDate: "2026-11-02", dataInterval: { start: at("2026-11-02T18:00:00Z") } });
    // Other arguments: no schedule, no interval, the logical date's own day.
    const byHand = await run(["--dataset", "beta", "--logical-date", "2026-11-03T00:00:00Z"]);
    expect(byHand.context).toMatchObject({ schedule: undefined, dataInterval: undefined, partitionDate: "2026-11-03" });
    expect(scheduleOfArgs(JOB, { dataset: "alpha", depth: 5 })?.name).toBe("alpha");
    // Of two that match, the one that fixes more: a schedule of no fixed arguments matches every run.
    const two = defineJob({ ...JOB, name: "two_schedules", schedules: { any: { cron: "0 * * * *", args: {} }, beta: { cron: "0 5 * * *", args: { dataset: "beta" } } } });
    expect([scheduleOfArgs(two, { dataset: "beta", depth: 1 })?.name, scheduleOfArgs(two, { dataset: "gamma", depth: 1 })?.name]).toEqual(["beta", "any"]);
  });

  test("a bad interval from Airflow is a usage error (exit 2), not a stack trace", async () => {
    const bad = await run(["--dataset", "alpha", "--logical-date", "2026-11-03T01:30:00Z"], { ETL_DATA_INTERVAL_START: "2026-11-05" });
    expect(bad.exitCode).toBe(2);
  });

  test("schedule declarations are checked when the job is defined", () => {
    const base = { name: "bad_schedules", description: "d", lane: "core" as const, args: { n: arg.integer("n", { min: 0 }) }, run: async () => ({}) };
    expect(() => defineJob({ ...base, schedules: { default: { cron: "0 * * * *", args: {} } } })).toThrow('must be snake_case and not "default"');
    expect(() => defineJob({ ...base, schedules: { a: { cron: "0 * * * *", args: { n: -1 } } } })).toThrow("schedule a: n");
    expect(() => defineJob({ ...base, schedule: { cron: "0 * * * *", args: {} }, schedules: { a: { cron: "0 * * * *", args: {} } } })).toThrow("not both");
    expect(() => defineJob({ ...base, schedules: { a: { cron: "0 * * * *", args: { m: 1 } as never } } })).toThrow("m, which is not an argument");
  });
});
