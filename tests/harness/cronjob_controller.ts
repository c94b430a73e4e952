/**
 * A simulator of the Kubernetes CronJob and Job controllers, for the deployed system's test
 * (tests/scripts/deploy/schedule_simulation.test.ts): it reads our own `deploy/*.cronjob.yaml`
 * and runs every slot of a window in time order, as the controllers would.
 *
 * - Slots: `spec.schedule` in `spec.timeZone`, by core/runtime/cron.ts (robfig/cron v3, as the
 *   kube-controller-manager evaluates it). Slots of every CronJob at the same minute run at once.
 * - The Job a slot creates is named `<cronjob>-<scheduled minutes since the epoch>` (the CronJob
 *   controller's getJobName); the pod sees it through its env's fieldRef on the `job-name` label.
 * - `completionMode: Indexed` with `completions` n: n pods at once, JOB_COMPLETION_INDEX 0..n-1.
 * - A pod that exits non-zero with a code in the podFailurePolicy's FailJob rule fails the Job at
 *   once; any other failure is retried, after 10 s, 20 s, 40 s... (the Job controller's backoff),
 *   until the Job's failures exceed `backoffLimit` (counted over all its indexes).
 * - `concurrencyPolicy: Forbid` holds because a group's Jobs end before the next group starts
 *   (they run one after the other, at their slot's time; on two cores side by side was no faster).
 *
 * Time is a FakeClock: libfaketime's offset, written to a file the servers (PostgreSQL, moto)
 * re-read on every clock call and given to each pod in its environment, so logical dates, S3
 * LastModified, the database's now() and the jobs' own clocks all agree on the simulated time.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { expectedSlots, parseCron, Zone } from "../../core/runtime/cron";

export const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/** The simulated clock: an offset from the real one, the same for every process that reads it. */
export class FakeClock {
  private offsetSeconds = 0;
  private setTo = -Infinity;

  constructor(readonly file: string) {
    writeFileSync(file, "+0\n");
  }

  /** Moves simulated time to `ms`; never back, as a clock in production does not go back either. */
  set(ms: number): void {
    if (ms <= this.setTo || (this.setTo > -Infinity && ms <= this.now())) return;
    this.setTo = ms;
    this.offsetSeconds = Math.ceil((ms - Date.now()) / 1000);
    writeFileSync(this.file, `${this.offsetSeconds >= 0 ? "+" : ""}${this.offsetSeconds}\n`);
  }

  now(): number {
    return Date.now() + this.offsetSeconds * 1000;
  }

  /** The environment that puts a process on this clock: a server re-reads the file, a pod takes the offset as it is now. */
  env(kind: "server" | "pod"): Record<string, string> {
    const common = { LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
    return kind === "server"
      ? { ...common, FAKETIME_TIMESTAMP_FILE: this.file, FAKETIME_NO_CACHE: "1" }
      : { ...common, FAKETIME: `${this.offsetSeconds >= 0 ? "+" : ""}${this.offsetSeconds}` };
  }
}

export interface CronJobSpec {
  name: string;
  file: string;
  schedule: string;
  timeZone: string;
  image: string;
  args: string[];
  /** The container's env: literal values, and the fieldRef on the Job's name. */
  env: Array<{ name: string; value?: string; jobName?: true }>;
  /** The ConfigMaps and Secrets its envFrom names. */
  envFrom: string[];
  completions: number;
  indexed: boolean;
  backoffLimit: number;
  failJobExitCodes: number[];
}

/** Every CronJob of `dir`, read from the manifests as the API server would store them. */
export function readCronJobs(dir: string): CronJobSpec[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".cronjob.yaml"))
    .sort()
    .map((file) => {
      const doc = parse(readFileSync(join(dir, file), "utf8"));
      if (doc.kind !== "CronJob") throw new Error(`${file} is a ${doc.kind}, not a CronJob`);
      const job = doc.spec.jobTemplate.spec;
      const container = job.template.spec.containers[0];
      const rules: Array<{ action: string; onExitCodes?: { operator: string; values: number[] } }> = job.podFailurePolicy?.rules ?? [];
      return {
        name: doc.metadata.name,
        file,
        schedule: doc.spec.schedule,
        timeZone: doc.spec.timeZone ?? "UTC",
        image: container.image,
        args: container.args,
        env: (container.env ?? []).map((e: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }) => {
          if (e.value !== undefined) return { name: e.name, value: e.value };
          if (e.valueFrom?.fieldRef?.fieldPath === "metadata.labels['job-name']") return { name: e.name, jobName: true };
          throw new Error(`${file}: env ${e.name} comes from somewhere this simulator does not provide`);
        }),
        envFrom: (container.envFrom ?? []).map((e: { configMapRef?: { name: string }; secretRef?: { name: string } }) => (e.configMapRef ?? e.secretRef)!.name),
        completions: job.completions ?? 1,
        indexed: job.completionMode === "Indexed",
        backoffLimit: job.backoffLimit ?? 6,
        failJobExitCodes: rules.filter((r) => r.action === "FailJob" && r.onExitCodes?.operator === "In").flatMap((r) => r.onExitCodes!.values),
      };
    });
}

/** One pod the Job controller starts. */
export interface Pod {
  cronJob: CronJobSpec;
  jobName: string;
  slot: number;
  index: number | undefined;
  attempt: number;
  argv: string[];
  /** The container's env (manifest's own entries and JOB_COMPLETION_INDEX), without envFrom's. */
  env: Record<string, string>;
}

export interface JobOutcome {
  cronJob: string;
  /** The manifest's file: `<job>[.<schedule>].cronjob.yaml`. */
  file: string;
  jobName: string;
  slot: number;
  status: "succeeded" | "failed";
  /** Each pod's exit code, in the order they ended. */
  exitCodes: number[];
  /** The slot was thinned: recorded by the test, not run. */
  thinned?: boolean;
}

export interface SimulationOptions {
  cronJobs: CronJobSpec[];
  from: number;
  to: number;
  clock: FakeClock;
  /** Runs one pod to its end and returns its exit code. */
  runPod(pod: Pod): Promise<number>;
  /** The world changes up to `at`, before the slots at `at` start. */
  before?(at: number): Promise<void>;
  /** A slot the controller does not start (a controller outage, a missed slot). */
  skip?(cronJob: CronJobSpec, slot: number): boolean;
  /** A slot the test stands in for (a thinned monitoring slot): it is recorded, not run. */
  thinned?(cronJob: CronJobSpec, slot: number, jobName: string): Promise<boolean>;
  /** How long after its slot a Job's pods start (scheduling, image on the node). */
  startDelayMs?: number;
}

const MINUTE = 60_000;
const BACKOFF_MS = 10_000;

/** Every slot of every CronJob in [from, to], in time order, slots of one minute together. */
export async function simulate(o: SimulationOptions): Promise<JobOutcome[]> {
  const byTime = new Map<number, CronJobSpec[]>();
  for (const cronJob of o.cronJobs) {
    for (const slot of expectedSlots(parseCron(cronJob.schedule), new Zone(cronJob.timeZone), o.from, o.to)) {
      if (o.skip?.(cronJob, slot)) continue;
      byTime.set(slot, [...(byTime.get(slot) ?? []), cronJob]);
    }
  }
  const outcomes: JobOutcome[] = [];
  for (const slot of [...byTime.keys()].sort((a, b) => a - b)) {
    await o.before?.(slot);
    o.clock.set(slot + (o.startDelayMs ?? 2000));
    for (const cronJob of byTime.get(slot)!) outcomes.push(await runJob(o, cronJob, slot));
  }
  return outcomes;
}

/** One Job: its pods (one per index), each retried until it succeeds or the Job fails. */
async function runJob(o: SimulationOptions, cronJob: CronJobSpec, slot: number): Promise<JobOutcome> {
  const jobName = `${cronJob.name}-${Math.floor(slot / MINUTE)}`;
  if (await o.thinned?.(cronJob, slot, jobName)) return { cronJob: cronJob.name, file: cronJob.file, jobName, slot, status: "succeeded", exitCodes: [], thinned: true };
  const exitCodes: number[] = [];
  let failures = 0;
  let failed = false;
  const indexes = cronJob.indexed ? Array.from({ length: cronJob.completions }, (_, i) => i) : [undefined];
  await Promise.all(
    indexes.map(async (index) => {
      for (let attempt = 1; !failed; attempt++) {
        const env: Record<string, string> = {};
        for (const e of cronJob.env) env[e.name] = e.jobName ? jobName : e.value!;
        if (index !== undefined) env.JOB_COMPLETION_INDEX = String(index);
        const code = await o.runPod({ cronJob, jobName, slot, index, attempt, argv: cronJob.args, env });
        exitCodes.push(code);
        if (code === 0) return;
        if (cronJob.failJobExitCodes.includes(code) || ++failures > cronJob.backoffLimit) {
          failed = true;
          return;
        }
        // The Job controller's backoff before it recreates the pod: simulated time moves on.
        o.clock.set(o.clock.now() + BACKOFF_MS * 2 ** (attempt - 1));
      }
    }),
  );
  return { cronJob: cronJob.name, file: cronJob.file, jobName, slot, status: failed ? "failed" : "succeeded", exitCodes };
}
