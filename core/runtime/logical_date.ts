import { UsageError } from "../errors";

/**
 * The logical date of a run: the slot it stands for, not the time it started (DESIGN.md "Logical
 * dates"). From `--logical-date`, else ETL_LOGICAL_DATE, else, in a pod of a generated CronJob,
 * the Kubernetes Job's name, which the CronJob controller makes `<cronjob>-<scheduled minutes
 * since the epoch>` and the manifests pass in as ETL_KUBERNETES_JOB_NAME (downward API).
 */
export interface LogicalDateSource {
  flag: string | undefined;
  env: Record<string, string | undefined>;
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
// ISO 8601 with a time; a time without an offset is read as UTC, as Airflow's logical dates are.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;
// Minutes since the epoch of years 2000 to 2200: 15,778,080 to 120,951,360.
const JOB_NAME_MINUTES = /-(\d{8,9})$/;
const MIN_MINUTES = 15_778_080;
const MAX_MINUTES = 120_951_360;

export function resolveLogicalDate({ flag, env }: LogicalDateSource): Date | undefined {
  if (flag !== undefined) return parseLogicalDate(flag, "--logical-date");
  const fromEnv = env.ETL_LOGICAL_DATE?.trim();
  if (fromEnv) return parseLogicalDate(fromEnv, "ETL_LOGICAL_DATE");
  const jobName = env.ETL_KUBERNETES_JOB_NAME?.trim();
  return jobName ? logicalDateFromJobName(jobName) : undefined;
}

/** YYYY-MM-DD (midnight UTC) or an ISO timestamp; anything else is a usage error naming `source`. */
export function parseLogicalDate(text: string, source: string): Date {
  const value = text.trim();
  const date = DATE_ONLY.exec(value);
  if (date) return checkedDate(value, source, Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!), [+date[1]!, +date[2]!, +date[3]!]);
  const time = DATE_TIME.exec(value);
  if (time) {
    const [, y, mo, d, h, mi, s = "0", fraction = "", offset = "Z"] = time;
    const utc = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s, Number(fraction.padEnd(3, "0").slice(0, 3)));
    if (+h! > 23 || +mi! > 59 || +s > 59) throw invalid(value, source);
    checkedDate(value, source, Date.UTC(+y!, +mo! - 1, +d!), [+y!, +mo!, +d!]);
    return new Date(utc - offsetMinutes(offset) * 60_000);
  }
  throw invalid(value, source);
}

/** The scheduled time in a CronJob's Job name, or undefined for a Job named otherwise (created by hand). */
export function logicalDateFromJobName(name: string): Date | undefined {
  const match = JOB_NAME_MINUTES.exec(name);
  const minutes = match ? Number(match[1]) : NaN;
  return minutes >= MIN_MINUTES && minutes <= MAX_MINUTES ? new Date(minutes * 60_000) : undefined;
}

/** A logical date as people read it: the day alone at midnight UTC, else the full timestamp. */
export function formatLogicalDate(date: Date): string {
  const iso = date.toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso.replace(".000Z", "Z");
}

function checkedDate(value: string, source: string, utc: number, [y, m, d]: number[]): Date {
  const date = new Date(utc);
  // Date.UTC rolls 2026-02-30 over into March; a calendar date must survive the round trip.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() + 1 !== m || date.getUTCDate() !== d) throw invalid(value, source);
  return date;
}

function offsetMinutes(offset: string): number {
  if (offset.toUpperCase() === "Z") return 0;
  const sign = offset.startsWith("-") ? -1 : 1;
  const digits = offset.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
}

function invalid(value: string, source: string): UsageError {
  return new UsageError(`${source} must be a date (YYYY-MM-DD) or an ISO timestamp such as 2026-11-23T02:00:00Z (got "${value}")`);
}
