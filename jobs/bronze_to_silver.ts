import { arg } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import { SkippedRun, defineJob, type Counts } from "../core/runtime/job";
import { addCounts } from "../core/runtime/counts";
import { lookbackDays } from "../core/runtime/partition_days";
import { holdsLiveLease } from "../core/ledger/lease";
import { locationUrl } from "../core/storage/object_store";
import { datasetNames, loadDataset } from "../processors/datasets/index";
import { buildSilverPartition } from "../processors/data_pipeline/silver/build_partition";
import { AgencyRepository } from "../repositories/agencies";
import { PartitionRepository } from "../repositories/partitions";

export const JOB = defineJob({
  name: "bronze_to_silver",
  description: "Validate, deduplicate and enrich one dataset's bronze partition into silver Parquet",
  lane: "data_pipeline",
  args: {
    dataset: arg.text(`dataset (${datasetNames().join(", ")})`, { placeholder: "<name>" }),
    bucket: arg.location("the lake: bucket or directory holding bronze/ and silver/"),
    date: arg.optionalDate("partition (default: the day the slot's data interval covers, else the logical date's day)"),
    lookbackDays: arg.integer("also rebuild the days before it whose bronze changed (1: that day alone)", { min: 1, max: 31, default: 1 }),
    maxRejectRatio: arg.number("share of rejected rows above which the run is partial (exit 3)", { min: 0, max: 1, default: 0.01 }),
    // The process peaks about 300 MiB above this (Bun, DuckDB's code, writers' buffers): at 256MB a
    // 10M-row partition peaked at 552 MiB, at 400MB at 665 MiB (scripts/bench/silver.ts).
    memoryLimit: arg.text("DuckDB memory limit; larger partitions spill to disk", { default: "256MB", placeholder: "<size>", pattern: /^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$/i, patternHelp: "must be a size such as 400MB or 2GB" }),
    threads: arg.integer("DuckDB threads", { min: 1, max: 64, default: 2 }),
    maxSpill: arg.text("most DuckDB spills to the work directory (keep it under the pod's /tmp)", { default: "7GB", placeholder: "<size>", pattern: /^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$/i, patternHelp: "must be a size such as 7GB" }),
    rebuild: arg.flag("rebuild even when the inputs are unchanged"),
  },
  partitioned: true,
  // Daily, after the 00:15 ingest_api pull closed the day (its interval ends at 00:15), per dataset;
  // three days back, so bronze that changed late is rebuilt and a missed slot's day made up.
  // DuckDB's 256MB plus what it and Bun hold outside it; a partition bigger than memory spills to /tmp.
  schedules: {
    service_requests: { cron: "30 1 * * *", timeZone: "UTC", args: { dataset: "service_requests", bucket: "etl-lake", lookbackDays: 3 }, resources: { memory: "1Gi", tmp: "8Gi" } },
    partner_payments: { cron: "30 1 * * *", timeZone: "UTC", args: { dataset: "partner_payments", bucket: "etl-lake", lookbackDays: 3 }, resources: { memory: "1Gi", tmp: "8Gi" } },
  },
  metricsGroup: (args) => ({ dataset: args.dataset }),
  example: "--dataset service_requests --bucket file:.etl/demo/lake --date 2026-11-03",
  outputs: (args) => [`${locationUrl(args.bucket)}/silver/${args.dataset}/`],
  async run(args, ctx) {
    const dataset = await loadDataset(args.dataset);
    const day = args.date ?? ctx.partitionDate;
    if (!day) throw new UsageError("give the partition with --date YYYY-MM-DD or --logical-date");
    const [sql, store, { openDuckDB }] = await Promise.all([ctx.db(), ctx.objectStore(args.bucket), import("../core/db/duckdb")]);
    const total: Counts = { partitions: 0 };
    for (const partitionDate of lookbackDays(day, args.lookbackDays)) {
      if (ctx.signal.aborted) break;
      const lease = ctx.dryRun ? undefined : await ctx.lease(`bronze_to_silver:${locationUrl(args.bucket)}:${dataset.name}:${partitionDate}`);
      if (lease && "heldBy" in lease) {
        if (partitionDate === day) return new SkippedRun(`run ${lease.heldBy.runId} on ${lease.heldBy.host} is building this partition`);
        continue;
      }
      const log = ctx.log.child({ partition: partitionDate });
      try {
        const counts = await buildSilverPartition({
          ...ctx,
          ...args,
          log,
          counts: {},
          dataset,
          store,
          partitionDate,
          partitions: new PartitionRepository(sql),
          agencies: new AgencyRepository(sql),
          isLive: (runId) => holdsLiveLease(sql, runId),
          leaseLost: lease?.signal,
          openDuckDB: (tempDirectory) => openDuckDB({ tempDirectory, memoryLimit: args.memoryLimit, threads: args.threads, maxTempSize: args.maxSpill }),
        });
        Object.assign(ctx.counts, addCounts(total, { ...counts, partitions: 1 }));
      } finally {
        await lease?.release();
      }
    }
    return total;
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
