import { afterAll, beforeAll, beforeEach, afterEach, expect, test } from "bun:test";
import { createTestDatabase, runCommand, type TestDatabase } from "../../harness/fixtures";
import { freePort } from "../../harness/processes";
import { find, scrape, startPushgateway, valueOf, type PushgatewayServer } from "../../harness/pushgateway_server";

let gateway: PushgatewayServer;
let db: TestDatabase;

beforeAll(async () => {
  gateway = await startPushgateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await db.drop();
});

const probe = (argv: string[], env: Record<string, string> = {}) =>
  runCommand(["tests/fixtures/jobs/probe.ts"], argv, { DATABASE_URL: db.url, PUSHGATEWAY_URL: gateway.url, ...env });

test("every run pushes to its job's group; a failed run keeps the last success", async () => {
  const ok = await probe(["--items", "3"]);
  expect(ok.exitCode).toBe(0);
  let samples = await scrape(gateway);
  const group = { job: "probe" };
  const lastSuccess = valueOf(samples, "etl_job_last_success_timestamp_seconds", group)!;
  expect(lastSuccess).toBeGreaterThan(Date.now() / 1000 - 60);
  expect(valueOf(samples, "etl_job_exit_code", group)).toBe(0);
  expect(valueOf(samples, "etl_job_items", { ...group, kind: "done" })).toBe(3);
  expect(valueOf(samples, "etl_probe_calls", group)).toBe(1);
  expect(valueOf(samples, "etl_probe_depth_meters", { ...group, well: "north" })).toBe(12.5);

  const failed = await probe(["--outcome", "failed"]);
  expect(failed.exitCode).toBe(1);
  samples = await scrape(gateway);
  expect(valueOf(samples, "etl_job_last_success_timestamp_seconds", group)).toBe(lastSuccess);
  expect(valueOf(samples, "etl_job_exit_code", group)).toBe(1);
  expect(valueOf(samples, "etl_job_last_run_timestamp_seconds", group)!).toBeGreaterThanOrEqual(lastSuccess);

  // A sharded run has a group of its own.
  await probe(["--shard", "1/4"]);
  expect(valueOf(await scrape(gateway), "etl_job_exit_code", { job: "probe", shard: "1/4" })).toBe(0);

  // A job's metricsGroup splits its group: a run of another group leaves the others' series alone.
  expect((await probe(["--label", "group:east", "--outcome", "partial"])).exitCode).toBe(3);
  const exitCodes = find(await scrape(gateway), "etl_job_exit_code", group).map((s) => `${s.labels.label ?? s.labels.shard ?? "-"} ${s.value}`);
  expect(exitCodes.sort()).toEqual(["- 1", "1/4 0", "east 3"]);
});

test("a gateway that cannot be reached is a warning; the exit code stays the run's", async () => {
  const run = await probe([], { PUSHGATEWAY_URL: `http://127.0.0.1:${await freePort()}` });
  expect(run.exitCode).toBe(0);
  expect(run.events.some((e) => e.level === "warn" && e.msg === "could not push the run's metrics")).toBe(true);
  const bad = await probe([], { PUSHGATEWAY_URL: "gateway:9091" });
  expect(bad.exitCode).toBe(2);
  expect(bad.summary!.error).toContain("PUSHGATEWAY_URL");
});
