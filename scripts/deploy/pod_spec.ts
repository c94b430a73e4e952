/**
 * The pod a job runs in, decided once for every runner: the CronJob's and Indexed Job's pod
 * template (scripts/deploy/manifests.ts) and the Airflow task's KubernetesPodOperator (scripts/deploy/dags.ts)
 * both render this description, so a job's image, memory, hardening, /tmp, configuration,
 * deadline and retries cannot differ between Kubernetes and Airflow (tests/scripts/deploy/dags.test.ts imports
 * every DAG and compares its pod with the CronJob's). Values are in Kubernetes API form.
 */
import { argvOf } from "../../core/runtime/args";
import type { Job, Lane, NamedSchedule } from "../../core/runtime/job";
import { scheduleId } from "../../core/runtime/schedules";

export interface ImageOptions {
  /** Image repository prefix; each lane has its own image, e.g. <prefix>etl-data-pipeline. */
  imagePrefix: string;
  imageTag: string;
}

export const CONTAINER = "etl";
/** The distroless image's nonroot user and group. */
export const NONROOT_UID = 65532;
/** 2 = usage/config, 3 = partial with failures recorded (DESIGN.md): a retry cannot help. */
export const NO_RETRY_EXIT_CODES = [2, 3];
/** Other failures (1, 75, 130/143) are retried this often: the Job's backoffLimit, the task's retries. */
const RETRIES = 3;
/** The Job controller waits 10 s, 20 s, 40 s... at most 6 minutes before recreating a failed pod; Airflow tasks back off alike. */
export const RETRY_DELAY_SECONDS = 10;
export const MAX_RETRY_DELAY_SECONDS = 360;
// Kubernetes sends SIGKILL after terminationGracePeriodSeconds; the runner forces its exit at
// 25 s (core/runtime/signals.ts), so the summary line is out before that.
const TERMINATION_GRACE_SECONDS = 30;
const DEFAULT_MAX_DURATION_SECONDS = 6 * 3600;
// A job that declares no resources (JobSchedule.resources) gets these.
const DEFAULTS = { cpu: "250m", memoryRequest: "256Mi", memoryLimit: "512Mi", tmp: "1Gi" };

export interface PodSpec {
  labels: Record<string, string>;
  serviceAccountName: string;
  terminationGracePeriodSeconds: number;
  /** The run's deadline: the Job's activeDeadlineSeconds; the task's execution_timeout and its pod's. */
  activeDeadlineSeconds: number;
  /** Retries of a failure whose exit code is not in NO_RETRY_EXIT_CODES. */
  retries: number;
  securityContext: Record<string, unknown>;
  container: {
    name: string;
    image: string;
    imagePullPolicy: string;
    args: string[];
    envFrom: Array<Record<string, { name: string }>>;
    resources: { requests: { cpu: string; memory: string }; limits: { memory: string } };
    securityContext: Record<string, unknown>;
    volumeMounts: Array<{ name: string; mountPath: string }>;
  };
  volumes: Array<{ name: string; emptyDir: { sizeLimit: string } }>;
}

/** Kubernetes object names take "-" where job, schedule and lane names have "_" or ".". */
export function k8sName(name: string): string {
  return name.replace(/[_.]/g, "-");
}

export function laneImage(lane: string, options: ImageOptions): string {
  return `${options.imagePrefix}etl-${k8sName(lane)}:${options.imageTag}`;
}

export function laneServiceAccount(lane: string): string {
  return `etl-${k8sName(lane)}`;
}

/** The command-line arguments of a scheduled run: the job name, then its schedule's fixed flags. */
export function scheduledArgv(job: Job, schedule: NamedSchedule): string[] {
  return [job.name, ...argvOf(job.args, schedule.args)];
}

/** The pod of a run of one of the job's schedules; its component label is the schedule's id. */
export function scheduledPod(job: Job, schedule: NamedSchedule, image: ImageOptions): PodSpec {
  const component = k8sName(scheduleId(job.name, schedule.name));
  return podSpec({ component, lane: job.lane, args: scheduledArgv(job, schedule), image, resources: schedule.resources, maxDurationSeconds: schedule.maxDurationSeconds });
}

/**
 * `resources` is the job's declaration (JobSchedule.resources: memory limit and /tmp size).
 * `processes` is how many runs of the job the pod holds at once (backfill --parallel spawns one
 * child per day): each needs the memory and /tmp of one run.
 */
export function podSpec(o: { component: string; lane: Lane; args: string[]; image: ImageOptions; resources?: { memory?: string; tmp?: string }; maxDurationSeconds?: number; processes?: number }): PodSpec {
  const times = o.processes ?? 1;
  // A declared memory is requested as well as limited: the scheduler then places the pod where it fits.
  const request = o.resources?.memory ?? DEFAULTS.memoryRequest;
  const limit = o.resources?.memory ?? DEFAULTS.memoryLimit;
  return {
    labels: { "app.kubernetes.io/name": "etl", "app.kubernetes.io/component": o.component, "etl.platform/lane": o.lane },
    serviceAccountName: laneServiceAccount(o.lane),
    terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
    activeDeadlineSeconds: o.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS,
    retries: RETRIES,
    securityContext: { runAsNonRoot: true, runAsUser: NONROOT_UID, runAsGroup: NONROOT_UID, seccompProfile: { type: "RuntimeDefault" } },
    container: {
      name: CONTAINER,
      image: laneImage(o.lane, o.image),
      // The tag is a release version (--image-tag), not a moving one like latest: a node's copy is the right image.
      imagePullPolicy: "IfNotPresent",
      args: o.args,
      // Configuration only by reference: the ConfigMap holds LOG_FORMAT, S3_ENDPOINT,
      // AWS_REGION; the Secret holds DATABASE_URL.
      envFrom: [{ configMapRef: { name: "etl-config" } }, { secretRef: { name: "etl-secrets" } }],
      resources: { requests: { cpu: DEFAULTS.cpu, memory: scaleQuantity(request, times) }, limits: { memory: scaleQuantity(limit, times) } },
      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
      // Temp files (manifest CSVs, DuckDB spills, staged archives) go to /tmp; the root filesystem is read-only.
      volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
    },
    volumes: [{ name: "tmp", emptyDir: { sizeLimit: scaleQuantity(o.resources?.tmp ?? DEFAULTS.tmp, times) } }],
  };
}

/** "512Mi" times 3 is "1536Mi": binary-suffixed whole quantities, as the jobs declare them. */
export function scaleQuantity(quantity: string, times: number): string {
  if (times === 1) return quantity;
  const match = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(quantity);
  if (!match) throw new Error(`resource quantity "${quantity}" must be a whole number of Ki, Mi, Gi or Ti`);
  return `${Number(match[1]) * times}${match[2]}`;
}
