import { arg } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import { SkippedRun, defineJob } from "../core/runtime/job";
import { holdsLiveLease } from "../core/ledger/lease";
import { unsafePrefixReason } from "../core/storage/object_key";
import { locationUrl, requireExists } from "../core/storage/object_store";
import { QUARANTINE_PREFIX, Quarantine } from "../processors/file_processing/quarantine/quarantine";
import { byteSizeArg } from "../processors/file_processing/unzip/limits";
import { STAGING_ROOT } from "../processors/file_processing/unzip/staging";
import { unzipInbox } from "../processors/file_processing/unzip/unzip_inbox";
import { DeadLetterRepository } from "../core/ledger/dead_letters";
import { ProcessedFileRepository } from "../repositories/processed_files";

export const JOB = defineJob({
  name: "unzip_files",
  description: "Extract the archives of an inbox prefix into a destination, safely, each archive all at once or not at all",
  lane: "file_processing",
  args: {
    bucket: arg.location("bucket or directory holding the inbox, the destination and quarantine/"),
    prefix: { ...arg.keyPrefix("the inbox: every key under it ending in .zip is an archive"), default: "inbox/" },
    destination: arg.text("key prefix the entries go to, ending in /; {date} stands for the day (e.g. bronze/service_requests/dt={date}/)", { placeholder: "<prefix>" }),
    date: arg.optionalDate("the day for {date} and the quarantine folder (default: the day the slot's data interval starts in, else the logical date's, else today, UTC)"),
    maxEntries: arg.integer("most entries an archive may hold, nested archives' included", { min: 1, max: 10_000_000, default: 100_000 }),
    maxTotalBytes: byteSizeArg("most bytes an archive may inflate to, nested archives' included", "20GB"),
    maxEntryBytes: byteSizeArg("most bytes one entry may inflate to", "10GB"),
    maxRatio: arg.number("highest inflated:compressed ratio of an entry over 100 KiB (Apache POI's limit)", { min: 1, default: 100 }),
    maxDepth: arg.integer("levels of nested .zip entries extracted, each into a folder named after it; a deeper one is quarantined", { min: 0, max: 10, default: 1 }),
    // Four entries in flight: each write to S3 holds up to three 8 MiB part buffers (core/storage/s3_upload.ts).
    concurrency: arg.integer("entries extracted at once", { min: 1, max: 64, default: 4 }),
    deleteProcessed: arg.flag("delete an archive from the inbox once extracted and recorded (default: keep it; the ledger remembers it)"),
  },
  // Five minutes after each of decrypt_files' quarter-hours, the partner's archives it decrypted go
  // to bronze. /tmp holds the largest S3 archive while it is read (plus a nested one).
  partitioned: true,
  schedule: {
    cron: "5-59/15 * * * *",
    timeZone: "UTC",
    args: { bucket: "etl-lake", prefix: "decrypted/partner_payments/", destination: "bronze/partner_payments/dt={date}/" },
    resources: { memory: "512Mi", tmp: "24Gi" },
  },
  example: "--bucket etl-lake --prefix inbox/ --destination bronze/service_requests/dt={date}/",
  // The day's folder when the day is known here, else the folder above the days' ({date} is today's then).
  outputs: ({ bucket, date, destination }, run) => {
    const day = date ?? run.partitionDate;
    const at = destination.indexOf("{date}");
    return [`${locationUrl(bucket)}/${day || at < 0 ? destination.replaceAll("{date}", day!) : destination.slice(0, destination.lastIndexOf("/", at) + 1)}`];
  },
  async run(args, ctx) {
    const day = args.date ?? ctx.partitionDate ?? new Date().toISOString().slice(0, 10);
    const prefix = args.prefix ?? "inbox/";
    const destination = args.destination.replaceAll("{date}", day);
    checkPrefixes(prefix, destination);
    const [sql, store] = await Promise.all([ctx.db(), ctx.objectStore(args.bucket)]);
    await requireExists(store, "--bucket");

    // One run per inbox (an archive is extracted once) and per destination (a key is written once).
    const leases = [];
    for (const name of ctx.dryRun ? [] : [`inbox:${prefix}`, `destination:${destination}`]) {
      const lease = await ctx.lease(`unzip_files:${locationUrl(args.bucket)}:${name}`);
      if ("heldBy" in lease) {
        await Promise.all(leases.map((l) => l.release()));
        return new SkippedRun(`run ${lease.heldBy.runId} on ${lease.heldBy.host} is extracting into ${name}`);
      }
      leases.push(lease);
    }
    try {
      const deadLetters = ctx.dryRun ? undefined : new DeadLetterRepository(sql, ctx.job, ctx.runId);
      return await unzipInbox({
        ...ctx,
        ...args,
        store,
        prefix,
        destination,
        limits: args,
        processed: new ProcessedFileRepository(sql, ctx.job, store.url),
        deadLetters,
        quarantine: new Quarantine({ store, job: ctx.job, runId: ctx.runId, date: day, deadLetters, log: ctx.log }),
        isLive: (runId) => holdsLiveLease(sql, runId),
        signal: AbortSignal.any([ctx.signal, ...leases.map((l) => l.signal)]),
      });
    } finally {
      await Promise.all(leases.map((l) => l.release()));
    }
  },
});

/** The inbox and the destination are apart, and apart from what the job itself writes. */
function checkPrefixes(prefix: string, destination: string): void {
  const reason = unsafePrefixReason(destination);
  if (reason || destination === "") throw new UsageError(`--destination "${destination}" ${reason ?? "must not be empty"}`);
  if (destination.includes("{") || destination.includes("}")) throw new UsageError(`--destination "${destination}": {date} is the only placeholder`);
  if (prefix === "") throw new UsageError("--prefix must not be empty (the whole bucket would be an inbox)");
  const overlap = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);
  for (const [flag, value] of [["--prefix", prefix], ["--destination", destination]] as const) {
    const reserved = [QUARANTINE_PREFIX, STAGING_ROOT].find((r) => overlap(value, r));
    if (reserved) throw new UsageError(`${flag} ${value} overlaps ${reserved}, where the job keeps quarantined or staged files`);
  }
  if (overlap(prefix, destination)) throw new UsageError(`--destination ${destination} and --prefix ${prefix} must not contain one another`);
}

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
