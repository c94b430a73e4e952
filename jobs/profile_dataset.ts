import { arg } from "../core/runtime/args";
import { defineJob, type Counts } from "../core/runtime/job";
import { addCounts } from "../core/runtime/counts";
import { lookbackDays } from "../core/runtime/partition_days";
import { datasetNames, loadDataset } from "../processors/datasets/index";
import { runProfile } from "../processors/file_processing/profile/run_profile";
import { partitionChangedSinceProfile, resolveProfileTarget } from "../processors/file_processing/profile/target";

export const JOB = defineJob({
  name: "profile_dataset",
  description: "Profile a silver partition (or the files under a prefix) per column and evaluate the dataset's declared checks",
  lane: "file_processing",
  args: {
    bucket: arg.location("the lake holding silver/, or with --prefix the bucket or directory of the files"),
    dataset: arg.optionalText(`dataset whose partition, types, key and checks apply (${datasetNames().join(", ")}); optional with --prefix`, { placeholder: "<name>" }),
    date: arg.optionalDate("partition (default: the day the slot's data interval covers, else the logical date's day)"),
    lookbackDays: arg.integer("also profile again the days before it whose partition was rebuilt since its profile (1: that day alone)", { min: 1, max: 31, default: 1 }),
    prefix: arg.keyPrefix("profile the Parquet, CSV or NDJSON files under this prefix instead of a partition"),
    outPrefix: arg.keyPrefix("with --prefix: where profile.json, profile.html and failures/ go (default: <prefix>_profile/)"),
    topValues: arg.integer("most frequent values kept per column", { min: 1, max: 100, default: 10 }),
    sampleRows: arg.integer("failing rows kept in profile.json per failing check (all go to its failures file)", { min: 0, max: 1000, default: 20 }),
    // A column under this is one hash table of at most about as many entries in the exact pass;
    // above it DuckDB's HyperLogLog estimate stands (1-4% off at 1M values here, 30% at 10k).
    exactDistinctUpTo: arg.integer("columns with up to about this many distinct values are counted exactly; above, estimated", { min: 0, max: 10_000_000, default: 100_000 }),
    memoryLimit: arg.text("DuckDB memory limit; larger hash tables spill to disk", { default: "256MB", placeholder: "<size>", pattern: /^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$/i, patternHelp: "must be a size such as 400MB or 2GB" }),
    threads: arg.integer("DuckDB threads", { min: 1, max: 64, default: 2 }),
    maxSpill: arg.text("most DuckDB spills to the work directory (keep it under the pod's /tmp)", { default: "7GB", placeholder: "<size>", pattern: /^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$/i, patternHelp: "must be a size such as 7GB" }),
  },
  partitioned: true,
  // Daily per dataset, after bronze_to_silver (01:30) built the day that closed and rebuilt the
  // days before it whose bronze changed: those are profiled again, the others are left as they are.
  schedules: {
    service_requests: { cron: "0 2 * * *", timeZone: "UTC", args: { dataset: "service_requests", bucket: "etl-lake", lookbackDays: 3 }, resources: { memory: "1Gi", tmp: "8Gi" } },
    partner_payments: { cron: "0 2 * * *", timeZone: "UTC", args: { dataset: "partner_payments", bucket: "etl-lake", lookbackDays: 3 }, resources: { memory: "1Gi", tmp: "8Gi" } },
  },
  // One Pushgateway group per dataset (or prefix): profiling one must not erase another's gauges.
  metricsGroup: (args) => ({ dataset: args.dataset ?? `prefix:${args.prefix}` }),
  example: "--dataset service_requests --bucket file:.etl/demo/lake --date 2026-11-03",
  async run(args, ctx) {
    const dataset = args.dataset === undefined ? undefined : await loadDataset(args.dataset);
    const store = await ctx.objectStore(args.bucket);
    const { openDuckDB } = await import("../core/db/duckdb");
    const profile = async (date: string | undefined, log = ctx.log) => {
      const target = await resolveProfileTarget({ ...args, date, store, dataset, logicalDate: ctx.logicalDate });
      return runProfile({
        ...ctx,
        ...args,
        ...target,
        log,
        counts: {},
        store,
        dataset,
        openDuckDB: (tempDirectory) => openDuckDB({ tempDirectory, memoryLimit: args.memoryLimit, threads: args.threads, maxTempSize: args.maxSpill }),
      });
    };
    const day = args.date ?? ctx.partitionDate;
    if (args.prefix !== undefined || !day) return Object.assign(ctx.counts, await profile(args.date));
    const total: Counts = { partitions: 0 };
    for (const date of lookbackDays(day, args.lookbackDays)) {
      if (ctx.signal.aborted) break;
      // A day named with --date is profiled (and must exist). Any other is profiled when its partition
      // was built since its profile; a slot's own day with none (no data that day) is a warning.
      if (!(date === day && args.date)) {
        const changed = await partitionChangedSinceProfile(store, dataset!, date, ctx.log);
        if (changed === "missing" && date === day) ctx.log.warn("no committed partition for the slot's day: nothing to profile", { partition: date });
        if (changed !== true) continue;
      }
      Object.assign(ctx.counts, addCounts(total, { ...(await profile(date, ctx.log.child({ partition: date }))), partitions: 1 }));
    }
    return total;
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
