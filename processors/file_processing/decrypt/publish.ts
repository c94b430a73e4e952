import { abortAbandonedUploads } from "../../../core/storage/abandoned_uploads";
import type { Logger } from "../../../core/log";
import { partialsOf } from "../../../core/storage/file_store";
import { SOURCE_ETAG_METADATA, type ObjectStore } from "../../../core/storage/object_store";
import { retry } from "../../../core/http/retry";
import type { PlaintextSpool } from "./spool";

/** What decrypt_files takes as a message: a name, then .pgp, .gpg or .asc (any case). */
export const MESSAGE_SUFFIX = /[^/]\.(pgp|gpg|asc)$/i;

/** Metadata naming the signer whose pinned signature verified, on the published plaintext. */
export const SIGNER_METADATA = "etl-pgp-signer";

/**
 * Where a message's plaintext goes: its key relative to `prefix`, without the suffix, under
 * `destination` (inbox/acme/a.zip.pgp -> decrypted/acme/a.zip). The name inside the message's
 * literal data packet is the sender's and is never used.
 */
export function plaintextKey(key: string, prefix: string, destination: string): string {
  return destination + key.slice(prefix.length).replace(/\.(pgp|gpg|asc)$/i, "");
}

/**
 * Writes the checked plaintext to its key in one write: the store makes it appear only once
 * whole (S3: one PutObject or a completed multipart upload; file: a rename), so a reader never
 * sees part of it. A failed upload is retried from the spool.
 *
 * A run killed while writing left up to the whole plaintext behind, which the run that publishes
 * the key next removes. On a local lake it is a temp file beside the key
 * (`<key>.etl-partial-<run>.*`, core/storage/file_store.ts), removed unless its run holds a live lease
 * (`isLive`). On S3 it is an incomplete multipart upload of the key (a plaintext over 8 MiB),
 * which names no run: every upload of the key is aborted but those of this process's writes.
 * No other live run uploads it: this run holds the prefix's lease, and a key is the plaintext
 * of one message of the prefix. Only the key is looked at (one more listing per plaintext on
 * S3), not the destination: other jobs' writers, some without a lease, may share it.
 */
export async function publishPlaintext(
  store: ObjectStore,
  key: string,
  spool: PlaintextSpool,
  source: { etag: string; signer?: string },
  o: { signal: AbortSignal; isLive: (runId: string) => Promise<boolean>; log: Logger },
): Promise<void> {
  await spool.finish();
  const metadata: Record<string, string> = { [SOURCE_ETAG_METADATA]: source.etag, ...(source.signer ? { [SIGNER_METADATA]: source.signer } : {}) };
  await retry(() => store.write(key, spool.reader(), { size: spool.bytes, metadata }), { signal: o.signal });
  // partialsOf(key), not key: publishing decrypted/a.csv must not touch decrypted/a.csv.gz's writes.
  const removed = (await store.removeAbandonedPartials?.(partialsOf(key), o.isLive)) ?? 0;
  const aborted = await abortAbandonedUploads(store, key, async (upload) => upload.key === key, o.log);
  if (removed || aborted) o.log.info("removed what killed runs left of the plaintext", { key, removed, abortedUploads: aborted });
}
