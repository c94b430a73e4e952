import { arg } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import { defineJob } from "../core/runtime/job";
import { argsHash, recordedArgs } from "../core/ledger/ledger";
import { parseJobArgv } from "../core/runtime/parse_args";
import { secretsFromEnv } from "../core/redact";
import { registryJobs } from "../core/runtime/registry";
import { daysBetween, planBackfill, runBackfill, spawnSlotRun, type Reprocess } from "../processors/data_pipeline/backfill";
import { JobRunRepository } from "../core/ledger/job_runs";

export const JOB = defineJob({
  name: "backfill",
  description: "Run a partitioned job over a range of logical dates, resumably, in parallel or as a Kubernetes Indexed Job",
  lane: "data_pipeline",
  args: {
    job: arg.text("the job to run once per day", { placeholder: "<job>" }),
    from: arg.date("first logical date"),
    to: arg.date("last logical date, included"),
    reprocess: arg.text("missing: days without a success; failed: days whose runs failed; all: every day, forced", { default: "missing", pattern: /^(missing|failed|all)$/, patternHelp: "must be missing, failed or all", placeholder: "<which>" }),
    parallel: arg.integer("days run at once", { min: 1, max: 64, default: 2 }),
    emitK8s: arg.optionalText("write an Indexed Job manifest that splits the days over pods to this file, instead of running", { placeholder: "<file>" }),
    pods: arg.integer("pods of the emitted Indexed Job", { min: 1, max: 1000, default: 4 }),
    shard: arg.shard("run only the days whose index in the range is i modulo n (the emitted Job's pods)"),
    jobArgs: arg.rest("the job's own arguments, as for `etl run <job>`, without --logical-date"),
  },
  example: "--job bronze_to_silver --from 2026-11-01 --to 2026-11-07 -- --dataset service_requests --bucket etl-lake",
  async run(args, ctx) {
    // The dispatcher's jobs (in a binary, the ones it carries); run as `bun jobs/backfill.ts`, the glob's.
    const jobs = registryJobs(ctx.registry);
    const target = jobs.find((j) => j.name === args.job);
    if (!target || args.job === "backfill") throw new UsageError(`--job ${args.job}: no such job to backfill; known jobs: ${jobs.map((j) => j.name).filter((n) => n !== "backfill").join(", ")}`);
    if (args.from > args.to || daysBetween(args.from, args.to).length > 3660) throw new UsageError(`--from ${args.from} --to ${args.to}: the range must run forward and span at most ten years`);
    if (args.jobArgs.some((a) => a === "--logical-date" || a.startsWith("--logical-date=") || a === "--force")) throw new UsageError("the job's arguments must not set --logical-date or --force: backfill gives each run its day (--reprocess all forces)");
    const job = await target.load();
    const parsed = parseJobArgv(job, args.jobArgs, {});
    if (!("args" in parsed) || parsed.help !== undefined) throw new UsageError(`the arguments after -- are ${args.job}'s; see etl ${args.job} --help`);
    if (args.emitK8s) return { pods: await (await import("../scripts/deploy/manifests")).backfillJobManifest(args, args.emitK8s, job) };

    const days = daysBetween(args.from, args.to);
    // The hash the runner gives each child's slot: its plan reads the ledger by it.
    const hash = argsHash(recordedArgs(parsed.args, secretsFromEnv(ctx.env)));
    const slots = await planBackfill({ runs: new JobRunRepository(await ctx.db()), job: job.name, argsHash: hash, days, reprocess: args.reprocess as Reprocess, shard: args.shard });
    ctx.log.info("backfill plan", { job: job.name, days: days.length, planned: slots.length, slots: slots.map((s) => `${s.date} ${s.state}`) });
    if (ctx.dryRun) return { planned: slots.length, days: days.length };
    ctx.progress.setTotal(slots.length);
    return runBackfill({
      ...ctx,
      slots,
      parallel: args.parallel,
      run: (date) => spawnSlotRun({ job: job.name, jobArgs: args.jobArgs, date, force: args.reprocess === "all", signal: ctx.signal }).finally(() => ctx.progress.advance()),
    });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
