import type { Counts } from "../../../core/runtime/job";
import { LOST_AFTER_MS } from "../../../core/ledger/ledger";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import type { SlotRun } from "../../../repositories/slot_runs";
import { expectedSlots, parseCron, Zone, type CronSpec } from "../../../core/runtime/cron";
import { slotPartitions } from "../../../core/runtime/partition_days";
import { scheduleId } from "../../../core/runtime/schedules";

export const SLOT_KINDS = ["on_time", "late", "healed", "missed", "doubled", "lost", "failed", "running"] as const;
export type SlotKind = (typeof SLOT_KINDS)[number];

/**
 * Kinds that make the run partial (exit 3): the schedule did not deliver the slot. A slot whose
 * every attempt failed is one: its data is not there, whatever the runs' own exit codes said.
 */
const BREACHES: ReadonlySet<SlotKind> = new Set(["missed", "doubled", "lost", "failed"]);
/** Kinds worth a line: a late start, or a missed slot a later one made up for, is a warning. */
const PROBLEMS: ReadonlySet<SlotKind> = new Set(["late", "healed", ...BREACHES]);

/** What the audit needs of a scheduled job: its name and one of its schedules (jobs/schedules.generated.ts). */
export interface AuditedJob {
  name: string;
  schedule: { name: string; cron: string; timeZone?: string; shards?: number; partitioned?: boolean; args?: Record<string, unknown> };
}

export interface SlotRunSource {
  runsInWindow(job: string, schedule: string, from: Date, to: Date, lostAfterMs: number): Promise<SlotRun[]>;
  /** The logical date of the schedule's first run ever (dry runs aside); undefined when it never ran. */
  firstSlot(job: string, schedule: string): Promise<Date | undefined>;
}

export interface ScheduleAuditOptions {
  /** The scheduled jobs (the registry's schedules: jobs/schedules.generated.ts in a binary). */
  jobs: readonly AuditedJob[];
  runs: SlotRunSource;
  sinceMs: number;
  graceMs: number;
  log: Logger;
  metrics: Metrics;
  signal?: AbortSignal;
  /** The run's clock; tests move it. */
  now?: Date;
  lostAfterMs?: number;
}

export interface SlotVerdict {
  kind: SlotKind;
  runIds: string[];
  /** Of a late slot: how long after the slot its successful run started. */
  delaySeconds?: number;
}

/**
 * Every schedule's slots from now - since to now - grace against its ledger rows by schedule and
 * logical date (a CronJob's run takes its slot from the Job's name, core/runtime/logical_date.ts),
 * one verdict per slot and shard. One `schedule_audit.slot` event per problem slot (naming the
 * job audited `auditedJob`), one `schedule_audit.schedule` event per schedule with problems (the
 * line a terminal shows in their place), a gauge etl_schedule_slots{job,schedule,kind} for every
 * kind, and counts per kind over all schedules.
 * `failed` is missed + doubled + lost + failed slots: above zero, the runner makes the run partial
 * (exit 3). A missed or failed slot of a partitioned job whose schedule looks back
 * (`lookbackDays`) is healed when a later slot that succeeded built its partition again.
 */
export async function auditSchedules(o: ScheduleAuditOptions): Promise<Counts> {
  const now = (o.now ?? new Date()).getTime();
  const window = { from: now - o.sinceMs, to: now - o.graceMs, graceMs: o.graceMs, lostAfterMs: o.lostAfterMs ?? LOST_AFTER_MS };
  const total: Record<SlotKind, number> = zeroCounts();
  let audited = 0;
  for (const job of o.jobs) {
    if (o.signal?.aborted) break;
    audited++;
    const { name: schedule, timeZone = "UTC" } = job.schedule;
    const { zone, slots } = await judgeSchedule(job, o.runs, window);
    const counts = zeroCounts();
    const problems: JudgedSlot[] = [];
    for (const judged of slots) {
      const { slot, shard, partition, verdict } = judged;
      counts[verdict.kind]++;
      if (!PROBLEMS.has(verdict.kind)) continue;
      problems.push(judged);
      // The line is the audit's (job: schedule_audit, bound by the runner); the job it audited is a field.
      // A terminal reads the schedule's line below instead of one line per slot.
      o.log[levelOf(verdict.kind)]("schedule slot", {
        event: "schedule_audit.slot",
        auditedJob: job.name,
        schedule,
        slot: new Date(slot).toISOString(),
        slotLocal: zone.formatLocal(slot),
        timeZone,
        ...(shard === null ? {} : { shard }),
        ...(partition && { partition }),
        ...verdict,
      }, { pretty: false });
    }
    if (problems.length) {
      const worst = problems.some((p) => BREACHES.has(p.verdict.kind)) ? "error" : "warn";
      const problemCounts = Object.fromEntries(SLOT_KINDS.filter((kind) => PROBLEMS.has(kind) && counts[kind]).map((kind) => [kind, counts[kind]]));
      o.log[worst]("schedule problems", { event: "schedule_audit.schedule", auditedJob: job.name, schedule, timeZone, slots: slots.length, problems: problemCounts }, { pretty: scheduleLine(scheduleId(job.name, schedule), slots.length, problems, zone) });
    }
    for (const kind of SLOT_KINDS) {
      o.metrics.gauge("etl_schedule_slots", "Slots of the schedule in the audit window, by what became of them", { job: job.name, schedule, kind }, counts[kind]);
      total[kind] += counts[kind];
    }
  }
  return {
    schedules: audited,
    slots: SLOT_KINDS.reduce((sum, kind) => sum + total[kind], 0),
    onTime: total.on_time,
    late: total.late,
    healed: total.healed,
    missed: total.missed,
    doubled: total.doubled,
    lost: total.lost,
    failedSlots: total.failed,
    running: total.running,
    failed: total.missed + total.doubled + total.lost + total.failed,
  };
}

const levelOf = (kind: SlotKind) => (BREACHES.has(kind) ? "error" : "warn");

/**
 * A schedule's problem slots in one line, by kind: the slots themselves when there are a few,
 * else the first and the last, e.g. "db_metrics (72 slots, UTC): 72 missed: 2026-12-07 20:45 to
 * 2026-12-08 02:40".
 */
function scheduleLine(id: string, slots: number, problems: readonly JudgedSlot[], zone: Zone): string {
  const kinds = SLOT_KINDS.flatMap((kind) => {
    const of = problems.filter((p) => p.verdict.kind === kind);
    if (!of.length) return [];
    // A sharded slot's shards are one time: "02:00 shard 2/4", or "02:00 (4 shards)".
    const shards = new Map<number, string[]>();
    for (const p of of) shards.set(p.slot, [...(shards.get(p.slot) ?? []), p.shard ?? ""]);
    const times = [...shards].map(([slot, [first, ...more]]) => `${zone.formatLocal(slot).slice(0, 16).replace("T", " ")}${more.length ? ` (${more.length + 1} shards)` : first ? ` shard ${first}` : ""}`);
    const shown = times.length <= 3 ? times.join(", ") : `${times[0]} to ${times.at(-1)}`;
    return [`${of.length} ${kind.replace("_", " ")}: ${shown}`];
  });
  return `${id} (${slots} slot${slots === 1 ? "" : "s"}, ${zone.name}): ${kinds.join("; ")}`;
}

/** One slot and shard of a schedule, judged: its verdict and the runs that worked on it, oldest start first. */
export interface JudgedSlot {
  slot: number;
  /** `i/n` of a sharded schedule, else null. */
  shard: string | null;
  /** Of a partitioned job: the day the slot builds. */
  partition?: string;
  verdict: SlotVerdict;
  runs: SlotRun[];
}

/**
 * A schedule's slots in [from, to] (epoch ms) against its ledger rows, each shard's verdict
 * (classifySlot, then healing): what the audit counts and logs, and what `etl report` draws.
 * Slots before the schedule's first run ever were before it was deployed and are left out
 * (`firstSlot` says from when); a schedule that never ran at all is judged on every slot (a
 * CronJob that was never applied, or never starts).
 */
export async function judgeSchedule(
  job: AuditedJob,
  source: SlotRunSource,
  window: { from: number; to: number; graceMs: number; lostAfterMs: number },
): Promise<{ zone: Zone; slots: JudgedSlot[]; firstSlot: Date | undefined }> {
  const { name: schedule, cron, timeZone = "UTC", shards = 1 } = job.schedule;
  let zone: Zone;
  let spec: CronSpec;
  let slots: number[];
  try {
    zone = new Zone(timeZone);
    spec = parseCron(cron);
    slots = expectedSlots(spec, zone, window.from, window.to);
  } catch (error) {
    throw new Error(`job ${job.name}: schedule "${cron}" in ${timeZone}: ${(error as Error).message}`);
  }
  const first = await source.firstSlot(job.name, schedule);
  if (first && first.getTime() > window.from) slots = slots.filter((slot) => slot >= first.getTime());
  const runs = groupBySlot(await source.runsInWindow(job.name, schedule, new Date(window.from), new Date(window.to), window.lostAfterMs));
  const expectedShards = shards > 1 ? Array.from({ length: shards }, (_, i) => `${i}/${shards}`) : [null];
  const rebuilds = rebuiltPartitions(job, spec, zone, runs);
  const judged: JudgedSlot[] = [];
  for (const slot of slots) {
    const partition = job.schedule.partitioned ? slotPartitions(spec, zone, slot, {}).at(-1) : undefined;
    for (const shard of expectedShards) {
      const slotRuns = runs.get(slotKey(slot, shard)) ?? [];
      let verdict = classifySlot(slot, slotRuns, window.graceMs);
      const healedBy = (verdict.kind === "missed" || verdict.kind === "failed") && partition ? rebuilds.get(partition) : undefined;
      if (healedBy) verdict = { kind: "healed", runIds: [...verdict.runIds, healedBy] };
      judged.push({ slot, shard, ...(partition && { partition }), verdict, runs: slotRuns });
    }
  }
  return { zone, slots: judged, firstSlot: first };
}

/**
 * The partitions that succeeded runs of a looking-back schedule built again: a slot building day D
 * with `lookbackDays` n rebuilds D-n+1..D. Partition to the run that did it last.
 */
function rebuiltPartitions(job: AuditedJob, spec: CronSpec, zone: Zone, runs: Map<string, SlotRun[]>): Map<string, string> {
  const rebuilt = new Map<string, string>();
  if (!job.schedule.partitioned) return rebuilt;
  for (const slotRuns of runs.values()) {
    for (const run of slotRuns) {
      if (run.status !== "succeeded") continue;
      // The slot's own day is its own verdict; the days before it are the ones it heals.
      for (const day of slotPartitions(spec, zone, run.logicalDate.getTime(), job.schedule.args ?? {}).slice(0, -1)) rebuilt.set(day, run.runId);
    }
  }
  return rebuilt;
}

/**
 * One slot (and shard) from its runs, oldest start first. Skipped runs did no work and are left
 * out. Doubled: two runs worked on the slot at the same time, or two succeeded; a run that
 * follows a failed, interrupted or lost one is a retry (a Kubernetes Job's backoffLimit makes one
 * under the same Job name, so the same logical date), not a double. Otherwise a success decides
 * (on time when it started within the grace), else the last run: running with a live heartbeat,
 * lost (or running with a stale one), or failed.
 */
export function classifySlot(slot: number, runs: readonly SlotRun[], graceMs: number): SlotVerdict {
  const working = runs.filter((r) => r.status !== "skipped");
  const runIds = working.map((r) => r.runId);
  if (!working.length) return { kind: "missed", runIds };
  const succeeded = working.filter((r) => r.status === "succeeded");
  if (succeeded.length > 1 || overlapping(working)) return { kind: "doubled", runIds };
  if (succeeded[0]) {
    const delayMs = succeeded[0].startedAt.getTime() - slot;
    return delayMs <= graceMs ? { kind: "on_time", runIds } : { kind: "late", runIds, delaySeconds: Math.round(delayMs / 1000) };
  }
  const last = working[working.length - 1]!;
  if (last.status === "running") return { kind: last.heartbeatStale ? "lost" : "running", runIds };
  return { kind: last.status === "lost" ? "lost" : "failed", runIds };
}

/** Whether a run started before the one before it stopped (a live run has not stopped). */
function overlapping(runs: readonly SlotRun[]): boolean {
  let busyUntil = -Infinity;
  for (const run of runs) {
    if (run.startedAt.getTime() < busyUntil) return true;
    const end = run.status === "running" && !run.heartbeatStale ? Infinity : run.endedAt.getTime();
    busyUntil = Math.max(busyUntil, end);
  }
  return false;
}

function groupBySlot(runs: readonly SlotRun[]): Map<string, SlotRun[]> {
  const bySlot = new Map<string, SlotRun[]>();
  for (const run of runs) {
    const key = slotKey(run.logicalDate.getTime(), run.shard);
    const list = bySlot.get(key);
    if (list) list.push(run);
    else bySlot.set(key, [run]);
  }
  return bySlot;
}

const slotKey = (slot: number, shard: string | null) => `${slot} ${shard ?? ""}`;

function zeroCounts(): Record<SlotKind, number> {
  return { on_time: 0, late: 0, healed: 0, missed: 0, doubled: 0, lost: 0, failed: 0, running: 0 };
}
