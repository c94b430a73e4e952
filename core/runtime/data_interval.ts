/**
 * The data interval of a run (DESIGN.md "Data intervals"): a slot stands for the time from the
 * previous slot of its cron to this one, the logical date being the end. From Airflow, both ends
 * come in (ETL_LOGICAL_DATE = data_interval_end, ETL_DATA_INTERVAL_START = data_interval_start);
 * otherwise the start is the previous slot of the run's schedule, when the logical date is one of
 * its slots. A logical date that is no slot of it (a day given by hand) has no interval.
 */
import type { DataInterval, JobSchedule } from "./contract";
import { isSlot, parseCron, previousSlot, Zone } from "./cron";
import { UsageError } from "../errors";
import { parseLogicalDate } from "./logical_date";

export function resolveDataInterval(o: {
  logicalDate: Date | undefined;
  env: Record<string, string | undefined>;
  schedule: Pick<JobSchedule<never>, "cron" | "timeZone"> | undefined;
}): DataInterval | undefined {
  const startText = o.env.ETL_DATA_INTERVAL_START?.trim();
  if (startText) {
    if (!o.logicalDate) throw new UsageError("ETL_DATA_INTERVAL_START needs the interval's end as the logical date (ETL_LOGICAL_DATE or --logical-date)");
    const start = parseLogicalDate(startText, "ETL_DATA_INTERVAL_START");
    if (start > o.logicalDate) throw new UsageError(`ETL_DATA_INTERVAL_START ${start.toISOString()} is after the logical date ${o.logicalDate.toISOString()}, the interval's end`);
    // An empty interval (Airflow 3's CronTriggerTimetable) says nothing: the schedule's cron tells it.
    if (start < o.logicalDate) return { start, end: o.logicalDate };
  }
  if (!o.logicalDate || !o.schedule) return undefined;
  const spec = parseCron(o.schedule.cron);
  const zone = new Zone(o.schedule.timeZone ?? "UTC");
  const end = o.logicalDate.getTime();
  if (!isSlot(spec, zone, end)) return undefined;
  const start = previousSlot(spec, zone, end);
  return start === undefined ? undefined : { start: new Date(start), end: o.logicalDate };
}

/** The day (UTC) a partitioned run works on by default: its interval's first day, else its logical date's. */
export function partitionDateOf(logicalDate: Date | undefined, interval: DataInterval | undefined): string | undefined {
  return (interval?.start ?? logicalDate)?.toISOString().slice(0, 10);
}
