/**
 * `etl manifests`: one Kubernetes CronJob per scheduled job, written to deploy/. The output is a
 * pure function of the job declarations, so CI can regenerate it and fail on any difference
 * (tests/manifests.test.ts). Jobs declared with `shards` become Indexed Jobs.
 */
import { argvOf } from "../core/args";
import type { Job } from "../core/job";
import { writeGenerated } from "./write_generated";
import { toYaml } from "./yaml";

export interface ManifestOptions {
  /** Image repository prefix; each lane has its own image, e.g. <prefix>etl-data-pipeline. */
  imagePrefix: string;
  imageTag: string;
}

const CONTAINER = "etl";
// Kubernetes sends SIGKILL after terminationGracePeriodSeconds; the runner forces its exit at
// 25 s (core/signals.ts), so the summary line is out before that.
const TERMINATION_GRACE_SECONDS = 30;

/** Kubernetes object names take "-" where job and lane names have "_". */
export function k8sName(name: string): string {
  return name.replace(/_/g, "-");
}

export function laneImage(lane: string, options: ManifestOptions): string {
  return `${options.imagePrefix}etl-${k8sName(lane)}:${options.imageTag}`;
}

export function laneServiceAccount(lane: string): string {
  return `etl-${k8sName(lane)}`;
}

/** The distroless image's nonroot user and group. */
export const NONROOT_UID = 65532;
export const POD_RESOURCES = { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "512Mi" } };

/** The command-line arguments of a scheduled run: the job name, then its fixed flags. */
export function scheduledArgv(job: Job): string[] {
  return [job.name, ...argvOf(job.args, job.schedule?.args ?? {})];
}

export function cronJobManifest(job: Job, options: ManifestOptions): Record<string, unknown> {
  const schedule = job.schedule;
  if (!schedule) throw new Error(`${job.name} has no schedule`);
  const name = k8sName(job.name);
  // CronJob names are limited to 52 characters: the controller appends 11 for each Job it creates.
  if (name.length > 52) throw new Error(`${job.name}: CronJob name "${name}" is longer than 52 characters`);
  const labels = { "app.kubernetes.io/name": "etl", "app.kubernetes.io/component": name, "etl.platform/lane": job.lane };
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name, labels },
    spec: {
      schedule: schedule.cron,
      timeZone: schedule.timeZone ?? "UTC",
      concurrencyPolicy: "Forbid",
      // A run that could not start within 10 minutes of its slot is skipped, not started late.
      startingDeadlineSeconds: 600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 5,
      jobTemplate: {
        metadata: { labels },
        spec: jobSpec({
          lane: job.lane,
          args: scheduledArgv(job),
          shards: schedule.shards,
          maxDurationSeconds: schedule.maxDurationSeconds ?? 6 * 3600,
          labels,
          options,
          resources: schedule.resources,
          // The Job's name (<cronjob>-<scheduled minutes since the epoch>) gives the run its
          // logical date (core/logical_date.ts); every Kubernetes version labels pods job-name.
          env: [{ name: "ETL_KUBERNETES_JOB_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.labels['job-name']" } } }],
        }),
      },
    },
  };
}

/** A Job's spec for one lane image: the pod's security, resources, exit-code policy and, with shards, Indexed completion. */
function jobSpec(o: {
  lane: string;
  args: string[];
  shards: number | undefined;
  maxDurationSeconds: number;
  labels: Record<string, string>;
  options: ManifestOptions;
  env: Array<Record<string, unknown>>;
  resources?: { memory?: string; tmp?: string };
}): Record<string, unknown> {
  const { shards } = o;
  return {
    ...(shards ? { completionMode: "Indexed", completions: shards, parallelism: shards } : {}),
    backoffLimit: 3,
    activeDeadlineSeconds: o.maxDurationSeconds,
    podFailurePolicy: {
      rules: [
        // 2 = usage/config, 3 = partial with failures recorded: a retry cannot help.
        { action: "FailJob", onExitCodes: { containerName: CONTAINER, operator: "In", values: [2, 3] } },
        // Evictions and node drains are not the job's fault and do not use up backoffLimit.
        { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      ],
    },
    template: {
      metadata: { labels: o.labels },
      spec: {
        restartPolicy: "Never",
        serviceAccountName: laneServiceAccount(o.lane),
        terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
        securityContext: { runAsNonRoot: true, runAsUser: NONROOT_UID, runAsGroup: NONROOT_UID, seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: CONTAINER,
            image: laneImage(o.lane, o.options),
            args: o.args,
            // Configuration only by reference: the ConfigMap holds LOG_FORMAT, S3_ENDPOINT,
            // AWS_REGION; the Secret holds DATABASE_URL. The shard count is not configuration.
            env: [...o.env, ...(shards ? [{ name: "JOB_COMPLETION_COUNT", value: String(shards) }] : [])],
            envFrom: [{ configMapRef: { name: "etl-config" } }, { secretRef: { name: "etl-secrets" } }],
            resources: o.resources?.memory
              ? { requests: { ...POD_RESOURCES.requests, memory: o.resources.memory }, limits: { memory: o.resources.memory } }
              : POD_RESOURCES,
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            // The manifest CSV is staged in /tmp before upload; the root filesystem is read-only.
            volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
          },
        ],
        volumes: [{ name: "tmp", emptyDir: { sizeLimit: o.resources?.tmp ?? "1Gi" } }],
      },
    },
  };
}

/**
 * `backfill --emit-k8s`: an Indexed Job of `pods` pods, each running the backfill over its share
 * of the days (the runner's shard support: day index modulo pods), so a range that outgrows one
 * pod runs on Kubernetes. The image is ETL_IMAGE, else the lane's image at this version.
 */
export function backfillJob(o: { job: string; from: string; to: string; reprocess: string; parallel: number; pods: number; jobArgs: string[] }, lane: string, image: ManifestOptions): Record<string, unknown> {
  const name = k8sName(`backfill-${o.job}-${o.from}-${o.to}`).toLowerCase().slice(0, 63).replace(/-+$/, "");
  const labels = { "app.kubernetes.io/name": "etl", "app.kubernetes.io/component": "backfill", "etl.platform/lane": lane };
  const args = ["backfill", "--job", o.job, "--from", o.from, "--to", o.to, "--reprocess", o.reprocess, "--parallel", String(o.parallel), "--", ...o.jobArgs];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, labels },
    spec: jobSpec({ lane, args, shards: o.pods, maxDurationSeconds: 24 * 3600, labels, options: image, env: [] }),
  };
}

/** Writes backfillJob's manifest to `file` ("-": stdout); returns the number of pods. */
export async function backfillJobManifest(o: Parameters<typeof backfillJob>[0], file: string, lane: string): Promise<number> {
  const { VERSION } = await import("../core/version");
  const image = process.env.ETL_IMAGE?.trim();
  const options = image ? { imagePrefix: "", imageTag: "" } : { imagePrefix: "", imageTag: VERSION };
  const manifest = backfillJob(o, lane, options) as { spec: { template: { spec: { containers: Array<{ image: string }> } } } };
  if (image) manifest.spec.template.spec.containers[0]!.image = image;
  const yaml = `# Generated by \`etl backfill --emit-k8s\`: apply with kubectl apply -f.\n${toYaml(manifest as never)}`;
  if (file === "-") process.stdout.write(yaml);
  else await Bun.write(file, yaml);
  return o.pods;
}

/** File name to content, for every scheduled job. */
export function renderManifests(jobs: Job[], options: ManifestOptions): Map<string, string> {
  const files = new Map<string, string>();
  for (const job of [...jobs].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!job.schedule) continue;
    const header = `# Generated by \`etl manifests\` from jobs/${job.name}.ts: do not edit.\n`;
    files.set(`${job.name}.cronjob.yaml`, header + toYaml(cronJobManifest(job, options) as never));
  }
  return files;
}

/** Writes the manifests to `dir`, removing generated ones whose job is gone. Returns the files written. */
export function writeManifests(dir: string, files: Map<string, string>): Promise<string[]> {
  return writeGenerated(dir, files, (f) => f.endsWith(".cronjob.yaml"));
}
