/**
 * Every job's real end-of-run push, linted by Debian's promtool: each job runs as a user runs it,
 * with PUSHGATEWAY_URL at a recording server that keeps each POST body and forwards it to the
 * real Pushgateway (whose answer it returns, so a push the gateway refuses still fails). The
 * gateway's own /metrics is not what is linted: it adds push_time_seconds and the like.
 *
 * The only names allowed a lint problem are postgres_exporter's, which db_metrics keeps for the
 * dashboards built on them (pg_stat_activity_count, pg_locks_count: "_count" on a gauge).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadMigrations, migrate } from "../../core/db/migrate";
import { demoPrivateKey, dropPartnerDelivery } from "../../scripts/demo/demo_partner";
import { makeRecords, startApiServer } from "../harness/api_server";
import { createBucket, createTestDatabase, putObject, runCommand, seedAttachments, type CliResult, type TestDatabase } from "../harness/fixtures";
import { checkMetrics } from "../harness/promtool";
import { startPushgateway, type PushgatewayServer } from "../harness/pushgateway_server";

interface Push {
  job: string;
  body: string;
}

let gateway: PushgatewayServer;
let recorder: ReturnType<typeof Bun.serve>;
const pushes: Push[] = [];
let db: TestDatabase;
let work: string;

beforeAll(async () => {
  gateway = await startPushgateway();
  recorder = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      const body = await request.text();
      const job = /^\/metrics\/job\/([^/]+)/.exec(url.pathname)?.[1];
      if (request.method === "POST" && job) pushes.push({ job, body });
      const answer = await fetch(`${gateway.url}${url.pathname}`, { method: request.method, headers: request.headers, body: request.method === "GET" ? undefined : body });
      return new Response(await answer.text(), { status: answer.status });
    },
  });
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
  work = mkdtempSync(join(tmpdir(), "etl-promtool-"));
});
afterAll(async () => {
  recorder.stop(true);
  await gateway.stop();
  await db.drop();
  rmSync(work, { recursive: true, force: true });
});

const recorderUrl = () => `http://127.0.0.1:${recorder.port}`;
const lake = () => join(work, "lake");
const DAY = "2026-11-02";

/** Runs `jobs/<job>.ts` (or the `etl` command line) with the recorder as the Pushgateway; returns the run and the bodies it pushed. */
async function run(entry: string, argv: string[], env: Record<string, string> = {}): Promise<{ result: CliResult; bodies: Record<string, string[]> }> {
  const first = pushes.length;
  const result = await runCommand([entry], argv, { DATABASE_URL: db.url, PUSHGATEWAY_URL: recorderUrl(), ...env });
  const bodies: Record<string, string[]> = {};
  for (const push of pushes.slice(first)) (bodies[push.job] ??= []).push(push.body);
  return { result, bodies };
}

const job = (name: string, argv: string[], env?: Record<string, string>) => run(`jobs/${name}.ts`, argv, env);

/** Every body `job` pushed passes `promtool check metrics`, but for the metrics `allowed` names. Returns the problems allowed. */
async function expectLintClean(bodies: Record<string, string[]>, jobName: string, allowed: (metric: string) => boolean = () => false): Promise<string[]> {
  const texts = bodies[jobName] ?? [];
  if (texts.length === 0) throw new Error(`${jobName} pushed nothing`);
  const tolerated: string[] = [];
  for (const text of texts) {
    const verdict = await checkMetrics(text);
    expect({ job: jobName, problems: verdict.problems.filter((p) => !allowed(p.metric)) }).toEqual({ job: jobName, problems: [] });
    expect(verdict.exitCode).toBe(verdict.problems.length ? 3 : 0);
    tolerated.push(...verdict.problems.map((p) => `${p.metric} ${p.problem}`));
  }
  return tolerated;
}

/** The families a body declares. */
const families = (text: string) => [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);

function writeFile(key: string, content: string | Uint8Array): void {
  mkdirSync(dirname(join(lake(), key)), { recursive: true });
  writeFileSync(join(lake(), key), content);
}

describe("every job's push passes promtool check metrics", () => {
  test("get_s3_files: its copies' timing and bytes", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a/one.txt" }, { id: 2, agencyId: 10, key: "b/two.txt" }]);
    await putObject(source, "a/one.txt", "one");
    await putObject(source, "b/two.txt", "two!");
    const { result, bodies } = await job("get_s3_files", ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination]);
    expect(result.exitCode).toBe(0);
    await expectLintClean(bodies, "get_s3_files");
    const text = bodies.get_s3_files![0]!;
    expect(families(text)).toEqual(expect.arrayContaining(["etl_copied_bytes gauge", "etl_copy_operations gauge", "etl_copy_duration_seconds gauge", "etl_copy_max_duration_seconds gauge"]));
    expect(text).toContain("etl_copied_bytes 7\n");
  });

  test("ingest_api, bronze_to_silver and backfill", async () => {
    const api = startApiServer({ records: makeRecords(120) });
    try {
      const ingest = await job("ingest_api", ["--dataset", "service_requests", "--bucket", `file:${lake()}`, "--logical-date", DAY], { SERVICE_API_URL: api.url, SERVICE_API_TOKEN: api.token });
      expect(ingest.result.exitCode).toBe(0);
      await expectLintClean(ingest.bodies, "ingest_api");
    } finally {
      api.stop();
    }
    const build = await job("bronze_to_silver", ["--dataset", "service_requests", "--bucket", `file:${lake()}`, "--date", DAY, "--max-reject-ratio", "1"]);
    expect(build.result.exitCode).toBe(0);
    await expectLintClean(build.bodies, "bronze_to_silver");
    // The backfill's children push as bronze_to_silver; the backfill itself as backfill.
    const backfill = await run("scripts/etl.ts", ["backfill", "--job", "bronze_to_silver", "--from", DAY, "--to", DAY, "--reprocess", "all", "--", "--dataset", "service_requests", "--bucket", `file:${lake()}`, "--max-reject-ratio", "1"]);
    expect(backfill.result.exitCode).toBe(0);
    await expectLintClean(backfill.bodies, "backfill");
    await expectLintClean(backfill.bodies, "bronze_to_silver");
  });

  test("decrypt_files, unzip_files and profile_dataset on a partner's delivery", async () => {
    const keyFile = join(work, "partner-key.asc");
    await dropPartnerDelivery(lake(), DAY, await demoPrivateKey(keyFile));
    const lakeArg = `file:${lake()}`;
    const decrypt = await job("decrypt_files", ["--bucket", lakeArg, "--prefix", "inbox/", "--destination", "decrypted/", "--logical-date", DAY], { ETL_PGP_PRIVATE_KEY_FILE: keyFile });
    expect(decrypt.result.exitCode).toBe(0);
    await expectLintClean(decrypt.bodies, "decrypt_files");
    const unzip = await job("unzip_files", ["--bucket", lakeArg, "--prefix", "decrypted/partner_payments/", "--destination", "bronze/partner_payments/dt={date}/", "--logical-date", DAY]);
    expect(unzip.result.exitCode).toBe(0);
    await expectLintClean(unzip.bodies, "unzip_files");
    expect(families(unzip.bodies.unzip_files![0]!)).toEqual(expect.arrayContaining(["etl_extract_operations gauge", "etl_publish_max_duration_seconds gauge"]));
    expect((await job("bronze_to_silver", ["--dataset", "partner_payments", "--bucket", lakeArg, "--date", DAY, "--max-reject-ratio", "1"])).result.exitCode).toBe(0);
    const profile = await job("profile_dataset", ["--dataset", "partner_payments", "--bucket", lakeArg, "--date", DAY]);
    expect([0, 3]).toContain(profile.result.exitCode);
    await expectLintClean(profile.bodies, "profile_dataset");
    expect(families(profile.bodies.profile_dataset![0]!)).toEqual(expect.arrayContaining(["etl_profile_null_ratio gauge", "etl_profile_check_passing_ratio gauge"]));
  });

  test("s3_metrics, db_metrics (postgres_exporter's own names aside), schedule_audit", async () => {
    writeFile("landing/x/a.csv", "a");
    const s3 = await job("s3_metrics", ["--bucket", `file:${lake()}`, "--depth", "1"]);
    expect(s3.result.exitCode).toBe(0);
    await expectLintClean(s3.bodies, "s3_metrics");
    expect(families(s3.bodies.s3_metrics![0]!)).toEqual(expect.arrayContaining(["etl_s3_objects gauge", "etl_s3_bytes gauge"]));

    const dbRun = await job("db_metrics", []);
    expect(dbRun.result.exitCode).toBe(0);
    const tolerated = await expectLintClean(dbRun.bodies, "db_metrics", (metric) => metric.startsWith("pg_"));
    expect(tolerated.sort()).toEqual(['pg_locks_count non-histogram and non-summary metrics should not have "_count" suffix', 'pg_stat_activity_count non-histogram and non-summary metrics should not have "_count" suffix']);
    expect(families(dbRun.bodies.db_metrics![0]!)).toEqual(expect.arrayContaining(["etl_db_locks_waiting gauge", "pg_stat_user_tables_n_dead_tup gauge"]));

    const audit = await job("schedule_audit", ["--since", "2h"]);
    expect([0, 3]).toContain(audit.result.exitCode);
    await expectLintClean(audit.bodies, "schedule_audit");
    expect(families(audit.bodies.schedule_audit![0]!)).toContain("etl_schedule_slots gauge");
  });

  test("freshness_monitor, over the sources and as get_s3_files's completeness check", async () => {
    const archive = join(work, "archive");
    mkdirSync(archive, { recursive: true });
    const sources = await job("freshness_monitor", ["--bucket-map", `etl-lake=file:${lake()},etl-attachments-archive=file:${archive}`]);
    expect([0, 3]).toContain(sources.result.exitCode);
    await expectLintClean(sources.bodies, "freshness_monitor");
    expect(families(sources.bodies.freshness_monitor![0]!)).toEqual(expect.arrayContaining(["etl_freshness_status gauge", "etl_freshness_lag_seconds gauge"]));
    await seedAttachments(db.sql, [20], [{ id: 20, agencyId: 20, key: "never/copied.txt" }]);
    const completeness = await job("freshness_monitor", ["--agency-id", "20", "--destination-bucket", `file:${archive}`]);
    expect(completeness.result.exitCode).toBe(3);
    await expectLintClean(completeness.bodies, "freshness_monitor");
    expect(families(completeness.bodies.freshness_monitor![0]!)).toContain("etl_completeness_ratio gauge");
  });

  test("sync_dags", async () => {
    const bucket = join(work, "dag-bucket");
    mkdirSync(bucket, { recursive: true });
    const packageDir = join(work, "package");
    mkdirSync(packageDir, { recursive: true });
    writeFileSync(join(packageDir, "etl_a.py"), "a = 1\n");
    writeFileSync(join(packageDir, "metadata.json"), JSON.stringify({ package: "etl", image_tag: "test", dags: [{ dag_id: "etl_a", file: "etl_a.py" }] }));
    const vars = { DAG_BUCKET: `file:${bucket}`, ENV: "prod", PACKAGE_NAME: "etl" };
    expect((await run("scripts/deploy/publish_dags.ts", ["--dir", packageDir], vars)).result.exitCode).toBe(0);
    mkdirSync(join(work, "airflow"));
    const sync = await job("sync_dags", ["--dag-folder", join(work, "airflow")], vars);
    expect(sync.result.exitCode).toBe(0);
    await expectLintClean(sync.bodies, "sync_dags");
  });
});
