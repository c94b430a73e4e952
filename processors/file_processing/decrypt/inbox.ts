import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { isDatabaseError } from "../../../core/db/database_error";
import { EtlError, errorMessage } from "../../../core/errors";
import { mapBounded } from "../../../core/executor";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import { readUnlessMissing } from "../../../core/db/missing_table";
import { unsafeKeyReason } from "../../../core/storage/object_key";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { Progress } from "../../../core/runtime/progress";
import { retry } from "../../../core/http/retry";
import { isTransientError } from "../../../core/http/transient";
import type { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import type { ProcessedFileRepository } from "../../../repositories/processed_files";
import { QUARANTINE_PREFIX, type Quarantine } from "../quarantine/quarantine";
import { decryptMessage, type DecryptedMessage } from "./decrypt_stream";
import type { Keyring } from "./keys";
import { MESSAGE_SUFFIX, plaintextKey, publishPlaintext } from "./publish";
import { DecryptRefusal } from "./refusals";
import { PlaintextSpool } from "./spool";

export interface DecryptInboxOptions {
  store: ObjectStore;
  prefix: string;
  destination: string;
  keyring: Keyring;
  maxOutputBytes: number;
  stallMs: number;
  concurrency: number;
  deleteSource: boolean;
  dryRun: boolean;
  processedFiles: ProcessedFileRepository;
  deadLetters: DeadLetterRepository;
  quarantine: Quarantine;
  runId: string;
  /** Whether a run holds a live lease: the temp files of one that does not are removed (publish.ts). */
  isLive: (runId: string) => Promise<boolean>;
  log: Logger;
  progress: Progress;
  /** The run's counts, filled as it goes. */
  counts: Counts;
  signal: AbortSignal;
}

interface Input {
  key: string;
  size: number;
  etag: string;
}

// Three attempts: a lost connection is replaced at once; a database that stays away ends the run.
const BOOKKEEPING_RETRY = (signal: AbortSignal) => ({ attempts: 3, signal });

// A file store's ETag is the MD5 of the file: four files are hashed at once, not the whole inbox.
const HEADS_IN_FLIGHT = 4;

/**
 * Decrypts every message under `prefix` that this job has not processed at its current ETag:
 * each to its plaintext key under `destination`, published only once its integrity check (and
 * pinned signature) passed. A message that breaks a rule is quarantined; one that fails for
 * another reason (S3, disk) is counted failed with a dead letter, and the next run tries again.
 */
export async function decryptInbox(o: DecryptInboxOptions): Promise<Counts> {
  const counts = Object.assign(o.counts, { inputs: 0, decrypted: 0, bytes: 0, skipped: 0, quarantined: 0, failed: 0 });
  const inputs = await listInputs(o.store, o.prefix);
  const processed = await readUnlessMissing(o.dryRun, () => o.processedFiles.processed(inputs), new Set<string>());
  const pending = inputs.filter((input) => !processed.has(input.key));
  Object.assign(counts, { inputs: inputs.length, skipped: inputs.length - pending.length });
  if (o.dryRun) {
    o.log.info("dry run: would decrypt", { keys: pending.map((input) => input.key) });
    return Object.assign(counts, { pending: pending.length });
  }
  o.progress.setTotal(pending.length);
  await mapBounded(pending, o.concurrency, (input) => decryptInput(input, o), o.signal);
  return counts;
}

async function listInputs(store: ObjectStore, prefix: string): Promise<Input[]> {
  const listed = [];
  for await (const object of store.list(prefix)) {
    if (MESSAGE_SUFFIX.test(object.key) && !object.key.startsWith(QUARANTINE_PREFIX)) listed.push(object);
  }
  const inputs = await mapBounded(listed, HEADS_IN_FLIGHT, async (object) => {
    const etag = object.etag ?? (await store.head(object.key))?.etag;
    return etag === undefined ? undefined : { key: object.key, size: object.size, etag };
  });
  return inputs.filter((input) => input !== undefined);
}

async function decryptInput(input: Input, o: DecryptInboxOptions): Promise<void> {
  const target = plaintextKey(input.key, o.prefix, o.destination);
  const started = performance.now();
  let spool: PlaintextSpool | undefined;
  try {
    const unsafe = unsafeKeyReason(target);
    if (unsafe) throw new Error(`the plaintext's key ${JSON.stringify(target)} ${unsafe}`);
    // A refusal is the message's own fault: only a transient S3 error is worth another attempt.
    const decrypted = await retry(() => decryptToSpool(input, o), { signal: o.signal, isRetryable: (error) => !(error instanceof DecryptRefusal) && isTransientError(error) });
    spool = decrypted.spool;
    const { bytes, signer, etag } = decrypted;
    const decryptMs = Math.round(performance.now() - started);
    await publishPlaintext(o.store, target, spool, { etag, signer }, o);
    // A connection lost here is retried on a new one (postgres.js reconnects): the plaintext is out.
    await retry(() => o.processedFiles.markProcessed({ key: input.key, etag, runId: o.runId, output: { key: target, bytes, signer: signer ?? null } }), BOOKKEEPING_RETRY(o.signal));
    await retry(() => o.deadLetters.resolveDeadLetters([input.key]), BOOKKEEPING_RETRY(o.signal));
    if (o.deleteSource) await o.store.delete(input.key);
    o.counts.decrypted!++;
    o.counts.bytes! += bytes;
    o.log.info("decrypted", { key: input.key, destination: target, bytes, signer, decryptMs, publishMs: Math.round(performance.now() - started) - decryptMs });
  } catch (error) {
    await settleFailure(input, error, o);
  } finally {
    spool?.close();
    o.progress.advance(1, input.size);
  }
}

/** One attempt: the message decrypted and checked into a new spool, with the ETag of what was read. */
async function decryptToSpool(input: Input, o: DecryptInboxOptions): Promise<DecryptedMessage & { spool: PlaintextSpool; etag: string }> {
  const spool = PlaintextSpool.open();
  try {
    const source = await openSource(o.store, input);
    const decrypted = await decryptMessage(source.body, source.size, (chunk) => spool.write(chunk), o);
    return { ...decrypted, spool, etag: source.etag };
  } catch (error) {
    spool.close();
    throw error;
  }
}

/**
 * A refused message goes to the quarantine; a database error ends the run (the message was fine:
 * a terminated backend under markProcessed gave "read ECONNRESET", and the run exited 3 with a
 * dead letter for it, where a lost connection is transient, 75); so does S3 denying a request by
 * policy or rejecting the credentials (a configuration error, exit 2 naming the IAM action: every
 * message would meet it, and a denied PutObject gave each one a dead letter and the run exit 3);
 * anything else is a failed item, tried again by the next run. Thrown, it starts no new message
 * (mapBounded) and lets those in flight finish.
 */
async function settleFailure(input: Input, error: unknown, o: DecryptInboxOptions): Promise<void> {
  if (error instanceof DecryptRefusal) {
    try {
      await o.quarantine.quarantine(input.key, { rule: error.rule, detail: error.detail });
      o.counts.quarantined!++;
      return;
    } catch (quarantineError) {
      error = quarantineError;
    }
  }
  if (isDatabaseError(error) || (error instanceof EtlError && error.code === "config")) throw error;
  o.counts.failed!++;
  o.log.error("decrypting failed", { key: input.key, error: errorMessage(error) });
  await o.deadLetters.recordDeadLetters([{ itemKey: input.key, error: errorMessage(error), payload: { etag: input.etag } }]);
}

/** A local directory is read in place: FileStore.read would MD5 the whole file first, again. */
async function openSource(store: ObjectStore, input: Input): Promise<{ body: Readable; size: number; etag: string }> {
  const path = store.localPath?.(input.key);
  if (path) return { body: createReadStream(path, { highWaterMark: 1024 * 1024 }), size: input.size, etag: input.etag };
  return store.read(input.key);
}
