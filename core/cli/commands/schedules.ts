/**
 * `etl schedules [--from T] [--to T] [--job J] [--json]`: every schedule's slots in a window, each
 * with its logical date, its data interval and the partition a partitioned job builds (with
 * `lookbackDays`, the days it looks back over too), so an operator sees what a change to a cron,
 * a time zone or a lookback does before deploying it. Reads only the declarations.
 */
import type { CliIo } from "../io";
import type { Registry, ScheduledJob } from "../../runtime/contract";
import { expectedSlots, parseCron, previousSlot, Zone } from "../../runtime/cron";
import { formatLogicalDate, parseLogicalDate } from "../../runtime/logical_date";
import { slotPartitions } from "../../runtime/partition_days";
import { loadJobs, schedulesOf } from "../../runtime/registry";
import { scheduleId } from "../../runtime/schedules";
import { errorMessage } from "../../errors";
import { CommandUsageError, parseCommandArgs } from "./operator";

const USAGE = "etl schedules [--from T] [--to T] [--job <job|job.schedule>] [--json]";
const DAY_MS = 86_400_000;
// A five-minute schedule over 31 days is ~9,000 slots: more is no longer a table anyone reads.
const MAX_WINDOW_MS = 31 * DAY_MS;

export interface ScheduledSlot {
  schedule: string;
  cron: string;
  timeZone: string;
  logicalDate: string;
  /** The slot's time on the schedule's wall clock. */
  local: string;
  intervalStart: string | null;
  /** Of a partitioned job: the days the slot builds, the last one being its own. */
  partitions: string[] | null;
}

export async function schedulesCommand(args: string[], registry: Registry, io: CliIo): Promise<number> {
  let rows: ScheduledSlot[];
  let json: boolean;
  try {
    const { values, positionals } = parseCommandArgs("etl schedules", args, { from: { type: "string" }, to: { type: "string" }, job: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, USAGE);
    if (values.help) {
      io.out(`usage: ${USAGE}\nevery schedule's slots from --from (default: now) to --to (default: a day later): logical date, data interval, partition\n`);
      return 0;
    }
    if (positionals.length) throw new CommandUsageError(`etl schedules: unexpected argument ${positionals[0]}\nusage: ${USAGE}`);
    const from = values.from === undefined ? new Date() : time(values.from, "--from");
    const to = values.to === undefined ? new Date(from.getTime() + DAY_MS) : time(values.to, "--to");
    if (to < from) throw new CommandUsageError(`etl schedules: --to ${values.to} is before --from ${values.from ?? "now"}`);
    if (to.getTime() - from.getTime() > MAX_WINDOW_MS) throw new CommandUsageError("etl schedules: the window from --from to --to is at most 31 days");
    const all = registry.schedules ? await registry.schedules() : schedulesOf(await loadJobs(registry.jobs));
    const selected = values.job === undefined ? all : all.filter((s) => s.name === values.job || scheduleId(s.name, s.schedule) === values.job);
    if (!selected.length) throw new CommandUsageError(`etl schedules: --job ${values.job}: no such schedule; schedules: ${all.map((s) => scheduleId(s.name, s.schedule)).join(", ")}`);
    rows = selected.flatMap((schedule) => slotsOf(schedule, from.getTime(), to.getTime())).sort((a, b) => a.logicalDate.localeCompare(b.logicalDate) || a.schedule.localeCompare(b.schedule));
    json = values.json === true;
  } catch (error) {
    if (!(error instanceof CommandUsageError)) throw error;
    io.err(`${error.message}\n`);
    return 2;
  }
  io.out(json ? `${JSON.stringify(rows, null, 2)}\n` : table(rows));
  return 0;
}

function time(text: string, flag: string): Date {
  try {
    return parseLogicalDate(text, flag);
  } catch (error) {
    throw new CommandUsageError(`etl schedules: ${errorMessage(error)}`);
  }
}

/** A schedule's slots in [from, to], each with its interval and partitions. */
export function slotsOf(s: ScheduledJob, from: number, to: number): ScheduledSlot[] {
  const spec = parseCron(s.cron);
  const zone = new Zone(s.timeZone ?? "UTC");
  return expectedSlots(spec, zone, from, to).map((slot) => {
    const start = previousSlot(spec, zone, slot);
    return {
      schedule: scheduleId(s.name, s.schedule),
      cron: s.cron,
      timeZone: s.timeZone ?? "UTC",
      logicalDate: new Date(slot).toISOString(),
      local: zone.formatLocal(slot),
      intervalStart: start === undefined ? null : new Date(start).toISOString(),
      partitions: s.partitioned ? slotPartitions(spec, zone, slot, s.args) : null,
    };
  });
}

function table(rows: ScheduledSlot[]): string {
  const lines = [["slot (logical date)", "schedule", "data interval", "builds"], ...rows.map((r) => [
    formatLogicalDate(new Date(r.logicalDate)) + (r.timeZone === "UTC" ? "" : ` (${r.local})`),
    r.schedule,
    r.intervalStart ? `${shortTime(r.intervalStart)} .. ${shortTime(r.logicalDate)}` : "-",
    r.partitions ? (r.partitions.length > 1 ? `dt=${r.partitions.at(-1)} (and back to ${r.partitions[0]})` : `dt=${r.partitions[0]}`) : "-",
  ])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ") + "\n").join("") + (rows.length ? "" : "(no slot in the window)\n");
}

const shortTime = (iso: string) => iso.slice(0, 16).replace("T", " ");
