import { arg } from "../core/runtime/args";
import { UsageError } from "../core/errors";
import { SkippedRun, defineJob } from "../core/runtime/job";
import { holdsLiveLease } from "../core/ledger/lease";
import { locationUrl, requireExists } from "../core/storage/object_store";
import { decryptInbox } from "../processors/file_processing/decrypt/inbox";
import { loadKeyring } from "../processors/file_processing/decrypt/keys";
import { Quarantine } from "../processors/file_processing/quarantine/quarantine";
import { DeadLetterRepository } from "../core/ledger/dead_letters";
import { ProcessedFileRepository } from "../repositories/processed_files";

const FINGERPRINT = "([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})";

export const JOB = defineJob({
  name: "decrypt_files",
  description: "Decrypt the OpenPGP messages under a prefix, integrity-checked and optionally signed by pinned keys; quarantine the rest",
  lane: "file_processing",
  args: {
    bucket: arg.location("bucket or directory holding the messages; plaintext and quarantine go to the same one"),
    prefix: arg.keyPrefix("where the messages are: keys ending in .pgp, .gpg or .asc under it (default: inbox/)"),
    destination: arg.keyPrefix("where the plaintext goes, under the message's key relative to --prefix without the suffix (default: decrypted/)"),
    requireSignature: arg.flag("refuse a message without a valid signature by a key pinned with --signer-fingerprint"),
    signerFingerprint: arg.optionalText("pinned signers' primary-key fingerprints, comma-separated (keys from ETL_PGP_SIGNER_KEYS)", {
      placeholder: "<fpr,...>",
      pattern: new RegExp(`^${FINGERPRINT}(,${FINGERPRINT})*$`),
      patternHelp: "must be fingerprints of 40 (v4) or 64 (v6) hex digits, comma-separated, without spaces",
    }),
    deleteSource: arg.flag("remove each message once its plaintext is published (kept by default: a rerun skips it by its ETag)"),
    // The spool holding a plaintext until it is checked is on the pod's /tmp: this bounds it, and
    // a compression bomb is refused instead of filling the disk.
    maxOutputMib: arg.integer("largest plaintext accepted, in MiB; a larger one is quarantined", { min: 1, default: 4096 }),
    // openpgp 6.3 can hang on a corrupt compressed packet instead of failing (processors/file_processing/decrypt/decrypt_stream.ts).
    stallSeconds: arg.integer("quarantine a message on which openpgp makes no progress for this long", { min: 1, max: 3600, default: 30 }),
    // Decryption runs on the one JavaScript thread (AES and SHA-1 in native code, called from it):
    // a second file in flight overlaps S3 transfers with it, more only queue.
    concurrency: arg.integer("messages decrypted at once", { min: 1, max: 16, default: 2 }),
  },
  // Partners drop files through the day; a quarter-hour's are decrypted in the next run. The
  // plaintext waits on /tmp until it is checked: /tmp holds the largest one (--max-output-mib).
  schedule: { cron: "*/15 * * * *", timeZone: "UTC", args: { bucket: "etl-lake", prefix: "inbox/", destination: "decrypted/" }, resources: { tmp: "5Gi" } },
  example: "--bucket etl-lake --prefix inbox/ --destination decrypted/",
  outputs: (args) => [`${locationUrl(args.bucket)}/${args.destination ?? "decrypted/"}`],
  async run(args, ctx) {
    const prefix = args.prefix ?? "inbox/";
    const destination = args.destination ?? "decrypted/";
    if (destination.startsWith(prefix) || prefix.startsWith(destination)) {
      throw new UsageError(`--destination ${destination || '""'} and --prefix ${prefix || '""'} overlap: the plaintext would be taken for messages`);
    }
    if (args.requireSignature !== (args.signerFingerprint !== undefined)) {
      throw new UsageError("--require-signature and --signer-fingerprint go together: a signature is only worth requiring from pinned keys");
    }
    const keyring = await loadKeyring(ctx.env, args.signerFingerprint?.split(","));
    const [sql, store] = await Promise.all([ctx.db(), ctx.objectStore(args.bucket)]);
    await requireExists(store, "--bucket");
    const lease = ctx.dryRun ? undefined : await ctx.lease(`decrypt_files:${locationUrl(args.bucket)}/${prefix}`);
    if (lease && "heldBy" in lease) return new SkippedRun(`run ${lease.heldBy.runId} on ${lease.heldBy.host} is decrypting this prefix`);
    try {
      const deadLetters = new DeadLetterRepository(sql, ctx.job, ctx.runId);
      const date = ctx.partitionDate ?? new Date().toISOString().slice(0, 10);
      return await decryptInbox({
        ...ctx,
        ...args,
        store,
        prefix,
        destination,
        keyring,
        maxOutputBytes: args.maxOutputMib * 1024 * 1024,
        stallMs: args.stallSeconds * 1000,
        processedFiles: new ProcessedFileRepository(sql, ctx.job, store.url),
        deadLetters,
        quarantine: new Quarantine({ store, job: ctx.job, runId: ctx.runId, date, deadLetters, log: ctx.log }),
        isLive: (runId) => holdsLiveLease(sql, runId),
        signal: lease ? AbortSignal.any([ctx.signal, lease.signal]) : ctx.signal,
      });
    } finally {
      await lease?.release();
    }
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
