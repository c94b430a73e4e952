/**
 * freshness_monitor --sources-json: dbt's sources.json artefact, checked by a real JSON Schema
 * validator (ajv, draft 2020-12) against the schema dbt publishes, vendored in tests/fixtures/dbt/.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadMigrations, migrate } from "../../../core/db/migrate";
import { SOURCES_SCHEMA_VERSION } from "../../../processors/observability/freshness/sources_json";
import schema from "../../fixtures/dbt/sources.v3.schema.json";
import { createBucket, createTestDatabase, getObjectText, listKeys, runCommand, type CliResult, type TestDatabase } from "../../harness/fixtures";

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
/** The schema's complaints about `document`, empty when it is valid. */
const schemaErrors = (document: unknown) => (validate(document) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`));

let db: TestDatabase;
let dir: string;
beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
  dir = mkdtempSync(join(tmpdir(), "etl-sources-json-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function seedSuccess(job: string, finishedHoursAgo: number): Promise<void> {
  const finished = new Date(Date.now() - finishedHoursAgo * 3_600_000);
  await db.sql`
    insert into etl_job_runs (run_id, job, lane, status, exit_code, args_hash, dry_run, host, version, started_at, heartbeat_at, finished_at)
    values (${crypto.randomUUID()}, ${job}, 'data_pipeline', 'succeeded', 0, 'h', false, 'test', 'test', ${finished}, ${finished}, ${finished})`;
}

// A source of each outcome: ingest_api fresh (pass), get_s3_files 30 hours ago (warn at 26h),
// bronze never loaded (an empty lake: error), the archive's bucket missing (runtime error).
// In declaration order, the order of the results.
const SOURCES = "bronze_service_requests,attachments_archive,ingest_api_success,get_s3_files_success";
async function seedEveryOutcome(): Promise<string[]> {
  await seedSuccess("ingest_api", 0.5);
  await seedSuccess("get_s3_files", 30);
  mkdirSync(join(dir, "lake"));
  return ["--source", SOURCES, "--bucket-map", `etl-lake=file:${join(dir, "lake")},etl-attachments-archive=file:${join(dir, "missing")}`];
}

const monitor = (argv: string[]) => runCommand(["jobs/freshness_monitor.ts"], argv, { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });
const byId = (results: Array<{ unique_id: string }>) => Object.fromEntries(results.map((r) => [r.unique_id, r])) as Record<string, any>;

function expectArtefactOf(run: CliResult, artefact: Record<string, any>): void {
  expect(schemaErrors(artefact)).toEqual([]);
  expect(artefact.metadata).toEqual({ dbt_schema_version: SOURCES_SCHEMA_VERSION, dbt_version: "1.11.6", generated_at: expect.any(String), invocation_id: run.summary!.runId, env: { ETL_PLATFORM_VERSION: expect.any(String) } });
  expect(artefact.elapsed_time).toBeGreaterThan(0);
  const results = byId(artefact.results);
  expect(Object.keys(results)).toEqual(SOURCES.split(",").map((name) => `source.etl.${name.endsWith("_success") ? "job_success" : "s3_prefix"}.${name}`));
  const pass = results["source.etl.job_success.ingest_api_success"];
  expect(pass).toMatchObject({
    status: "pass",
    criteria: { warn_after: { count: 2, period: "hour" }, error_after: { count: 6, period: "hour" }, filter: null },
    adapter_response: {},
    timing: [{ name: "execute", started_at: expect.any(String), completed_at: expect.any(String) }],
    thread_id: expect.stringMatching(/^Thread-[1-4]$/),
  });
  expect(Math.abs(pass.max_loaded_at_time_ago_in_s - 1800)).toBeLessThan(60);
  expect(results["source.etl.job_success.get_s3_files_success"].status).toBe("warn");
  // dbt's own answer for a source without data: loaded at 0001-01-01, "infinitely long ago".
  const never = results["source.etl.s3_prefix.bronze_service_requests"];
  expect(never).toMatchObject({ status: "error", max_loaded_at: "0001-01-01T00:00:00.000Z" });
  expect(never.max_loaded_at_time_ago_in_s).toBeGreaterThan(6.3e10);
  expect(results["source.etl.s3_prefix.attachments_archive"]).toEqual({ unique_id: "source.etl.s3_prefix.attachments_archive", error: `file://${join(dir, "missing")} does not exist`, status: "runtime error" });
}

test("--sources-json file:<dir> writes <dir>/target/sources.json, valid against dbt's sources v3 schema; our event keeps the richer fields", async () => {
  const project = join(dir, "project");
  mkdirSync(project);
  const run = await monitor([...(await seedEveryOutcome()), "--sources-json", `file:${project}`]);
  expect(run.exitCode).toBe(3);
  expectArtefactOf(run, JSON.parse(readFileSync(join(project, "target/sources.json"), "utf8")));
  expect(run.events.find((e) => e.msg === "wrote dbt's sources.json")).toMatchObject({ url: `file://${project}/target/sources.json`, results: 4 });

  // The freshness.result event names what was measured, and a never-loaded source as null: dbt's
  // schema refuses exactly those, which is why the artefact is a document of its own.
  const event = run.events.find((e) => e.event === "freshness.result") as Record<string, any>;
  const never = byId(event.results)["source.etl.s3_prefix.bronze_service_requests"];
  expect(never).toMatchObject({ name: "bronze_service_requests", kind: "s3_prefix", max_loaded_at: null, detail: { reason: expect.stringContaining("no object under") } });
  const refused = schemaErrors({ metadata: {}, results: event.results, elapsed_time: event.elapsed_time });
  expect(refused).toContain('/results/0 must NOT have additional properties {"additionalProperty":"name"}');
  expect(refused).toContain("/results/0/max_loaded_at must be string {\"type\":\"string\"}");
});

test("--sources-json <bucket> writes target/sources.json in the bucket; a dry run writes nothing", async () => {
  const bucket = await createBucket();
  const argv = await seedEveryOutcome();
  const dry = await monitor([...argv, "--sources-json", `s3://${bucket}`, "--dry-run"]);
  expect(dry.exitCode).toBe(3);
  expect(await listKeys(bucket)).toEqual([]);
  const run = await monitor([...argv, "--sources-json", `s3://${bucket}`]);
  expect(run.exitCode).toBe(3);
  expect(await listKeys(bucket)).toEqual(["target/sources.json"]);
  expectArtefactOf(run, JSON.parse(await getObjectText(bucket, "target/sources.json")));
});

test("--sources-json at a location that does not exist, or with a completeness check, is a usage error", async () => {
  const missing = await monitor(["--source", "ingest_api_success", "--sources-json", `file:${join(dir, "nowhere")}`]);
  expect(missing.exitCode).toBe(2);
  expect(missing.summary!.error).toBe(`--sources-json file://${join(dir, "nowhere")} does not exist`);
  expect(existsSync(join(dir, "nowhere"))).toBe(false);
  const agency = await monitor(["--agency-id", "10", "--destination-bucket", `file:${dir}`, "--sources-json", `file:${dir}`]);
  expect(agency.exitCode).toBe(2);
  expect(agency.summary!.error).toContain("--sources-json belongs to a freshness check of the sources");
  expect(await monitor(["--source", "ingest_api_success", "--sources-json", "s3://Bad Bucket"]).then((r) => r.exitCode)).toBe(2);
});
