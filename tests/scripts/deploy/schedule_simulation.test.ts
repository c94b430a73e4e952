/**
 * The deployed system over two days and a morning: tests/harness/cronjob_controller.ts runs every
 * slot of every CronJob in deploy/ (schedule, timeZone, args, env, Indexed completions,
 * backoffLimit, podFailurePolicy) as the lane binary the manifest's image holds, with the Job
 * name the controller gives, against a PostgreSQL, a moto and a Pushgateway of its own whose clock
 * is the simulated one (libfaketime), while tests/harness/schedule_world.ts changes the world
 * between slots. Then it checks what the deployment promises: every closed day in silver with
 * every record at its latest version and profiled with its final contents, every attachment of
 * every active agency archived, the monitors green, no run failed or lost.
 *
 * Thinned, as the test says: the monitors that read and write no data run fewer of their slots
 * (THINNED: db_metrics on the hour, s3_metrics every six hours, freshness_monitor's sources check
 * every three hours and in the last hour); each slot left out is a succeeded row in etl_job_runs written by the test, so
 * schedule_audit judges it on time. Every slot of every other CronJob runs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startApiServer, type ApiServer } from "../../harness/api_server";
import { FakeClock, readCronJobs, simulate, type JobOutcome, type Pod } from "../../harness/cronjob_controller";
import { BUILD_TIMEOUT_MS, buildDist } from "../../harness/dist";
import { ROOT } from "../../harness/fixtures";
import { startPostgres, type PostgresServer } from "../../harness/postgres_server";
import { startPushgateway, type PushgatewayServer } from "../../harness/pushgateway_server";
import { startS3 } from "../../harness/s3_server";
import { ACTIVE_AGENCIES, BUCKETS, ScheduleWorld } from "../../harness/schedule_world";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FROM = Date.parse("2026-11-02T00:00:00Z");
const TO = Number(process.env.SIM_HOURS) ? FROM + Number(process.env.SIM_HOURS) * 3_600_000 : Date.parse("2026-11-04T07:00:00Z");
const CLOSED_DAYS = ["2026-11-02", "2026-11-03"];
/** A delivery at an ordinary hour, and one a few minutes before midnight. */
/** CronJob to the slots of it that run (minute of the hour, hours): the others are recorded. */
const THINNED: Record<string, (at: Date) => boolean> = {
  "db-metrics": (at) => at.getUTCMinutes() === 0,
  "s3-metrics-etl-lake": (at) => at.getUTCMinutes() === 0 && at.getUTCHours() % 6 === 0,
  "s3-metrics-etl-attachments-archive": (at) => at.getUTCMinutes() === 0 && at.getUTCHours() % 6 === 0,
  "freshness-monitor-sources": (at) => at.getUTCMinutes() === 0 && (at.getUTCHours() % 3 === 0 || at.getTime() >= TO - HOUR),
};
const DELIVERIES = [{ at: Date.parse("2026-11-02T14:20:00Z"), rows: 5 }, { at: Date.parse("2026-11-03T23:52:00Z"), rows: 4 }];

describe("two days and a morning of deploy/'s CronJobs", () => {
  let dist: string;
  let work: string;
  let clock: FakeClock;
  let pg: PostgresServer;
  let sql: postgres.Sql;
  let s3: { endpoint: string; stop(): void };
  let gateway: PushgatewayServer;
  let api: ApiServer;
  let world: ScheduleWorld;
  let databaseUrl: string;
  let privateKey: string;
  const pods: Array<Pod & { exitCode: number; ms: number; summary?: Record<string, unknown> }> = [];
  let outcomes: JobOutcome[] = [];

  beforeAll(async () => {
    dist = await buildDist();
    work = mkdtempSync(join(tmpdir(), "etl-schedule-sim-"));
    // PostgreSQL runs as its own user, and reads the clock's file.
    chmodSync(work, 0o755);
    clock = new FakeClock(join(work, "faketime"));
    clock.set(FROM - HOUR);
    [pg, s3, gateway] = await Promise.all([startPostgres({ env: clock.env("server") }), startS3({ env: clock.env("server") }), startPushgateway()]);
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin.unsafe("create database etl");
    await admin.end();
    databaseUrl = pg.url.replace(/\/postgres$/, "/etl");
    sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
    await sql.unsafe(await Bun.file(join(ROOT, "tests/fixtures/external_schema.sql")).text());
    api = startApiServer();
    const { generateKey } = await import("openpgp");
    let publicKey: string;
    ({ privateKey, publicKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "partner inbox" }], format: "armored" }));
    world = new ScheduleWorld({ sql, api, endpoint: s3.endpoint, start: FROM - HOUR, publicKey, deliveries: DELIVERIES });
    await world.setUp();

    // The ConfigMap etl-config and the Secret etl-secrets every manifest's envFrom names.
    const envFrom: Record<string, Record<string, string>> = {
      "etl-config": { LOG_FORMAT: "json", S3_ENDPOINT: s3.endpoint, AWS_REGION: "us-east-1", PUSHGATEWAY_URL: gateway.url, SERVICE_API_URL: api.url },
      "etl-secrets": { DATABASE_URL: databaseUrl, AWS_ACCESS_KEY_ID: "sim", AWS_SECRET_ACCESS_KEY: "sim-secret", SERVICE_API_TOKEN: api.token, ETL_PGP_PRIVATE_KEY: privateKey },
    };
    const cronJobs = readCronJobs(join(ROOT, "deploy"));
    outcomes = await simulate({
      cronJobs,
      from: FROM,
      to: TO,
      clock,
      before: (at) => world.advanceTo(at),
      async thinned(cronJob, slot) {
        const runs = THINNED[cronJob.name];
        if (!runs || runs(new Date(slot))) return false;
        // As the runner would record the slot's run: its job, schedule (from the manifest's file name) and logical date.
        const [job, schedule = "default"] = cronJob.file.replace(".cronjob.yaml", "").split(".");
        await sql`insert into etl_job_runs (run_id, job, lane, status, exit_code, logical_date, schedule, args_hash, reason, host, version, started_at, heartbeat_at, finished_at)
                  values (${crypto.randomUUID()}, ${job!}, 'observability', 'succeeded', 0, ${new Date(slot)}, ${schedule}, 'thinned', 'thinned by the schedule simulation', 'simulator', 'test',
                          ${new Date(slot + 2000)}, ${new Date(slot + 3000)}, ${new Date(slot + 3000)})`;
        return true;
      },
      async runPod(pod) {
        // The image etl-<lane>:<tag> holds the lane binary, dist/etl-<lane> (lanes spelled with "_" there).
        const binary = join(dist, pod.cronJob.image.split(":")[0]!.replace(/-/g, "_").replace(/^etl_/, "etl-"));
        const env = { PATH: process.env.PATH!, HOME: work, ...Object.assign({}, ...pod.cronJob.envFrom.map((name) => envFrom[name]!)), ...pod.env, ...clock.env("pod") };
        const started = performance.now();
        const child = Bun.spawn([binary, ...pod.argv], { env, stdout: "pipe", stderr: "pipe" });
        const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
        const summary = stdout.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l)).pop();
        pods.push({ ...pod, exitCode, summary, ms: performance.now() - started });
        if (exitCode !== 0) {
          const problems = stdout.split("\n").filter((l) => /"event":"(schedule_audit\.slot|freshness\.source)"/.test(l) && !l.includes('"level":"info"'));
          console.log(`${pod.jobName}${pod.index === undefined ? "" : `/${pod.index}`} exited ${exitCode}: ${summary?.error ?? stderr.slice(-500)}\n${problems.join("\n")}`);
        }
        return exitCode;
      },
    });
  }, 1_800_000);

  afterAll(async () => {
    await sql?.end({ timeout: 1 });
    api?.stop();
    gateway?.stop();
    s3?.stop();
    pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("every slot of every CronJob ran, and no Job failed", () => {
    printSlotTable(outcomes, "2026-11-03");
    const byJob = new Map<string, Array<{ ms: number; inRun: number }>>();
    for (const p of pods) byJob.set(p.cronJob.name, [...(byJob.get(p.cronJob.name) ?? []), { ms: p.ms, inRun: Number(p.summary?.durationMs ?? 0) }]);
    const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
    console.log([...byJob].map(([name, runs]) => `  ${name}: ${runs.length} pods, ${mean(runs.map((r) => r.ms))} ms each (${mean(runs.map((r) => r.inRun))} ms in the run)`).join("\n"));
    const failed = outcomes.filter((o) => o.status !== "succeeded");
    expect(failed.map((o) => `${o.jobName} ${o.exitCodes.join(",")}`)).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(500);
  });

  test("no run in the ledger failed or was lost", async () => {
    const rows = await sql`select status, count(*)::int as n from etl_job_runs group by status order by status`;
    expect(rows.filter((r) => !["succeeded", "skipped"].includes(r.status))).toEqual([]);
  });

  test("every closed day's silver holds every record of its bronze at its latest version, for both datasets", async () => {
    const duck = await (await DuckDBInstance.create(":memory:")).connect();
    for (const day of CLOSED_DAYS) {
      for (const [dataset, key, version] of [["service_requests", "id", "updated_at"], ["partner_payments", "payment_id", "reported_at"]] as const) {
        const bronze = await bronzeRecords(dataset, day);
        expect({ dataset, day, bronze: bronze.size > 0 }).toEqual({ dataset, day, bronze: true });
        const manifest = JSON.parse(new TextDecoder().decode(await world.read(BUCKETS.lake, `silver/${dataset}/dt=${day}/_manifest.json`)));
        const files = await Promise.all(manifest.files.map(async (f: { key: string }, i: number) => {
          const path = join(work, `${dataset}-${day}-${i}.parquet`);
          await Bun.write(path, await world.read(BUCKETS.lake, f.key));
          return `'${path}'`;
        }));
        const rows = (await duck.runAndReadAll(`select ${key}::varchar as k, strftime(${version} at time zone 'UTC', '%Y-%m-%dT%H:%M:%S') as v from read_parquet([${files.join(",")}])`)).getRowObjectsJson();
        const silver = new Map(rows.map((r) => [String(r.k), String(r.v)]));
        const expected = new Map([...bronze].map(([k, v]) => [k, v.slice(0, 19)]));
        expect({ dataset, day, silver: Object.fromEntries(silver) }).toEqual({ dataset, day, silver: Object.fromEntries(expected) });
      }
    }
    // And nothing lost on the way: every request the application changed before the last closed day's
    // final pull (00:15) is in silver at its latest version, in the partition of the pull that got it.
    const lastPull = Date.parse(`${CLOSED_DAYS.at(-1)}T00:00:00Z`) + DAY + 15 * 60_000 - 10 * 60_000;
    const latest = [...world.latestRequests().values()].filter((r) => Date.parse(r.updated_at) < lastPull);
    const inSilver = new Map<string, string>();
    for (const day of CLOSED_DAYS) for (const [id, at] of await bronzeRecords("service_requests", day)) if (!inSilver.has(id) || inSilver.get(id)! < at) inSilver.set(id, at);
    for (const record of latest.filter((r) => Date.parse(r.updated_at) >= FROM)) expect({ id: record.id, at: inSilver.get(String(record.id))?.slice(0, 19) }).toEqual({ id: record.id, at: record.updated_at.slice(0, 19) });
  });

  test("each closed day is profiled with its final contents", async () => {
    for (const day of CLOSED_DAYS) {
      for (const dataset of ["service_requests", "partner_payments"]) {
        const manifest = JSON.parse(new TextDecoder().decode(await world.read(BUCKETS.lake, `silver/${dataset}/dt=${day}/_manifest.json`)));
        const profile = JSON.parse(new TextDecoder().decode(await world.read(BUCKETS.lake, `silver/${dataset}/dt=${day}/_profile/profile.json`)));
        expect({ dataset, day, run: profile.source.manifest.runId, rows: profile.rows }).toEqual({ dataset, day, run: manifest.run_id, rows: manifest.rows.out });
      }
    }
  });

  test("every attachment of every active agency is in the archive, under its agency's prefix; the inactive agency's are not", async () => {
    const archived = new Set(await world.keys(BUCKETS.archive));
    const lastCopy = Date.parse("2026-11-04T02:00:00Z");
    for (const a of world.attachments.filter((a) => a.at < lastCopy)) {
      expect({ id: a.id, archived: archived.has(`agency_id=${a.agency}/${a.key}`) }).toEqual({ id: a.id, archived: ACTIVE_AGENCIES.includes(a.agency) });
    }
  });

  test("the last freshness check and the last schedule audit pass", () => {
    for (const name of ["freshness-monitor-sources", "freshness-monitor-completeness", "schedule-audit"]) {
      const last = outcomes.filter((o) => o.cronJob === name).at(-1)!;
      const summary = pods.filter((p) => p.jobName === last.jobName).at(-1)!.summary;
      expect({ name, status: last.status, counts: summary?.counts }).toMatchObject({ name, status: "succeeded", counts: { failed: 0 } });
    }
  });

  /** A day's bronze records: key to its latest version in that partition. */
  async function bronzeRecords(dataset: string, day: string): Promise<Map<string, string>> {
    const latest = new Map<string, string>();
    for (const key of await world.keys(BUCKETS.lake, `bronze/${dataset}/dt=${day}/`)) {
      const name = key.split("/").pop()!;
      if (name.startsWith("_") || name.startsWith(".")) continue;
      const bytes = await world.read(BUCKETS.lake, key);
      const text = new TextDecoder().decode(key.endsWith(".gz") ? Bun.gunzipSync(bytes as Uint8Array<ArrayBuffer>) : bytes);
      const records = key.includes(".ndjson")
        ? text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>)
        : csvRows(text);
      for (const r of records) {
        const [k, v] = dataset === "service_requests" ? [String(r.id), r.updated_at!] : [r.payment_id!, r.reported_at!];
        if (!latest.has(k) || latest.get(k)! < v) latest.set(k, v);
      }
    }
    return latest;
  }
});

function csvRows(text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.trim().split("\n");
  const names = header!.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((value, i) => [names[i]!, value])));
}

/** One simulated day's slots per CronJob: how many, and what became of them (for the issue's note). */
function printSlotTable(outcomes: JobOutcome[], day: string): void {
  const start = Date.parse(`${day}T00:00:00Z`);
  const rows = new Map<string, { slots: number; succeeded: number; retried: number; first: string; last: string }>();
  for (const o of outcomes.filter((o) => o.slot >= start && o.slot < start + DAY)) {
    const row = rows.get(o.cronJob) ?? { slots: 0, succeeded: 0, retried: 0, first: new Date(o.slot).toISOString().slice(11, 16), last: "" };
    row.slots++;
    if (o.status === "succeeded") row.succeeded++;
    if (o.exitCodes.some((c) => c !== 0)) row.retried++;
    row.last = new Date(o.slot).toISOString().slice(11, 16);
    rows.set(o.cronJob, row);
  }
  console.log(`slots of ${day}:\n${[...rows].map(([name, r]) => `  ${name.padEnd(40)} ${String(r.slots).padStart(4)} slots ${r.first}..${r.last}  ${r.succeeded} succeeded, ${r.retried} retried`).join("\n")}`);
}
