/**
 * The slots a Kubernetes CronJob with `.spec.timeZone` starts: its schedule read as the
 * kube-controller-manager reads it, with robfig/cron v3 (cron.ParseStandard, "CRON_TZ=<zone> ..."),
 * whose SpecSchedule.Next the controller calls slot after slot. Next is mirrored here step by step
 * (vendor/github.com/robfig/cron/v3/spec.go in kubernetes/kubernetes), over the zone's wall clock
 * from Intl.DateTimeFormat, so DST comes out as it does in the cluster:
 *
 * - spring forward: a local time that does not exist does not run that day. Next adds whole hours
 *   (t.Add(time.Hour)) while the hour does not match, so from 01:00 it lands on 03:00 and
 *   `30 2 * * *` next runs at 02:30 the day after.
 * - fall back: the repeated hour runs twice. Next adds absolute minutes, so from 02:59 summer time
 *   it lands on 02:00 winter time, which matches again: `0 * * * *` runs at both 02:00s, and
 *   `30 2 * * *` runs at 02:30 summer time and again at 02:30 winter time (robfig/cron keeps no
 *   memory of the day's earlier run).
 *
 * Our own evaluator rather than a cron package: what matters is agreeing with robfig's Next in these
 * corners, and a literal port of its ~80 lines is the shortest way to be sure of that.
 */

/** A parsed five-field schedule: the allowed values of each field, and whether day fields were `*`. */
export interface CronSpec {
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  daysOfWeek: ReadonlySet<number>;
  /** robfig's starBit: the field was `*` or `?` (with no step above 1), so the OR rule does not apply. */
  daysOfMonthStar: boolean;
  daysOfWeekStar: boolean;
}

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MINUTE: Bounds = { min: 0, max: 59 };
const HOUR: Bounds = { min: 0, max: 23 };
const DAY_OF_MONTH: Bounds = { min: 1, max: 31 };
const MONTH: Bounds = { min: 1, max: 12, names: { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 } };
// robfig/cron v3 takes 0-6 only: 7 for Sunday is refused, as the API server refuses it.
const DAY_OF_WEEK: Bounds = { min: 0, max: 6, names: { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 } };

// cron.ParseStandard's descriptors (robfig parser.go parseDescriptor); @every is not a calendar schedule.
const DESCRIPTORS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** Parses a five-field cron expression as cron.ParseStandard does; throws naming the bad field. */
export function parseCron(expression: string): CronSpec {
  const text = DESCRIPTORS[expression.trim().toLowerCase()] ?? expression;
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5) throw new Error(`cron expression "${expression}" must have 5 fields (minute hour day-of-month month day-of-week), has ${fields.length}`);
  const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string];
  const days = parseField(dom, DAY_OF_MONTH, expression);
  const weekdays = parseField(dow, DAY_OF_WEEK, expression);
  return {
    minutes: parseField(minute, MINUTE, expression).values,
    hours: parseField(hour, HOUR, expression).values,
    daysOfMonth: days.values,
    months: parseField(month, MONTH, expression).values,
    daysOfWeek: weekdays.values,
    daysOfMonthStar: days.star,
    daysOfWeekStar: weekdays.star,
  };
}

/** One field: a comma list of `*`, `?`, `n`, `a-b`, each with an optional `/step` (robfig getRange). */
function parseField(field: string, bounds: Bounds, expression: string): { values: Set<number>; star: boolean } {
  const values = new Set<number>();
  let star = false;
  const bad = (why: string) => new Error(`cron expression "${expression}": "${field}" ${why}`);
  for (const part of field.split(",")) {
    const [range = "", step, extra] = part.split("/");
    if (extra !== undefined) throw bad("has too many slashes");
    const [low = "", high, tooMany] = range.split("-");
    if (tooMany !== undefined) throw bad("has too many hyphens");
    let start: number;
    let end: number;
    let partStar = false;
    if (low === "*" || low === "?") {
      [start, end, partStar] = [bounds.min, bounds.max, true];
    } else {
      start = valueOf(low, bounds, bad);
      end = high === undefined ? start : valueOf(high, bounds, bad);
    }
    let every = 1;
    if (step !== undefined) {
      if (!/^\d+$/.test(step) || Number(step) === 0) throw bad("must have a positive whole step");
      every = Number(step);
      // "N/step" means "N-max/step"; a step above 1 is no longer a star (robfig v3).
      if (high === undefined) end = bounds.max;
      if (every > 1) partStar = false;
    }
    if (start < bounds.min || end > bounds.max) throw bad(`is outside ${bounds.min}-${bounds.max}`);
    if (start > end) throw bad("has a range that runs backwards");
    for (let v = start; v <= end; v += every) values.add(v);
    star ||= partStar;
  }
  return { values, star };
}

function valueOf(text: string, bounds: Bounds, bad: (why: string) => Error): number {
  const named = bounds.names?.[text.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^\d+$/.test(text)) throw bad(`has "${text}", which is not a number${bounds.names ? " or a name" : ""}`);
  return Number(text);
}

const SECOND = 1000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/** Wall-clock fields of an instant in a zone. */
interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

/**
 * A time zone's offsets, from Intl. Asking Intl for every minute Next steps through cost ~20 µs a
 * step (12 s for a year of a five-minute schedule); offsets are cached per hour instead, checked at
 * both ends of the hour: an hour with a change in it (a few a year) is asked minute by minute.
 * Every zone in use today changes offset on a whole minute, so minute lookups are exact.
 */
export class Zone {
  private readonly format: Intl.DateTimeFormat;
  /** Per hour since the epoch: its offset, or NaN when the offset changes within it. */
  private readonly hourOffsets = new Map<number, number>();

  constructor(readonly name: string) {
    // Throws RangeError for a zone Intl does not know.
    this.format = new Intl.DateTimeFormat("en-US", {
      timeZone: name,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  }

  /** Local time minus UTC at `instant`, in ms. */
  offsetMs(instant: number): number {
    const hour = Math.floor(instant / HOUR_MS);
    let offset = this.hourOffsets.get(hour);
    if (offset === undefined) {
      const first = this.lookup(hour * HOUR_MS);
      offset = first === this.lookup(hour * HOUR_MS + HOUR_MS - MINUTE_MS) ? first : NaN;
      this.hourOffsets.set(hour, offset);
    }
    return Number.isNaN(offset) ? this.lookup(Math.floor(instant / MINUTE_MS) * MINUTE_MS) : offset;
  }

  private lookup(minute: number): number {
    const parts: Record<string, number> = {};
    for (const part of this.format.formatToParts(minute)) if (part.type !== "literal") parts[part.type] = Number(part.value);
    return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!) - minute;
  }

  local(instant: number): LocalTime {
    const d = new Date(instant + this.offsetMs(instant));
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() };
  }

  /**
   * Go's time.Date(y, m, d, h, mi, s, 0, loc): out-of-range fields roll over, and a wall time that
   * does not exist or exists twice resolves as Go resolves it: with the offset in force at the wall
   * time read as UTC, unless that gives an instant under another offset, then with that one.
   */
  date(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
    const wall = Date.UTC(year, month - 1, day, hour, minute, second);
    return wall - this.offsetMs(wall - this.offsetMs(wall));
  }

  /** ISO 8601 with the zone's offset, e.g. 2026-03-29T03:30:00+02:00. */
  formatLocal(instant: number): string {
    const offset = this.offsetMs(instant) / 60_000;
    const sign = offset < 0 ? "-" : "+";
    const pad = (n: number) => String(Math.floor(Math.abs(n))).padStart(2, "0");
    return `${new Date(instant + offset * 60_000).toISOString().slice(0, 19)}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
  }
}

function dayMatches(spec: CronSpec, t: LocalTime): boolean {
  const dom = spec.daysOfMonth.has(t.day);
  const dow = spec.daysOfWeek.has(t.weekday);
  return spec.daysOfMonthStar || spec.daysOfWeekStar ? dom && dow : dom || dow;
}

/**
 * robfig/cron v3 SpecSchedule.Next: the first activation after `after` (ms), or undefined when
 * none comes within five years. Same loops, same resets, same DST corrections.
 */
export function nextSlot(spec: CronSpec, zone: Zone, after: number): number | undefined {
  let t = Math.floor(after / SECOND) * SECOND + SECOND;
  let added = false;
  const yearLimit = zone.local(t).year + 5;
  wrap: for (;;) {
    let l = zone.local(t);
    if (l.year > yearLimit) return undefined;

    while (!spec.months.has(l.month)) {
      if (!added) {
        added = true;
        t = zone.date(l.year, l.month, 1, 0, 0, 0);
        l = zone.local(t);
      }
      t = zone.date(l.year, l.month + 1, l.day, l.hour, l.minute, l.second);
      l = zone.local(t);
      if (l.month === 1) continue wrap;
    }

    while (!dayMatches(spec, l)) {
      if (!added) {
        added = true;
        t = zone.date(l.year, l.month, l.day, 0, 0, 0);
        l = zone.local(t);
      }
      t = zone.date(l.year, l.month, l.day + 1, l.hour, l.minute, l.second);
      l = zone.local(t);
      // Where DST moves midnight, robfig brings the day back to its first hour.
      if (l.hour !== 0) {
        t += (l.hour > 12 ? 24 - l.hour : -l.hour) * HOUR_MS;
        l = zone.local(t);
      }
      if (l.day === 1) continue wrap;
    }

    while (!spec.hours.has(l.hour)) {
      if (!added) {
        added = true;
        t = zone.date(l.year, l.month, l.day, l.hour, 0, 0);
      }
      t += HOUR_MS;
      l = zone.local(t);
      if (l.hour === 0) continue wrap;
    }

    while (!spec.minutes.has(l.minute)) {
      if (!added) {
        added = true;
        t = Math.floor(t / MINUTE_MS) * MINUTE_MS;
      }
      t += MINUTE_MS;
      l = zone.local(t);
      if (l.minute === 0) continue wrap;
    }

    // The standard parser's seconds field is 0 alone: robfig adds seconds up to the next whole
    // minute, then starts over; offsets being whole minutes, that minute is t's next one.
    if (l.second !== 0) {
      added = true;
      t = Math.floor(t / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
      continue wrap;
    }
    return t;
  }
}

/** The slots (UTC ms) of `cron` in `timeZone` from `from` to `to`, both included, in order. */
export function expectedSlots(cron: string | CronSpec, timeZone: string | Zone, from: number, to: number): number[] {
  const spec = typeof cron === "string" ? parseCron(cron) : cron;
  const zone = typeof timeZone === "string" ? new Zone(timeZone) : timeZone;
  const slots: number[] = [];
  for (let t = nextSlot(spec, zone, Math.ceil(from / SECOND) * SECOND - SECOND); t !== undefined && t <= to; t = nextSlot(spec, zone, t)) slots.push(t);
  return slots;
}

/**
 * The last slot strictly before `at` (robfig has no Prev): Next walked from ever earlier starts
 * (an hour back, a day, a month, a year, five) until one lands before `at`. A schedule that runs
 * every few minutes costs a few steps; a yearly one a few hundred.
 */
export function previousSlot(spec: CronSpec, zone: Zone, at: number): number | undefined {
  for (const back of [HOUR_MS, 26 * HOUR_MS, 32 * 24 * HOUR_MS, 367 * 24 * HOUR_MS, 5 * 367 * 24 * HOUR_MS]) {
    let last: number | undefined;
    for (let t = nextSlot(spec, zone, at - back - SECOND); t !== undefined && t < at; t = nextSlot(spec, zone, t)) last = t;
    if (last !== undefined) return last;
  }
  return undefined;
}

/** Whether `at` is one of the schedule's slots. */
export function isSlot(spec: CronSpec, zone: Zone, at: number): boolean {
  return nextSlot(spec, zone, at - SECOND) === at;
}
