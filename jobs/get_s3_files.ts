import { arg } from "../core/runtime/args";
import { defineJob } from "../core/runtime/job";
import { locationUrl } from "../core/storage/object_store";
import { replayedAttachmentId } from "../processors/data_pipeline/get_s3_files/agency_copy";
import { runCopy } from "../processors/data_pipeline/get_s3_files/copy_run";

const ARGS = {
  agencyId: arg.optional(arg.integer("agency whose attachments are copied", { min: 1, placeholder: "<id>" })),
  allAgencies: arg.flag("copy every active agency (agency.is_active), each to agency_id=<id>/ with its own manifest"),
  sourceBucket: arg.location("bucket (name or s3://name) or directory (file:path) holding the attachments"),
  destinationBucket: arg.location("bucket or directory to copy them to"),
  destinationPrefix: arg.keyPrefix("key prefix at the destination, ending in / (default: agency_id=<id>/)"),
  concurrency: arg.integer("copies in flight at once", { min: 1, max: 256, default: 16 }),
  batchSize: arg.integer("attachments read from the database per page", { min: 1, max: 10_000, default: 500 }),
  shard: arg.shard("process only attachments with id % n = i (of every agency)"),
};

export const JOB = defineJob({
  name: "get_s3_files",
  description: "Copy an agency's attachments, or every active agency's, from the source bucket to the destination bucket, with a manifest per agency",
  lane: "data_pipeline",
  args: ARGS,
  example: "--agency-id 10 --source-bucket etl-attachments --destination-bucket file:archive",
  outputs: (args) => [`${locationUrl(args.destinationBucket)}/${args.destinationPrefix ?? (args.agencyId === undefined ? "" : `agency_id=${args.agencyId}/`)}`],
  // Nightly, every active agency, in the four pods of one Indexed Job sharing each agency's attachments.
  schedule: {
    cron: "0 2 * * *",
    timeZone: "UTC",
    args: { allAgencies: true, sourceBucket: "etl-attachments", destinationBucket: "etl-attachments-archive" },
    shards: 4,
  },
  run: (args, ctx) => runCopy(args, ctx),
  replay: (items, args, ctx) => runCopy(args, ctx, items.map(replayedAttachmentId)),
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
