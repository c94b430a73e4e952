import { arg } from "../core/runtime/args";
import { defineJob } from "../core/runtime/job";
import { datasetNames, loadDataset } from "../processors/datasets/index";
import { runProfile } from "../processors/file_processing/profile/run_profile";
import { resolveProfileTarget } from "../processors/file_processing/profile/target";

export const JOB = defineJob({
  name: "profile_dataset",
  description: "Profile a silver partition (or the files under a prefix) per column and evaluate the dataset's declared checks",
  lane: "file_processing",
  args: {
    bucket: arg.location("the lake holding silver/, or with --prefix the bucket or directory of the files"),
    dataset: arg.optionalText(`dataset whose partition, types, key and checks apply (${datasetNames().join(", ")}); optional with --prefix`, { placeholder: "<name>" }),
    date: arg.optionalDate("partition (default: the logical date's day)"),
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
  // Daily, after bronze_to_silver (01:30) has built the day's partition.
  schedule: { cron: "0 2 * * *", timeZone: "UTC", args: { dataset: "service_requests", bucket: "etl-lake" }, resources: { memory: "1Gi", tmp: "8Gi" } },
  // One Pushgateway group per dataset (or prefix): profiling one must not erase another's gauges.
  metricsGroup: (args) => ({ dataset: args.dataset ?? `prefix:${args.prefix}` }),
  async run(args, ctx) {
    const dataset = args.dataset === undefined ? undefined : await loadDataset(args.dataset);
    const store = await ctx.objectStore(args.bucket);
    const target = await resolveProfileTarget({ ...args, store, dataset, logicalDate: ctx.logicalDate });
    const { openDuckDB } = await import("../core/db/duckdb");
    return runProfile({
      ...ctx,
      ...args,
      ...target,
      store,
      dataset,
      openDuckDB: (tempDirectory) => openDuckDB({ tempDirectory, memoryLimit: args.memoryLimit, threads: args.threads, maxTempSize: args.maxSpill }),
    });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
