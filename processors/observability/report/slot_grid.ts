/**
 * The schedules' slots of the report's last days, each judged by schedule_audit's rules
 * (processors/observability/schedule/audit.ts judgeSchedule: classifySlot and healing): the grid
 * of `etl report`. What the audit does not judge is said too: a slot that is not due yet (in the
 * future, or younger than the grace with no run), and one before the schedule's first run ever
 * (not deployed yet).
 */
import type { ScheduledJob } from "../../../core/runtime/contract";
import { expectedSlots, parseCron, Zone } from "../../../core/runtime/cron";
import { scheduleId } from "../../../core/runtime/schedules";
import type { SlotRun } from "../../../repositories/slot_runs";
import { judgeSchedule, type SlotKind, type SlotRunSource } from "../schedule/audit";

const DAY_MS = 86_400_000;

/** A cell's state: a verdict of the audit, or why the audit does not judge the slot. */
export type CellKind = SlotKind | "not_yet_due" | "not_deployed";

export interface SlotCell {
  /** The slot's scheduled time (its logical date), epoch ms. */
  slot: number;
  /** The slot on the schedule's wall clock. */
  local: string;
  kind: CellKind;
  /** The runs that worked on the slot, oldest start first (skipped ones included, as the ledger has them). */
  runs: SlotRun[];
  /** Of a late slot: how long after the slot its successful run started. */
  delaySeconds?: number;
  /** Of a healed slot: the later run that rebuilt its partition. */
  healedBy?: string;
  partition?: string;
}

/** One row of the grid: a schedule, or one shard of a sharded one. */
export interface ScheduleRow {
  /** `<job>` or `<job>.<schedule>` (core/runtime/schedules.ts scheduleId). */
  id: string;
  job: string;
  schedule: string;
  cron: string;
  timeZone: string;
  shard: string | null;
  /** The logical date of the schedule's first run ever; undefined when it never ran. */
  firstSlot: Date | undefined;
  /** The report's days (YYYY-MM-DD, UTC), oldest first, each with its slots in time order. */
  days: Array<{ day: string; cells: SlotCell[] }>;
}

export interface SlotGridOptions {
  schedules: readonly ScheduledJob[];
  runs: SlotRunSource;
  /** UTC days ending with today's. */
  days: number;
  graceMs: number;
  lostAfterMs: number;
  now: Date;
}

/** The last `days` UTC days of today's; the first one's midnight and the end of today. */
export function reportDays(days: number, now: Date): { days: string[]; from: number; to: number } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const from = today - (days - 1) * DAY_MS;
  return { days: Array.from({ length: days }, (_, i) => new Date(from + i * DAY_MS).toISOString().slice(0, 10)), from, to: today + DAY_MS - 1 };
}

/**
 * Every schedule's (and shard's) row of cells over the report's days. The slots up to now are
 * judged as one audit of that window would judge them (`graceMs` as its --grace), including the
 * young ones a run already worked on; the rest of today's are not due yet.
 */
export async function slotGrid(o: SlotGridOptions): Promise<ScheduleRow[]> {
  const now = o.now.getTime();
  const window = reportDays(o.days, o.now);
  const rows: ScheduleRow[] = [];
  for (const scheduled of o.schedules) {
    const { name: job, schedule, cron, timeZone = "UTC", shards = 1 } = scheduled;
    const zone = new Zone(timeZone);
    const judged = await judgeSchedule({ name: job, schedule: { ...scheduled, name: schedule } }, o.runs, { from: window.from, to: Math.min(now, window.to), graceMs: o.graceMs, lostAfterMs: o.lostAfterMs });
    const verdicts = new Map(judged.slots.map((j) => [`${j.slot} ${j.shard ?? ""}`, j]));
    const slots = expectedSlots(parseCron(cron), zone, window.from, window.to);
    for (const shard of shards > 1 ? Array.from({ length: shards }, (_, i) => `${i}/${shards}`) : [null]) {
      const cells = slots.map((slot): SlotCell => {
        const base = { slot, local: zone.formatLocal(slot), runs: [] as SlotRun[] };
        const judgedSlot = verdicts.get(`${slot} ${shard ?? ""}`);
        // Not judged: a slot to come, or one before the schedule's first run (judgeSchedule leaves those out).
        if (!judgedSlot) return { ...base, kind: slot > now ? "not_yet_due" : "not_deployed" };
        const { verdict, runs, partition } = judgedSlot;
        // The audit leaves a slot younger than its grace alone until a run has worked on it.
        if (verdict.kind === "missed" && slot > now - o.graceMs) return { ...base, kind: "not_yet_due" };
        const healedBy = verdict.kind === "healed" ? verdict.runIds.at(-1) : undefined;
        return { ...base, kind: verdict.kind, runs, ...(verdict.delaySeconds !== undefined && { delaySeconds: verdict.delaySeconds }), ...(healedBy && { healedBy }), ...(partition && { partition }) };
      });
      rows.push({
        id: scheduleId(job, schedule),
        job,
        schedule,
        cron,
        timeZone,
        shard,
        firstSlot: judged.firstSlot,
        days: window.days.map((day) => ({ day, cells: cells.filter((c) => new Date(c.slot).toISOString().startsWith(day)) })),
      });
    }
  }
  return rows;
}
