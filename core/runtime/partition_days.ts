import { previousSlot, type CronSpec, type Zone } from "./cron";

const DAY_MS = 86_400_000;

/**
 * The days a run that looks back `lookbackDays` works on, oldest first, ending with `day`
 * (YYYY-MM-DD): late data converges when each scheduled run rebuilds what changed in the last few
 * days, and a missed slot's day is made up by the next ones within that window.
 */
export function lookbackDays(day: string, lookbackDays: number): string[] {
  const last = Date.parse(`${day}T00:00:00Z`);
  return Array.from({ length: lookbackDays }, (_, i) => new Date(last - (lookbackDays - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

/**
 * The days a slot of a partitioned schedule builds, oldest first: the UTC day its data interval
 * starts in (the previous slot of its cron; core/runtime/data_interval.ts), and with the
 * schedule's `lookbackDays` the days before it. What `etl schedules` shows and schedule_audit heals by.
 */
export function slotPartitions(spec: CronSpec, zone: Zone, slot: number, args: Record<string, unknown>): string[] {
  const day = new Date(previousSlot(spec, zone, slot) ?? slot).toISOString().slice(0, 10);
  return lookbackDays(day, Number(args.lookbackDays ?? 1));
}
