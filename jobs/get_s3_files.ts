import { tryAdvisoryLock } from "../core/advisory_lock";
import { arg } from "../core/args";
import { UsageError } from "../core/errors";
import { SkippedRun, defineJob } from "../core/job";
import { locationUrl } from "../core/object_store";
import { AttachmentCopier } from "../processors/attachment_copier";
import { syncAttachments } from "../processors/attachment_sync";
import { AgencyRepository } from "../repositories/agencies";
import { AttachmentRepository } from "../repositories/attachments";
import { DeadLetterRepository } from "../repositories/dead_letters";

export const JOB = defineJob({
  name: "get_s3_files",
  description: "Copy an agency's attachments from the source bucket to the destination bucket, with a manifest",
  lane: "data_pipeline",
  args: {
    agencyId: arg.integer("agency whose attachments are copied", { min: 1, placeholder: "<id>" }),
    sourceBucket: arg.location("bucket (name or s3://name) or directory (file:path) holding the attachments"),
    destinationBucket: arg.location("bucket or directory to copy them to"),
    destinationPrefix: arg.optionalText("key prefix at the destination (default: agency_id=<id>/)", { placeholder: "<prefix>" }),
    // 16 parallel copies saturate one pod's network on server-side copies; the HTTP agent allows
    // 1024 sockets (core/object_stores.ts), so 256 is the most that never queues on a socket.
    concurrency: arg.integer("copies in flight at once", { min: 1, max: 256, default: 16 }),
    batchSize: arg.integer("attachments read from the database per page", { min: 1, max: 10_000, default: 500 }),
    shard: arg.shard("process only attachments with id % n = i"),
  },
  // Nightly, after the day's uploads; four pods of an Indexed Job split the agency by id.
  schedule: {
    cron: "0 2 * * *",
    timeZone: "UTC",
    args: { agencyId: 10, sourceBucket: "etl-attachments", destinationBucket: "etl-attachments-archive" },
    shards: 4,
  },
  async run(args, ctx) {
    const sql = await ctx.db();
    if (!(await new AgencyRepository(sql).findAgency(args.agencyId))) throw new UsageError(`--agency-id ${args.agencyId}: no such agency`);
    const [source, destination] = await Promise.all([ctx.objectStore(args.sourceBucket), ctx.objectStore(args.destinationBucket)]);
    if (!(await source.exists())) throw new UsageError(`--source-bucket ${source.url} does not exist`);
    if (args.destinationBucket.kind === "s3" && !(await destination.exists())) throw new UsageError(`--destination-bucket ${destination.url} does not exist`);

    const prefix = args.destinationPrefix ?? `agency_id=${args.agencyId}/`;
    const shard = args.shard ? `${args.shard.index}-of-${args.shard.count}` : undefined;
    const release = await tryAdvisoryLock(sql, `get_s3_files:${args.agencyId}:${locationUrl(args.destinationBucket)}/${prefix}:${shard ?? "all"}`);
    if (!release) return new SkippedRun("another run is copying this agency to this destination");
    try {
      return await syncAttachments({
        pages: new AttachmentRepository(sql).listAttachmentsForAgency(args.agencyId, { batchSize: args.batchSize, shard: args.shard }),
        copier: new AttachmentCopier({ source, destination, prefix, dryRun: ctx.dryRun, log: ctx.log, metrics: ctx.metrics, signal: ctx.signal }),
        concurrency: args.concurrency,
        signal: ctx.signal,
        log: ctx.log,
        manifest: ctx.dryRun ? undefined : { store: destination, key: `${prefix}_manifest${shard ? `.${shard}` : ""}.csv` },
        deadLetters: ctx.dryRun ? undefined : new DeadLetterRepository(sql, ctx.job, ctx.runId),
      });
    } finally {
      await release();
    }
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
