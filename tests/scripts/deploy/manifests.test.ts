import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Job as K8sJob } from "kubernetes-models/batch/v1/Job";
import { parse } from "yaml";
import { parseJobArgv } from "../../../core/runtime/parse_args";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { backfillJob, renderManifests } from "../../../scripts/deploy/manifests";
import { scaleQuantity } from "../../../scripts/deploy/pod_spec";
import { ROOT, runEtl } from "../../harness/fixtures";
import pkg from "../../../package.json";

const jobs = await loadJobs(discoverJobs());
const files = renderManifests(jobs, { imagePrefix: "", imageTag: pkg.version });

describe("Kubernetes manifests", () => {
  test("deploy/ holds exactly what `etl manifests` generates (run `bun run etl manifests` after changing a job)", () => {
    const committed = readdirSync(join(ROOT, "deploy")).filter((f) => f.endsWith(".cronjob.yaml")).sort();
    expect(committed).toEqual([...files.keys()].sort());
    for (const [file, content] of files) expect(readFileSync(join(ROOT, "deploy", file), "utf8")).toBe(content);
    expect(files.size).toBeGreaterThan(0);
  });

  for (const [file, content] of files) {
    test(`${file} is a valid batch/v1 CronJob by the Kubernetes schema, and its args parse`, () => {
      const manifest = parse(content);
      expect(() => new CronJob(manifest).validate()).not.toThrow();
      const spec = manifest.spec.jobTemplate.spec;
      expect(manifest.spec.concurrencyPolicy).toBe("Forbid");
      expect(spec.template.spec.restartPolicy).toBe("Never");
      expect(spec.podFailurePolicy.rules[0]).toEqual({ action: "FailJob", onExitCodes: { containerName: "etl", operator: "In", values: [2, 3] } });
      expect(spec.podFailurePolicy.rules[1]).toMatchObject({ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] });
      const container = spec.template.spec.containers[0];
      expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(container.imagePullPolicy).toBe("IfNotPresent");
      expect(container.volumeMounts).toEqual([{ name: "tmp", mountPath: "/tmp" }]);
      // No configuration inline: only the shard count and the Job's name, which gives the logical date.
      expect(container.env.map((e: { name: string }) => e.name).sort()).toEqual(spec.completionMode === "Indexed" ? ["ETL_KUBERNETES_JOB_NAME", "JOB_COMPLETION_COUNT"] : ["ETL_KUBERNETES_JOB_NAME"]);
      expect(container.env.find((e: { name: string }) => e.name === "ETL_KUBERNETES_JOB_NAME").valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.labels['job-name']" } });
      const [name, ...argv] = container.args as string[];
      const job = jobs.find((j) => j.name === name)!;
      // What the CronJob controller names the Job of the 02:00 UTC slot of 2025-11-13.
      const env = {
        ETL_KUBERNETES_JOB_NAME: `${manifest.metadata.name}-29383320`,
        ...(spec.completionMode === "Indexed" ? { JOB_COMPLETION_INDEX: "0", JOB_COMPLETION_COUNT: String(spec.completions) } : {}),
      };
      const parsed = parseJobArgv(job, argv, env);
      expect("logicalDate" in parsed && parsed.logicalDate?.toISOString()).toBe("2025-11-13T02:00:00.000Z");
    });
  }

  test("the schema check has teeth: an unknown exit-code operator is refused", () => {
    const manifest = parse([...files.values()][0]!);
    manifest.spec.jobTemplate.spec.podFailurePolicy.rules[0].onExitCodes.operator = "Maybe";
    manifest.spec.jobTemplate.spec.backoffLimit = "three";
    expect(() => new CronJob(manifest).validate()).toThrow();
  });

  test("etl manifests --check passes on the committed files and refuses unknown flags", async () => {
    expect((await runEtl(["manifests", "--check"])).exitCode).toBe(0);
    const bad = await runEtl(["manifests", "--colour"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("--colour");
  });

  test("backfill --emit-k8s's Indexed Job gives each pod the job's own memory and /tmp once per parallel day, and the CronJob's hardening", () => {
    const job = jobs.find((j) => j.name === "bronze_to_silver")!;
    const manifest = backfillJob({ job: job.name, from: "2026-10-01", to: "2026-10-09", reprocess: "missing", parallel: 2, pods: 3, jobArgs: ["--dataset", "service_requests"] }, job, { imagePrefix: "", imageTag: pkg.version });
    expect(() => new K8sJob(manifest as never).validate()).not.toThrow();
    const pod = (manifest as any).spec.template.spec;
    // bronze_to_silver declares 1Gi and 8Gi of /tmp; --parallel 2 runs two of it in the pod.
    expect(pod.containers[0].resources).toEqual({ requests: { cpu: "250m", memory: "2Gi" }, limits: { memory: "2Gi" } });
    expect(pod.volumes).toEqual([{ name: "tmp", emptyDir: { sizeLimit: "16Gi" } }]);
    const cronPod = parse(files.get("bronze_to_silver.service_requests.cronjob.yaml")!).spec.jobTemplate.spec.template.spec;
    for (const key of ["securityContext", "serviceAccountName", "terminationGracePeriodSeconds"]) expect(pod[key]).toEqual(cronPod[key]);
    for (const key of ["image", "imagePullPolicy", "envFrom", "securityContext", "volumeMounts"]) expect(pod.containers[0][key]).toEqual(cronPod.containers[0][key]);
    expect(scaleQuantity("512Mi", 3)).toBe("1536Mi");
    expect(() => scaleQuantity("1.5Gi", 2)).toThrow('resource quantity "1.5Gi" must be a whole number of Ki, Mi, Gi or Ti');
  });
});
