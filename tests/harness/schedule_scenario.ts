/**
 * One run of the schedule simulation (tests/scripts/deploy/schedule_simulation.test.ts): its own
 * PostgreSQL, moto and Pushgateway on a simulated clock, the world of schedule_world.ts, and
 * deploy/'s CronJobs run by cronjob_controller.ts as the lane binaries, with the faults a scenario
 * asks for. What it leaves is read by the test.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startApiServer, type ApiServer } from "./api_server";
import { FakeClock, readCronJobs, simulate, type CronJobSpec, type JobOutcome, type Pod } from "./cronjob_controller";
import { ROOT } from "./fixtures";
import { freePort } from "./processes";
import { startPostgres, type PostgresServer } from "./postgres_server";
import { startPushgateway, type PushgatewayServer } from "./pushgateway_server";
import { startS3 } from "./s3_server";
import { BUCKETS, ScheduleWorld } from "./schedule_world";

const HOUR = 3_600_000;

export interface ScenarioOptions {
  from: number;
  to: number;
  deliveries: Array<{ at: number; rows: number }>;
  /** CronJob name to the slots of it that run; the others are recorded as succeeded by the test (thinned monitors). */
  thinned: Record<string, (at: Date) => boolean>;
  /** Slots the controller does not start. */
  skip?(cronJob: CronJobSpec, slot: number): boolean;
  /** While PostgreSQL is down, [from, to): pods reach no database. */
  databaseDown?: { from: number; to: number };
  /** Kills a pod with SIGKILL this many milliseconds after it started. */
  killAfterMs?(pod: Pod): number | undefined;
}

export type RanPod = Pod & { exitCode: number; ms: number; stdout: string; summary?: Record<string, unknown> };

export interface Scenario {
  outcomes: JobOutcome[];
  pods: RanPod[];
  sql: postgres.Sql;
  world: ScheduleWorld;
  /** A day's committed silver partition: key to its version (UTC, to the second). */
  silverKeys(dataset: string, day: string, key: string, version?: string): Promise<Map<string, string>>;
  /** A day's bronze records: key to its latest version in that partition. */
  bronzeRecords(dataset: string, day: string): Promise<Map<string, string>>;
  readJson(key: string): Promise<Record<string, any>>;
  stop(): Promise<void>;
}

export async function runScenario(dist: string, o: ScenarioOptions): Promise<Scenario> {
  const work = mkdtempSync(join(tmpdir(), "etl-schedule-sim-"));
  // PostgreSQL runs as its own user, and reads the clock's file.
  chmodSync(work, 0o755);
  const clock = new FakeClock(join(work, "faketime"));
  clock.set(o.from - HOUR);
  const [pg, s3, gateway]: [PostgresServer, { endpoint: string; stop(): void }, PushgatewayServer] = await Promise.all([
    startPostgres({ env: clock.env("server") }),
    startS3({ env: clock.env("server") }),
    startPushgateway(),
  ]);
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  await admin.unsafe("create database etl");
  await admin.end();
  const databaseUrl = pg.url.replace(/\/postgres$/, "/etl");
  // Nothing listens there: a database that is down refuses the connection.
  const deadDatabaseUrl = databaseUrl.replace(/:\d+\//, `:${await freePort()}/`);
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  await sql.unsafe(await Bun.file(join(ROOT, "tests/fixtures/external_schema.sql")).text());
  const api: ApiServer = startApiServer();
  const { generateKey } = await import("openpgp");
  const { privateKey, publicKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "partner inbox" }], format: "armored" });
  const world = new ScheduleWorld({ sql, api, endpoint: s3.endpoint, start: o.from - HOUR, publicKey, deliveries: o.deliveries });
  await world.setUp();

  // The ConfigMap etl-config and the Secret etl-secrets every manifest's envFrom names.
  const envFrom: Record<string, Record<string, string>> = {
    "etl-config": { LOG_FORMAT: "json", S3_ENDPOINT: s3.endpoint, AWS_REGION: "us-east-1", PUSHGATEWAY_URL: gateway.url, SERVICE_API_URL: api.url },
    "etl-secrets": { DATABASE_URL: databaseUrl, AWS_ACCESS_KEY_ID: "sim", AWS_SECRET_ACCESS_KEY: "sim-secret", SERVICE_API_TOKEN: api.token, ETL_PGP_PRIVATE_KEY: privateKey },
  };
  const down = (at: number) => o.databaseDown !== undefined && at >= o.databaseDown.from && at < o.databaseDown.to;
  const pods: RanPod[] = [];
  const outcomes = await simulate({
    cronJobs: readCronJobs(join(ROOT, "deploy")),
    from: o.from,
    to: o.to,
    clock,
    skip: o.skip,
    before: (at) => world.advanceTo(at),
    async thinned(cronJob, slot) {
      const runs = o.thinned[cronJob.name];
      if (!runs || runs(new Date(slot))) return false;
      // As the runner would record the slot's run: its job, schedule (from the manifest's file name) and
      // logical date. With the database down, a run could not have recorded itself: nothing is written.
      if (down(slot)) return true;
      const [job, schedule = "default"] = cronJob.file.replace(".cronjob.yaml", "").split(".");
      await sql`insert into etl_job_runs (run_id, job, lane, status, exit_code, logical_date, schedule, args_hash, reason, host, version, started_at, heartbeat_at, finished_at)
                values (${crypto.randomUUID()}, ${job!}, 'observability', 'succeeded', 0, ${new Date(slot)}, ${schedule}, 'thinned', 'thinned by the schedule simulation', 'simulator', 'test',
                        ${new Date(slot + 2000)}, ${new Date(slot + 3000)}, ${new Date(slot + 3000)})`;
      return true;
    },
    async runPod(pod) {
      // The image etl-<lane>:<tag> holds the lane binary, dist/etl-<lane> (lanes spelled with "_" there).
      const binary = join(dist, pod.cronJob.image.split(":")[0]!.replace(/-/g, "_").replace(/^etl_/, "etl-"));
      const secrets = { ...envFrom["etl-secrets"], ...(down(clock.now()) && { DATABASE_URL: deadDatabaseUrl }) };
      const maps: Record<string, Record<string, string>> = { ...envFrom, "etl-secrets": secrets };
      const env = { PATH: process.env.PATH!, HOME: work, ...Object.assign({}, ...pod.cronJob.envFrom.map((name) => maps[name]!)), ...pod.env, ...clock.env("pod") };
      const started = performance.now();
      const child = Bun.spawn([binary, ...pod.argv], { env, stdout: "pipe", stderr: "pipe" });
      const killAfter = o.killAfterMs?.(pod);
      if (killAfter !== undefined) setTimeout(() => child.kill("SIGKILL"), killAfter);
      const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
      // A container killed by a signal exits 128 + the signal, as Kubernetes reports it.
      const code = child.signalCode ? 128 + 9 : exitCode;
      const summary = stdout.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l)).pop();
      pods.push({ ...pod, exitCode: code, ms: performance.now() - started, stdout, summary });
      if (stderr.trim() && code === 0) throw new Error(`${pod.jobName} wrote to stderr: ${stderr.slice(-500)}`);
      return code;
    },
  });

  let duck: Awaited<ReturnType<Awaited<ReturnType<typeof DuckDBInstance.create>>["connect"]>> | undefined;
  const readJson = async (key: string) => JSON.parse(new TextDecoder().decode(await world.read(BUCKETS.lake, key)));
  return {
    outcomes,
    pods,
    sql,
    world,
    readJson,
    async silverKeys(dataset, day, key, version = key) {
      const manifest = await readJson(`silver/${dataset}/dt=${day}/_manifest.json`);
      const files = await Promise.all(manifest.files.map(async (f: { key: string }, i: number) => {
        const path = join(work, `${dataset}-${day}-${i}.parquet`);
        await Bun.write(path, await world.read(BUCKETS.lake, f.key));
        return `'${path}'`;
      }));
      const value = version === key ? `${key}::varchar` : `strftime(${version} at time zone 'UTC', '%Y-%m-%dT%H:%M:%S')`;
      duck ??= await (await DuckDBInstance.create(":memory:")).connect();
      const rows = (await duck.runAndReadAll(`select ${key}::varchar as k, ${value} as v from read_parquet([${files.join(",")}])`)).getRowObjectsJson();
      return new Map(rows.map((r) => [String(r.k), String(r.v)]));
    },
    async bronzeRecords(dataset, day) {
      const latest = new Map<string, string>();
      for (const key of await world.keys(BUCKETS.lake, `bronze/${dataset}/dt=${day}/`)) {
        const name = key.split("/").pop()!;
        if (name.startsWith("_") || name.startsWith(".")) continue;
        const bytes = await world.read(BUCKETS.lake, key);
        const text = new TextDecoder().decode(key.endsWith(".gz") ? Bun.gunzipSync(bytes as Uint8Array<ArrayBuffer>) : bytes);
        const records = key.includes(".ndjson") ? text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>) : csvRows(text);
        for (const r of records) {
          const [k, v] = dataset === "service_requests" ? [String(r.id), r.updated_at!] : [r.payment_id!, r.reported_at!];
          if (!latest.has(k) || latest.get(k)! < v) latest.set(k, v);
        }
      }
      return latest;
    },
    async stop() {
      await sql.end({ timeout: 1 });
      api.stop();
      gateway.stop();
      s3.stop();
      pg.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

function csvRows(text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.trim().split("\n");
  const names = header!.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((value, i) => [names[i]!, value])));
}

/** One simulated day's slots per CronJob: how many, and what became of them (for the note). */
export function slotTable(outcomes: JobOutcome[], day: string): string {
  const start = Date.parse(`${day}T00:00:00Z`);
  const rows = new Map<string, { slots: number; ran: number; succeeded: number; retried: number; first: string; last: string }>();
  for (const o of outcomes.filter((o) => o.slot >= start && o.slot < start + 24 * HOUR)) {
    const row = rows.get(o.cronJob) ?? { slots: 0, ran: 0, succeeded: 0, retried: 0, first: new Date(o.slot).toISOString().slice(11, 16), last: "" };
    row.slots++;
    if (!o.thinned) row.ran++;
    if (o.status === "succeeded") row.succeeded++;
    if (o.exitCodes.some((c) => c !== 0)) row.retried++;
    row.last = new Date(o.slot).toISOString().slice(11, 16);
    rows.set(o.cronJob, row);
  }
  return [...rows].map(([name, r]) => `${name.padEnd(36)} ${String(r.slots).padStart(4)} slots ${r.first}..${r.last}, ${String(r.ran).padStart(3)} run, ${r.succeeded} succeeded, ${r.retried} retried`).join("\n");
}
