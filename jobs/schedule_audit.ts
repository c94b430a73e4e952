import { arg } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import { defineJob } from "../core/runtime/job";
import { scheduledJobs } from "../core/runtime/registry";
import { scheduleId } from "../core/runtime/schedules";
import { durationMs } from "../core/duration";
import { auditSchedules } from "../processors/observability/schedule/audit";
import { SlotRunRepository } from "../repositories/slot_runs";

const DURATION = { pattern: /^\s*\d+[mhd]\s*$/, patternHelp: "must be a duration such as 90m, 24h or 7d", placeholder: "<90m|24h|7d>" };
// The most one run checks: a year of a five-minute schedule is 105,000 slots, computed in 0.6 s here.
const MAX_SINCE_MS = 366 * 86_400_000;
// Daily, over the last 25 hours or back to where the last audit that succeeded stopped, whichever
// is longer: no slot falls between two audits, and a day's problems page by morning.
const SCHEDULE = { cron: "0 6 * * *", timeZone: "UTC", args: { since: "25h" }, maxDurationSeconds: 1800 };

export const JOB = defineJob({
  name: "schedule_audit",
  description: "Every schedule's slots (cron in its time zone, DST as Kubernetes runs it) against the run ledger, since the last audit that succeeded: on time, late, healed, missed, doubled, lost, failed",
  lane: "observability",
  args: {
    since: arg.text("audit the slots from this long ago, or from where the last audit that succeeded stopped if that is earlier", { default: "7d", ...DURATION }),
    job: arg.optionalText("audit only this job's schedules, or one schedule as <job>.<schedule> (default: every schedule)", { placeholder: "<job>", pattern: /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$/, patternHelp: "must be a job name or <job>.<schedule>" }),
    grace: arg.text("a run that started later than this after its slot is late; slots younger than this are not judged yet", { default: "10m", ...DURATION }),
  },
  schedule: SCHEDULE,
  example: "--since 25h --job get_s3_files",
  async run(args, ctx) {
    const sinceMs = durationMs(args.since)!;
    const graceMs = durationMs(args.grace)!;
    if (sinceMs > MAX_SINCE_MS) throw new UsageError(`--since ${args.since.trim()}: at most 366d`);
    if (sinceMs <= graceMs) throw new UsageError(`--since ${args.since.trim()} must be longer than --grace ${args.grace.trim()}: the window is [now - since, now - grace]`);
    const jobs = (await scheduledJobs(ctx.registry, { name: "schedule_audit", schedule: SCHEDULE })).map(({ name, schedule, ...rest }) => ({ name, id: scheduleId(name, schedule), schedule: { name: schedule, ...rest } }));
    const selected = args.job === undefined ? jobs : jobs.filter((j) => j.name === args.job || j.id === args.job);
    if (args.job !== undefined && !selected.length) {
      throw new UsageError(`--job ${args.job}: no such scheduled job or schedule; schedules: ${jobs.map((j) => j.id).join(", ")}`);
    }
    const runs = new SlotRunRepository(await ctx.db());
    // A filtered audit covers its --since alone: only a full one moves where the next one starts.
    const upTo = args.job === undefined ? await runs.lastAuditedUpTo(ctx.job, (recorded) => durationMs(String(recorded.grace ?? "10m")) ?? graceMs) : undefined;
    const now = Date.now();
    const windowMs = Math.min(MAX_SINCE_MS, Math.max(sinceMs, upTo ? now - upTo.getTime() : 0));
    if (windowMs > sinceMs) ctx.log.info("auditing back to where the last audit that succeeded stopped", { from: upTo!.toISOString() });
    return auditSchedules({ ...ctx, jobs: selected, runs, sinceMs: windowMs, graceMs, now: new Date(now) });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
