import { arg } from "../core/args";
import { ConfigError, UsageError } from "../core/errors";
import { defineJob } from "../core/job";
import { discoverJobs, loadJobs } from "../core/registry";
import { auditSchedules, durationMs, type AuditedJob } from "../processors/observability/schedule_audit";
import { SlotRunRepository } from "../repositories/slot_runs";

const DURATION = { pattern: /^\s*\d+[mhd]\s*$/, patternHelp: "must be a duration such as 90m, 24h or 7d", placeholder: "<90m|24h|7d>" };
// The most one run checks: a year of a five-minute schedule is 105,000 slots, computed in 0.6 s here.
const MAX_SINCE_MS = 366 * 86_400_000;

export const JOB = defineJob({
  name: "schedule_audit",
  description: "Every scheduled job's slots (cron in its time zone, DST as Kubernetes runs it) against the run ledger: on time, late, missed, doubled, lost, failed",
  lane: "observability",
  args: {
    since: arg.text("audit the slots from this long ago", { default: "7d", ...DURATION }),
    job: arg.optionalText("audit only this job (default: every scheduled job)", { placeholder: "<job>", pattern: /^[a-z][a-z0-9_]*$/, patternHelp: "must be a job name" }),
    grace: arg.text("a run that started later than this after its slot is late; slots younger than this are not judged yet", { default: "10m", ...DURATION }),
  },
  async run(args, ctx) {
    const sinceMs = durationMs(args.since)!;
    const graceMs = durationMs(args.grace)!;
    if (sinceMs > MAX_SINCE_MS) throw new UsageError(`--since ${args.since.trim()}: at most 366d`);
    if (sinceMs <= graceMs) throw new UsageError(`--since ${args.since.trim()} must be longer than --grace ${args.grace.trim()}: the window is [now - since, now - grace]`);
    const jobs = await registryJobs();
    const selected = args.job === undefined ? jobs : jobs.filter((j) => j.name === args.job);
    if (args.job !== undefined && !selected[0]?.schedule) {
      throw new UsageError(`--job ${args.job}: no such scheduled job; scheduled jobs: ${jobs.filter((j) => j.schedule).map((j) => j.name).join(", ")}`);
    }
    return auditSchedules({ ...ctx, jobs: selected, runs: new SlotRunRepository(await ctx.db()), sinceMs, graceMs });
  },
});

/**
 * The jobs/ glob: a run from source audits every job of the tree. This file is left out of the
 * imports and added as JOB: run as `bun jobs/schedule_audit.ts`, it is still evaluating (its main
 * guard awaits the run), and importing it would wait for itself forever. A compiled binary has no
 * jobs/ to glob, and a lane binary knows only its lane's jobs, so there it stops clearly; it gets a
 * schedule (and a CronJob) once the binaries carry every job's schedule.
 */
async function registryJobs(): Promise<AuditedJob[]> {
  try {
    return [...(await loadJobs(discoverJobs().filter((entry) => entry.name !== JOB.name))), JOB];
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
    throw new ConfigError("schedule_audit reads the job list from the jobs/ folder, which this binary does not have: run it from source (bun jobs/schedule_audit.ts)");
  }
}

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
