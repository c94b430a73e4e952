/**
 * The deployed system over days: tests/harness/cronjob_controller.ts runs every slot of every
 * CronJob in deploy/ (schedule, timeZone, args, env, Indexed completions, backoffLimit,
 * podFailurePolicy) as the lane binary the manifest's image holds, with the Job name the
 * controller gives, against a PostgreSQL, a moto and a Pushgateway of its own whose clock is the
 * simulated one (libfaketime), while tests/harness/schedule_world.ts changes the world between
 * slots (tests/harness/schedule_scenario.ts puts it together).
 *
 * - Two days and a morning, no fault: every closed day's silver holds every record of its bronze
 *   at its latest version, each partner delivery is in its day's partition and each closed day is
 *   profiled with its final contents, every attachment of every active agency is archived, the
 *   last monitors pass, no run failed or was lost.
 * - A day (deployed at 08:00) and a morning with faults (two slots the controller never started, a
 *   SIGKILLed shard of get_s3_files, PostgreSQL down for an hour): what heals has healed (the data
 *   is all there), and the morning's schedule_audit reports exactly the slots that did not run
 *   (a pod that could not reach the database left no ledger row: its slot is missed).
 *
 * Thinned, as the test says: the monitors that read and write no data run fewer of their slots
 * (THINNED: db_metrics on the hour, s3_metrics every six hours, freshness_monitor's sources check
 * every three hours and in the last hour); each slot left out is a succeeded row in etl_job_runs
 * written by the test, so schedule_audit judges it on time. Every slot of every other CronJob runs.
 * The two scenarios run side by side, each on its own servers and clock.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BUILD_TIMEOUT_MS, buildDist } from "../../harness/dist";
import { runScenario, slotTable, type Scenario } from "../../harness/schedule_scenario";
import { ACTIVE_AGENCIES, BUCKETS } from "../../harness/schedule_world";

const HOUR = 3_600_000;
const MINUTE = 60_000;
const at = (iso: string) => Date.parse(iso);
const thinned = (to: number): Record<string, (at: Date) => boolean> => ({
  "db-metrics": (t) => t.getUTCMinutes() === 0,
  "s3-metrics-etl-lake": (t) => t.getUTCMinutes() === 0 && t.getUTCHours() % 6 === 0,
  "s3-metrics-etl-attachments-archive": (t) => t.getUTCMinutes() === 0 && t.getUTCHours() % 6 === 0,
  "freshness-monitor-sources": (t) => t.getUTCMinutes() === 0 && (t.getUTCHours() % 3 === 0 || t.getTime() >= to - HOUR),
});

const CLEAN = { from: at("2026-11-02T00:00:00Z"), to: at("2026-11-04T07:00:00Z"), closedDays: ["2026-11-02", "2026-11-03"] };
/** A delivery at an ordinary hour, and one a few minutes before midnight. */
const DELIVERIES = [{ at: at("2026-11-02T14:20:00Z"), rows: 5 }, { at: at("2026-11-03T23:52:00Z"), rows: 4 }];
// Deployed at 08:00 on the 2nd (slots before a schedule's first run are not judged): its day closes at midnight.
const FAULTY = { from: at("2026-11-02T08:00:00Z"), to: at("2026-11-03T06:05:00Z"), closedDays: ["2026-11-02"] };
/** CronJob, its schedule as schedule_audit names it, the slot the controller never started. */
const MISSED = [["ingest-api", "ingest_api.default", at("2026-11-02T10:15:00Z")], ["decrypt-files", "decrypt_files.default", at("2026-11-02T14:30:00Z")]] as const;
const DATABASE_DOWN = { from: at("2026-11-02T20:00:00Z"), to: at("2026-11-02T21:00:00Z") };
const KILLED = { cronJob: "get-s3-files", slot: at("2026-11-03T02:00:00Z"), index: 2 };

let clean: Scenario;
let faulty: Scenario;

beforeAll(async () => {
  const dist = await buildDist();
  [clean, faulty] = await Promise.all([
    runScenario(dist, { ...CLEAN, deliveries: DELIVERIES, thinned: thinned(CLEAN.to) }),
    runScenario(dist, {
      ...FAULTY,
      deliveries: DELIVERIES.slice(0, 1),
      thinned: thinned(FAULTY.to),
      skip: (cronJob, slot) => MISSED.some(([name, , when]) => cronJob.name === name && slot === when),
      databaseDown: DATABASE_DOWN,
      killAfterMs: (pod) => (pod.cronJob.name === KILLED.cronJob && pod.slot === KILLED.slot && pod.index === KILLED.index && pod.attempt === 1 ? 400 : undefined),
    }),
  ]);
}, BUILD_TIMEOUT_MS + 900_000);

afterAll(async () => {
  await Promise.all([clean?.stop(), faulty?.stop()]);
});

/** Silver of a closed day equals its bronze deduplicated to the latest version, key by key, for both datasets. */
async function expectSilverIsBronze(s: Scenario, day: string): Promise<void> {
  for (const [dataset, key, version] of [["service_requests", "id", "updated_at"], ["partner_payments", "payment_id", "reported_at"]] as const) {
    const bronze = await s.bronzeRecords(dataset, day);
    expect({ dataset, day, bronze: bronze.size > 0 }).toEqual({ dataset, day, bronze: true });
    const expected = Object.fromEntries([...bronze].map(([k, v]) => [k, v.slice(0, 19)]));
    expect({ dataset, day, silver: Object.fromEntries(await s.silverKeys(dataset, day, key, version)) }).toEqual({ dataset, day, silver: expected });
  }
}

/** Every attachment of an active agency uploaded before the last get_s3_files slot is archived under its agency; none of the inactive one. */
async function expectAttachmentsArchived(s: Scenario, lastCopy: number): Promise<void> {
  const archived = new Set(await s.world.keys(BUCKETS.archive));
  for (const a of s.world.attachments.filter((a) => a.at < lastCopy)) {
    expect({ id: a.id, archived: archived.has(`agency_id=${a.agency}/${a.key}`) }).toEqual({ id: a.id, archived: ACTIVE_AGENCIES.includes(a.agency) });
  }
}

async function expectDeliveriesInTheirDay(s: Scenario): Promise<void> {
  for (const delivery of s.world.deliveries) {
    const day = new Date(delivery.at).toISOString().slice(0, 10);
    const inSilver = await s.silverKeys("partner_payments", day, "payment_id");
    expect({ day, missing: delivery.rows.map((r) => r.payment_id).filter((id) => !inSilver.has(id!)) }).toEqual({ day, missing: [] });
  }
}

const lastSummary = (s: Scenario, cronJob: string) => {
  const last = s.outcomes.filter((o) => o.cronJob === cronJob).at(-1)!;
  return { status: last.status, summary: s.pods.filter((p) => p.jobName === last.jobName).at(-1)?.summary };
};

describe("two days and a morning of deploy/'s CronJobs", () => {
  test("every slot of every CronJob ran, and no Job failed", () => {
    console.log(`slots of 2026-11-03:\n${slotTable(clean.outcomes, "2026-11-03")}`);
    expect(clean.outcomes.filter((o) => o.status !== "succeeded").map((o) => `${o.jobName} ${o.exitCodes.join(",")}`)).toEqual([]);
    expect(clean.outcomes.length).toBeGreaterThan(1000);
  });

  test("no run in the ledger failed or was lost", async () => {
    const rows = await clean.sql`select status, count(*)::int as n from etl_job_runs group by status order by status`;
    expect(rows.filter((r) => !["succeeded", "skipped"].includes(r.status))).toEqual([]);
  });

  test("every closed day's silver holds every record of its bronze at its latest version, for both datasets, and nothing is lost on the way", async () => {
    for (const day of CLEAN.closedDays) await expectSilverIsBronze(clean, day);
    // Every request the application changed before the last closed day's final pull (00:15, which asks
    // from 10 minutes before its watermark) is in that day's or an earlier day's bronze at its latest version.
    const lastPull = at(`${CLEAN.closedDays.at(-1)}T00:00:00Z`) + 24 * HOUR + 5 * MINUTE;
    const pulled = new Map<string, string>();
    for (const day of CLEAN.closedDays) for (const [id, v] of await clean.bronzeRecords("service_requests", day)) if (!pulled.has(id) || pulled.get(id)! < v) pulled.set(id, v);
    for (const r of [...clean.world.latestRequests().values()].filter((r) => at(r.updated_at) >= CLEAN.from && at(r.updated_at) < lastPull)) {
      expect({ id: r.id, at: pulled.get(String(r.id))?.slice(0, 19) }).toEqual({ id: r.id, at: r.updated_at.slice(0, 19) });
    }
  });

  test("each partner delivery is in the silver partition of the day it landed, the one a few minutes before midnight too", () => expectDeliveriesInTheirDay(clean));

  test("each closed day is profiled with its final contents", async () => {
    for (const day of CLEAN.closedDays) {
      for (const dataset of ["service_requests", "partner_payments"]) {
        const manifest = await clean.readJson(`silver/${dataset}/dt=${day}/_manifest.json`);
        const profile = await clean.readJson(`silver/${dataset}/dt=${day}/_profile/profile.json`);
        expect({ dataset, day, run: profile.source.manifest.runId, rows: profile.rows }).toEqual({ dataset, day, run: manifest.run_id, rows: manifest.rows.out });
      }
    }
  });

  test("every attachment of every active agency is in the archive, under its agency's prefix; the inactive agency's are not", () => expectAttachmentsArchived(clean, at("2026-11-04T02:00:00Z")));

  test("the last freshness check, completeness check and schedule audit pass", () => {
    for (const cronJob of ["freshness-monitor-sources", "freshness-monitor-completeness", "schedule-audit"]) {
      expect({ cronJob, ...lastSummary(clean, cronJob) }).toMatchObject({ cronJob, status: "succeeded", summary: { exitCode: 0, counts: { failed: 0 } } });
    }
  });
});

describe("a day and a morning with faults: two slots never started, a shard SIGKILLed, PostgreSQL down for an hour", () => {
  test("what heals has healed: the closed day's silver, the delivery, every attachment (the killed shard's pod was retried)", async () => {
    await expectSilverIsBronze(faulty, "2026-11-02");
    await expectDeliveriesInTheirDay(faulty);
    await expectAttachmentsArchived(faulty, KILLED.slot);
    const killed = faulty.pods.filter((p) => p.cronJob.name === KILLED.cronJob && p.slot === KILLED.slot && p.index === KILLED.index);
    expect(killed.map((p) => p.exitCode)).toEqual([137, 0]);
    // The killed run's row: lost, its slot taken over by the retry.
    const [lost] = await faulty.sql`select count(*)::int as n from etl_job_runs where job = 'get_s3_files' and status = 'lost' and shard = ${`${KILLED.index}/4`}`;
    expect(lost!.n).toBe(1);
  });

  test("every Job of the outage's hour failed after its retries; no other Job failed but the audit that reports them", () => {
    const inOutage = (o: { slot: number }) => o.slot >= DATABASE_DOWN.from && o.slot < DATABASE_DOWN.to;
    const failed = faulty.outcomes.filter((o) => o.status === "failed");
    expect(failed.filter(inOutage).length).toBe(faulty.outcomes.filter((o) => inOutage(o) && !o.thinned).length);
    expect(failed.filter((o) => !inOutage(o)).map((o) => o.cronJob)).toEqual(["schedule-audit"]);
    // Exit 75 (the database unreachable) is retried: backoffLimit 3 is four pods.
    for (const o of failed.filter(inOutage)) expect({ job: o.jobName, codes: o.exitCodes }).toEqual({ job: o.jobName, codes: [75, 75, 75, 75] });
  });

  test("the morning's schedule_audit reports exactly the slots that did not run, and exits 3", async () => {
    const audit = lastSummary(faulty, "schedule-audit");
    expect(audit).toMatchObject({ status: "failed", summary: { exitCode: 3 } });
    const pod = faulty.pods.filter((p) => p.cronJob.name === "schedule-audit").at(-1)!;
    const reported = pod.stdout.split("\n").filter((l) => l.includes('"schedule_audit.slot"')).map((l) => JSON.parse(l)).filter((e) => e.level === "error");
    const shown = new Set(reported.map((e) => `${e.auditedJob}.${e.schedule} ${e.slot} ${e.kind}`));
    // What should be there: the two slots never started, and every slot of the outage's hour.
    const expected = new Set<string>();
    for (const o of faulty.outcomes.filter((o) => o.slot >= DATABASE_DOWN.from && o.slot < DATABASE_DOWN.to)) {
      const [job, schedule = "default"] = o.file.replace(".cronjob.yaml", "").split(".");
      // A run that could not reach the database left no row in its ledger: the slot is missed.
      expected.add(`${job}.${schedule} ${new Date(o.slot).toISOString()} missed`);
    }
    for (const [, schedule, slot] of MISSED) expected.add(`${schedule} ${new Date(slot).toISOString()} missed`);
    expect([...shown].sort()).toEqual([...expected].sort());
  });
});
