import { arg, type ArgValues } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import type { JobContext } from "../core/runtime/context";
import { SkippedRun, defineJob, type Counts } from "../core/runtime/job";
import { locationUrl } from "../core/storage/object_store";
import { copyAgencyAttachments, replayedAttachmentId } from "../processors/data_pipeline/get_s3_files/agency_copy";
import { AgencyRepository } from "../repositories/agencies";

const ARGS = {
  agencyId: arg.integer("agency whose attachments are copied", { min: 1, placeholder: "<id>" }),
  sourceBucket: arg.location("bucket (name or s3://name) or directory (file:path) holding the attachments"),
  destinationBucket: arg.location("bucket or directory to copy them to"),
  destinationPrefix: arg.keyPrefix("key prefix at the destination, ending in / (default: agency_id=<id>/)"),
  // 16 parallel copies saturate one pod's network on server-side copies; the HTTP agent allows
  // 1024 sockets (core/storage/object_stores.ts), so 256 is the most that never queues on a socket.
  concurrency: arg.integer("copies in flight at once", { min: 1, max: 256, default: 16 }),
  batchSize: arg.integer("attachments read from the database per page", { min: 1, max: 10_000, default: 500 }),
  shard: arg.shard("process only attachments with id % n = i"),
};

export const JOB = defineJob({
  name: "get_s3_files",
  description: "Copy an agency's attachments from the source bucket to the destination bucket, with a manifest",
  lane: "data_pipeline",
  args: ARGS,
  // Nightly, after the day's uploads; four pods of an Indexed Job split the agency by id.
  schedule: {
    cron: "0 2 * * *",
    timeZone: "UTC",
    args: { agencyId: 10, sourceBucket: "etl-attachments", destinationBucket: "etl-attachments-archive" },
    shards: 4,
  },
  run: (args, ctx) => copyAgency(args, ctx),
  // etl dlq replay: just the failed attachments, with the arguments of the run that failed them.
  replay: (items, args, ctx) => copyAgency(args, ctx, items.map(replayedAttachmentId)),
});

async function copyAgency(args: ArgValues<typeof ARGS>, ctx: JobContext, replayIds?: string[]): Promise<Counts | SkippedRun> {
  const sql = await ctx.db();
  // The agency, the S3 client (100 ms to load) and both bucket checks, all at once.
  const [agency, [source, destination]] = await Promise.all([
    new AgencyRepository(sql).findAgency(args.agencyId),
    Promise.all([ctx.objectStore(args.sourceBucket), ctx.objectStore(args.destinationBucket)]),
  ]);
  if (!agency) throw new UsageError(`--agency-id ${args.agencyId}: no such agency`);
  // Not requireExists: both at once, and the source named first. S3 retries each (core/storage/s3_retry.ts).
  const [sourceExists, destinationExists] = await Promise.all([source.exists(), args.destinationBucket.kind === "s3" ? destination.exists() : true]);
  if (!sourceExists) throw new UsageError(`--source-bucket ${source.url} does not exist`);
  if (!destinationExists) throw new UsageError(`--destination-bucket ${destination.url} does not exist`);

  const prefix = args.destinationPrefix ?? `agency_id=${args.agencyId}/`;
  const shard = args.shard ? `${args.shard.index}-of-${args.shard.count}` : undefined;
  // A dry run writes nothing, so it needs no exclusivity.
  const lease = ctx.dryRun ? undefined : await ctx.lease(`get_s3_files:${args.agencyId}:${locationUrl(args.destinationBucket)}/${prefix}:${shard ?? "all"}`);
  if (lease && "heldBy" in lease) return new SkippedRun(`run ${lease.heldBy.runId} on ${lease.heldBy.host} is copying this agency to this destination`);
  try {
    return await copyAgencyAttachments({
      ...ctx,
      ...args,
      sql,
      source,
      destination,
      prefix,
      manifestKey: `${prefix}_manifest${shard ? `.${shard}` : ""}.csv`,
      replayIds,
      // Losing the lease stops new copies as SIGTERM does, and the run exits 75.
      signal: lease ? AbortSignal.any([ctx.signal, lease.signal]) : ctx.signal,
    });
  } finally {
    await lease?.release();
  }
}

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
