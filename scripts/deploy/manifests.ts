/**
 * `etl manifests`: one Kubernetes CronJob per scheduled job, written to deploy/. The output is a
 * pure function of the job declarations, so CI can regenerate it and fail on any difference
 * (tests/scripts/deploy/manifests.test.ts). Jobs declared with `shards` become Indexed Jobs. The pod itself is
 * scripts/deploy/pod_spec.ts's, as the Airflow DAGs' is.
 */
import type { Job, NamedSchedule } from "../../core/runtime/job";
import { jobSchedules, scheduleId } from "../../core/runtime/schedules";
import { NO_RETRY_EXIT_CODES, k8sName, podSpec, scheduledPod, type ImageOptions, type PodSpec } from "./pod_spec";
import { writeGenerated } from "./write_generated";
import { toYaml } from "./yaml";

export type ManifestOptions = ImageOptions;

export function cronJobManifest(job: Job, schedule: NamedSchedule, options: ManifestOptions): Record<string, unknown> {
  const name = k8sName(scheduleId(job.name, schedule.name));
  // CronJob names are limited to 52 characters: the controller appends 11 for each Job it creates.
  if (name.length > 52) throw new Error(`${job.name}: CronJob name "${name}" is longer than 52 characters`);
  const pod = scheduledPod(job, schedule, options);
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name, labels: pod.labels },
    spec: {
      schedule: schedule.cron,
      timeZone: schedule.timeZone ?? "UTC",
      concurrencyPolicy: "Forbid",
      // A run that could not start within 10 minutes of its slot is skipped, not started late.
      startingDeadlineSeconds: 600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 5,
      jobTemplate: {
        metadata: { labels: pod.labels },
        // The Job's name (<cronjob>-<scheduled minutes since the epoch>) gives the run its
        // logical date (core/runtime/logical_date.ts); every Kubernetes version labels pods job-name.
        spec: jobSpec(pod, schedule.shards, [{ name: "ETL_KUBERNETES_JOB_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.labels['job-name']" } } }]),
      },
    },
  };
}

/** A Job's spec around the pod: its retries, deadline, exit-code policy and, with shards, Indexed completion. */
function jobSpec(pod: PodSpec, shards: number | undefined, env: Array<Record<string, unknown>>): Record<string, unknown> {
  const { container } = pod;
  return {
    ...(shards ? { completionMode: "Indexed", completions: shards, parallelism: shards } : {}),
    backoffLimit: pod.retries,
    activeDeadlineSeconds: pod.activeDeadlineSeconds,
    podFailurePolicy: {
      rules: [
        { action: "FailJob", onExitCodes: { containerName: container.name, operator: "In", values: NO_RETRY_EXIT_CODES } },
        // Evictions and node drains are not the job's fault and do not use up backoffLimit.
        { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      ],
    },
    template: {
      metadata: { labels: pod.labels },
      spec: {
        restartPolicy: "Never",
        serviceAccountName: pod.serviceAccountName,
        terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
        securityContext: pod.securityContext,
        containers: [
          {
            name: container.name,
            image: container.image,
            imagePullPolicy: container.imagePullPolicy,
            args: container.args,
            // The shard count is not configuration: it is the Job's.
            env: [...env, ...(shards ? [{ name: "JOB_COMPLETION_COUNT", value: String(shards) }] : [])],
            envFrom: container.envFrom,
            resources: container.resources,
            securityContext: container.securityContext,
            volumeMounts: container.volumeMounts,
          },
        ],
        volumes: pod.volumes,
      },
    },
  };
}

/**
 * `backfill --emit-k8s`: an Indexed Job of `pods` pods, each running the backfill over its share
 * of the days (the runner's shard support: day index modulo pods), so a range that outgrows one
 * pod runs on Kubernetes. Each pod runs `parallel` days at once, one child process each, so it gets
 * the job's memory and /tmp that many times. The image is ETL_IMAGE, else the lane's at this version.
 */
export function backfillJob(o: { job: string; from: string; to: string; reprocess: string; parallel: number; pods: number; jobArgs: string[] }, job: Job, image: ManifestOptions): Record<string, unknown> {
  const name = k8sName(`backfill-${o.job}-${o.from}-${o.to}`).toLowerCase().slice(0, 63).replace(/-+$/, "");
  const args = ["backfill", "--job", o.job, "--from", o.from, "--to", o.to, "--reprocess", o.reprocess, "--parallel", String(o.parallel), "--", ...o.jobArgs];
  const pod = podSpec({ component: "backfill", lane: job.lane, args, image, resources: jobSchedules(job)[0]?.resources, maxDurationSeconds: 24 * 3600, processes: o.parallel });
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, labels: pod.labels },
    spec: jobSpec(pod, o.pods, []),
  };
}

/** Writes backfillJob's manifest to `file` ("-": stdout); returns the number of pods. */
export async function backfillJobManifest(o: Parameters<typeof backfillJob>[0], file: string, job: Job): Promise<number> {
  const { VERSION } = await import("../../core/version");
  const image = process.env.ETL_IMAGE?.trim();
  const options = image ? { imagePrefix: "", imageTag: "" } : { imagePrefix: "", imageTag: VERSION };
  const manifest = backfillJob(o, job, options) as { spec: { template: { spec: { containers: Array<{ image: string }> } } } };
  if (image) manifest.spec.template.spec.containers[0]!.image = image;
  const yaml = `# Generated by \`etl backfill --emit-k8s\`: apply with kubectl apply -f.\n${toYaml(manifest as never)}`;
  if (file === "-") process.stdout.write(yaml);
  else await Bun.write(file, yaml);
  return o.pods;
}

/** File name to content: `<job>.cronjob.yaml` for a job's one schedule, `<job>.<schedule>.cronjob.yaml` for each of several. */
export function renderManifests(jobs: Job[], options: ManifestOptions): Map<string, string> {
  const files = new Map<string, string>();
  for (const job of [...jobs].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const schedule of jobSchedules(job)) {
      const id = scheduleId(job.name, schedule.name);
      const header = `# Generated by \`etl manifests\` from jobs/${job.name}.ts${id === job.name ? "" : ` (schedule ${schedule.name})`}: do not edit.\n`;
      files.set(`${id}.cronjob.yaml`, header + toYaml(cronJobManifest(job, schedule, options) as never));
    }
  }
  return files;
}

/** Writes the manifests to `dir`, removing generated ones whose job is gone. Returns the files written. */
export function writeManifests(dir: string, files: Map<string, string>): Promise<string[]> {
  return writeGenerated(dir, files, (f) => f.endsWith(".cronjob.yaml"));
}
