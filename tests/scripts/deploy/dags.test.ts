import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { parseLogicalDate } from "../../../core/runtime/logical_date";
import { jobSchedules, scheduleId } from "../../../core/runtime/schedules";
import { renderDags, writeDags } from "../../../scripts/deploy/dags";
import { renderManifests } from "../../../scripts/deploy/manifests";
import { ROOT, runEtl } from "../../harness/fixtures";

const jobs = await loadJobs(discoverJobs());
const scheduleIds = jobs.flatMap((job) => jobSchedules(job).map((schedule) => scheduleId(job.name, schedule.name))).sort();
const options = { imagePrefix: "registry.example/", imageTag: "1.2.3", packageName: "etl", namespace: "etl" };
const HARNESS = join(ROOT, "tests/fixtures/airflow/harness.py");

/** Runs the harness of tests/fixtures/airflow: the DAG file imported against the stubbed Airflow 3 and provider 10.x. */
function harness(...args: string[]): { exitCode: number; stderr: string; json: any } {
  const run = Bun.spawnSync(["python3", "-B", "-W", "error", HARNESS, ...args], { stdout: "pipe", stderr: "pipe" });
  const stdout = run.stdout.toString();
  return { exitCode: run.exitCode, stderr: run.stderr.toString(), json: run.exitCode === 0 ? JSON.parse(stdout) : undefined };
}

describe("Airflow DAGs", () => {
  test("etl dags writes one DAG per scheduled job that Python compiles, and metadata.json naming them", async () => {
    const out = mkdtempSync(join(tmpdir(), "etl-dags-"));
    try {
      const run = await runEtl(["dags", "--out", out, "--image-prefix", "registry.example/", "--image-tag", "1.2.3"]);
      expect(run.exitCode).toBe(0);
      const files = readdirSync(out).sort();
      const dagFiles = files.filter((f) => f.endsWith(".py"));
      expect(dagFiles).toEqual(scheduleIds.map((id) => `etl_${id}.py`).sort());
      const compile = Bun.spawnSync(["python3", "-m", "py_compile", ...dagFiles.map((f) => join(out, f))], { stderr: "pipe" });
      expect(compile.stderr.toString()).toBe("");
      expect(compile.exitCode).toBe(0);
      const metadata = JSON.parse(readFileSync(join(out, "metadata.json"), "utf8"));
      expect(metadata.dags.map((d: { file: string }) => d.file)).toEqual(dagFiles);
      const dag = readFileSync(join(out, "etl_get_s3_files.py"), "utf8");
      expect(dag).toContain('image="registry.example/etl-data-pipeline:1.2.3"');
      expect(dag).toContain('"--shard", f"{shard}/{SHARDS}"');
      expect(dag).toContain("SHARDS = 4");
      // Airflow renders a pendulum DateTime as ISO 8601 with its offset, e.g. 2026-11-23T02:00:00+00:00.
      expect(dag).toContain('env_vars={"ETL_LOGICAL_DATE": "{{ data_interval_end }}", "ETL_DATA_INTERVAL_START": "{{ data_interval_start }}"}');
      expect(parseLogicalDate("2026-11-23T02:00:00+00:00", "ETL_LOGICAL_DATE").toISOString()).toBe("2026-11-23T02:00:00.000Z");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test("the same jobs give the same bytes", () => {
    expect([...renderDags(jobs, options)]).toEqual([...renderDags(jobs, options)]);
  });

  test("a bad flag exits 2 naming it", async () => {
    const run = await runEtl(["dags", "--bogus"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("--bogus");
  });
});

describe("Airflow DAGs against Airflow 3's DAG and cncf-kubernetes 10.x's KubernetesPodOperator (tests/fixtures/airflow)", () => {
  const dir = mkdtempSync(join(tmpdir(), "etl-dags-stub-"));
  const dagFiles = renderDags(jobs, options);
  const cronJobs = renderManifests(jobs, options);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("every DAG imports, and each task's pod is its CronJob's: image, resources, hardening, /tmp, env, deadline, retries", async () => {
    await writeDags(dir, dagFiles);
    const names = scheduleIds;
    expect(names.length).toBeGreaterThan(jobs.filter((j) => jobSchedules(j).length).length);
    const run = harness("describe", ...names.map((name) => join(dir, `etl_${name}.py`)));
    expect(run.stderr).toBe("");
    for (const name of names) {
      const [dag] = run.json[join(dir, `etl_${name}.py`)];
      const cronJob = parse(cronJobs.get(`${name}.cronjob.yaml`)!);
      const jobSpec = cronJob.spec.jobTemplate.spec;
      const pod = jobSpec.template.spec;
      const container = pod.containers[0];
      const shards = jobSpec.completions ?? 1;
      // The data interval is the CronJob's slot to slot: CronDataIntervalTimetable on the same cron and zone.
      const schedule = { timetable: "CronDataIntervalTimetable", cron: cronJob.spec.schedule, timezone: cronJob.spec.timeZone };
      expect(dag).toMatchObject({ dag_id: `etl_${name}`, schedule, timezone: cronJob.spec.timeZone, catchup: false, max_active_runs: 1, dagrun_timeout: jobSpec.activeDeadlineSeconds });
      expect(dag.tasks).toHaveLength(shards);
      dag.tasks.forEach((task: any, shard: number) => {
        expect(task).toMatchObject({ operator: "EtlPodOperator", namespace: "etl", retries: jobSpec.backoffLimit, execution_timeout: jobSpec.activeDeadlineSeconds, on_finish_action: "delete_pod", env: { ETL_LOGICAL_DATE: "{{ data_interval_end }}", ETL_DATA_INTERVAL_START: "{{ data_interval_start }}" } });
        expect(task.pod).toEqual({
          labels: jobSpec.template.metadata.labels,
          serviceAccountName: pod.serviceAccountName,
          terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
          activeDeadlineSeconds: jobSpec.activeDeadlineSeconds,
          securityContext: pod.securityContext,
          container: {
            name: container.name,
            image: container.image,
            imagePullPolicy: container.imagePullPolicy,
            args: [...container.args, ...(shards > 1 ? ["--shard", `${shard}/${shards}`] : [])],
            envFrom: container.envFrom,
            resources: container.resources,
            securityContext: container.securityContext,
            volumeMounts: container.volumeMounts,
          },
          volumes: pod.volumes,
        });
      });
    }
    // The jobs whose own declaration asks for more than the defaults (DuckDB peaks about 300 MiB above its 256 MB limit).
    const limit = (name: string) => run.json[join(dir, `etl_${name}.py`)][0].tasks[0].pod.container.resources.limits.memory;
    expect([limit("bronze_to_silver.service_requests"), limit("profile_dataset.partner_payments"), limit("unzip_files")]).toEqual(["1Gi", "1Gi", "512Mi"]);
  });

  test("exit 2 and 3 fail the task at once; other failures use the retries, as the CronJob's podFailurePolicy and backoffLimit do", async () => {
    await writeDags(dir, dagFiles);
    const backoffLimit = parse(cronJobs.get("bronze_to_silver.service_requests.cronjob.yaml")!).spec.jobTemplate.spec.backoffLimit;
    const run = harness("run", join(dir, "etl_bronze_to_silver.service_requests.py"), "bronze_to_silver", "0", "1", "2", "3", "75", "143");
    expect(run.stderr).toBe("");
    expect(run.json["0"]).toEqual({ state: "success", tries: 1 });
    for (const exitCode of [2, 3]) expect(run.json[exitCode]).toEqual({ state: "failed", tries: 1, error: `bronze_to_silver exited ${exitCode}: not retried, see its job.finished event` });
    for (const exitCode of [1, 75, 143]) expect(run.json[exitCode]).toMatchObject({ state: "failed", tries: backoffLimit + 1 });
  });

  test.each([
    ["Airflow 2's schedule_interval", (s: string) => s.replace("schedule=", "schedule_interval="), "schedule_interval"],
    ["sla=, removed in Airflow 3 (it only warns there)", (s: string) => s.replace("get_logs=True,", "get_logs=True, sla=pendulum.duration(hours=1),"), "The SLA feature is removed in Airflow 3.0"],
    ["a keyword neither KubernetesPodOperator nor BaseOperator takes", (s: string) => s.replace("get_logs=True,", "get_logs=True, pod_resources=None,"), "Invalid arguments were passed to EtlPodOperator"],
    ["a timetable keyword CronDataIntervalTimetable does not take", (s: string) => s.replace(", timezone=", ", tz="), "unexpected keyword argument 'tz'"],
    ["a cron expression of six fields", (s: string) => s.replace('CronDataIntervalTimetable("30 1 * * *"', 'CronDataIntervalTimetable("0 30 1 * * *"'), "wrong number of fields"],
    ["a keyword the kubernetes client's model does not take", (s: string) => s.replace('mount_path="/tmp"', 'path="/tmp"'), "unexpected keyword argument 'path'"],
  ])("the stub has teeth: %s fails the import", async (_, change, message) => {
    const file = join(dir, "etl_changed.py");
    const source = dagFiles.get("etl_bronze_to_silver.service_requests.py")!;
    expect(change(source)).not.toBe(source);
    writeFileSync(file, change(source));
    const run = harness("describe", file);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toContain(message);
  });
});
