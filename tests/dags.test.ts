import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discoverJobs, loadJobs } from "../core/registry";
import { parseLogicalDate } from "../core/logical_date";
import { renderDags } from "../scripts/dags";
import { runEtl } from "./harness/fixtures";

const jobs = await loadJobs(discoverJobs());
const options = { imagePrefix: "registry.example/", imageTag: "1.2.3", packageName: "etl", namespace: "etl" };

describe("Airflow DAGs", () => {
  test("etl dags writes one DAG per scheduled job that Python compiles, and metadata.json naming them", async () => {
    const out = mkdtempSync(join(tmpdir(), "etl-dags-"));
    try {
      const run = await runEtl(["dags", "--out", out, "--image-prefix", "registry.example/", "--image-tag", "1.2.3"]);
      expect(run.exitCode).toBe(0);
      const files = readdirSync(out).sort();
      const dagFiles = files.filter((f) => f.endsWith(".py"));
      expect(dagFiles).toEqual(jobs.filter((j) => j.schedule).map((j) => `etl_${j.name}.py`).sort());
      const compile = Bun.spawnSync(["python3", "-m", "py_compile", ...dagFiles.map((f) => join(out, f))], { stderr: "pipe" });
      expect(compile.stderr.toString()).toBe("");
      expect(compile.exitCode).toBe(0);
      const metadata = JSON.parse(readFileSync(join(out, "metadata.json"), "utf8"));
      expect(metadata.dags.map((d: { file: string }) => d.file)).toEqual(dagFiles);
      const dag = readFileSync(join(out, "etl_get_s3_files.py"), "utf8");
      expect(dag).toContain('image="registry.example/etl-data-pipeline:1.2.3"');
      expect(dag).toContain('"--shard", f"{shard}/{SHARDS}"');
      expect(dag).toContain("SHARDS = 4");
      // Airflow renders {{ ts }} as the logical date in ISO form, e.g. 2026-11-23T02:00:00+00:00.
      expect(dag).toContain('env_vars={"ETL_LOGICAL_DATE": "{{ ts }}"}');
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
