import { rm } from "node:fs/promises";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { abortAbandonedUploads } from "../../../core/storage/abandoned_uploads";
import { isDatabaseError } from "../../../core/db/database_error";
import { EtlError, errorMessage } from "../../../core/errors";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import { readUnlessMissing } from "../../../core/db/missing_table";
import type { Metrics } from "../../../core/metrics/metrics";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { Progress } from "../../../core/runtime/progress";
import { makeWorkDirectory, sweepAbandonedWorkDirectories } from "../../../core/runtime/work_directory";
import type { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import type { ProcessedFile, ProcessedFileRepository } from "../../../repositories/processed_files";
import type { Quarantine } from "../quarantine/quarantine";
import { localArchive } from "./archive_reader";
import { extractArchive, type ExtractedFile } from "./extract";
import { RuleViolation } from "./guards";
import type { ExtractionLimits } from "./limits";
import { Publication, destinationConflict, manifestKey } from "./publish";
import { clearAbandonedStaging, removePrefix, stagingRoot, stagingWriter, verifyStaging } from "./staging";

export interface UnzipInboxOptions {
  /** The bucket or directory holding the inbox, the destination and the quarantine. */
  store: ObjectStore;
  /** Archives are the keys under it ending in `.zip`. */
  prefix: string;
  /** Where entries are published: `<destination><entry name>`. */
  destination: string;
  limits: ExtractionLimits;
  concurrency: number;
  /** Delete an archive from the inbox once it is extracted and recorded. */
  deleteProcessed: boolean;
  dryRun: boolean;
  job: string;
  runId: string;
  processed: ProcessedFileRepository;
  /** Absent in a dry run, which records nothing. */
  deadLetters?: DeadLetterRepository;
  quarantine: Quarantine;
  /** Whether a run still holds a lease: its staging is not abandoned. */
  isLive(runId: string): Promise<boolean>;
  log: Logger;
  metrics: Metrics;
  progress: Progress;
  counts: Counts;
  /** Aborting starts no new archive or entry; the archive in progress is rolled back. */
  signal: AbortSignal;
}

interface InboxArchive extends ProcessedFile {
  size: number;
}

// S3 allows keys of 1024 bytes.
const MAX_KEY_BYTES = 1024;
// Archives asked about per query of the ledger.
const LEDGER_BATCH = 1000;

/**
 * Extracts every archive under the prefix that this job has not processed (by key and ETag), one
 * archive at a time: extracted into staging, verified, published, recorded in the ledger. An
 * archive that breaks a rule is quarantined; one that fails otherwise (S3, the database) is left
 * in the inbox for the next run, with a dead letter. A dry run extracts into nothing: every rule
 * is checked on the real bytes, nothing is written.
 */
export async function unzipInbox(o: UnzipInboxOptions): Promise<Counts> {
  const { counts } = o;
  Object.assign(counts, { archives: 0, skipped: 0, unzipped: 0, extracted: 0, bytes: 0, quarantined: 0, failed: 0 });
  const root = stagingRoot(o.destination);
  if (!o.dryRun) {
    const isCommitted = async (archive: ProcessedFile) => (await o.processed.processed([archive])).has(archive.key);
    // A run killed mid-entry leaves that entry as a write's temp file, which listings do not show.
    const partials = (await o.store.removeAbandonedPartials?.(root, o.isLive)) ?? 0;
    const cleared = await clearAbandonedStaging(o.store, root, { runId: o.runId, isLive: o.isLive, isCommitted, log: o.log });
    // On S3 an entry in flight (over 8 MiB) is a multipart upload, whose key names its run.
    const isDead = async ({ key }: { key: string }) => {
      const runId = key.slice(root.length).split("/")[0]!;
      return runId !== o.runId && !(await o.isLive(runId));
    };
    const uploads = await abortAbandonedUploads(o.store, root, isDead, o.log);
    if (cleared || partials || uploads) o.log.info("removed the staging of killed runs", { runs: cleared, partialFiles: partials, abortedUploads: uploads });
    await sweepAbandonedWorkDirectories(o.log);
  }

  const archives = await listArchives(o.store, o.prefix);
  counts.archives = archives.length;
  const done = new Set<string>();
  for (let i = 0; i < archives.length; i += LEDGER_BATCH) {
    const batch = archives.slice(i, i + LEDGER_BATCH);
    for (const key of await readUnlessMissing(o.dryRun, () => o.processed.processed(batch), new Set<string>())) done.add(key);
  }
  const todo = archives.filter((a) => !done.has(a.key));
  counts.skipped = done.size;
  o.progress.setTotal(todo.length);
  o.log.info("listed the inbox", { prefix: `${o.store.url}/${o.prefix}`, archives: archives.length, processedBefore: done.size, destination: o.destination });

  for (const [index, archive] of todo.entries()) {
    if (o.signal.aborted) break;
    await unzipArchive(o, archive, `${root}${o.runId}/${index}/`);
    o.progress.advance(1);
  }
  return counts;
}

/** Keys under the prefix ending in `.zip`, with their ETags (a local file's is its MD5, read on HEAD). */
async function listArchives(store: ObjectStore, prefix: string): Promise<InboxArchive[]> {
  const archives: InboxArchive[] = [];
  for await (const object of store.list(prefix)) {
    if (!/\.zip$/i.test(object.key)) continue;
    const etag = object.etag ?? (await store.head(object.key))?.etag;
    if (etag) archives.push({ key: object.key, etag, size: object.size });
  }
  return archives.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** One archive, start to end: nothing of it stays visible unless all of it is published and recorded. */
async function unzipArchive(o: UnzipInboxOptions, listed: InboxArchive, staging: string): Promise<void> {
  const { store, counts } = o;
  const log = o.log.child({ archive: listed.key });
  const tempDir = await makeWorkDirectory("unzip");
  const ownManifestKey = manifestKey(o.destination, listed.key);
  let publication: Publication | undefined;
  let committed = false;
  // A rollback that fails leaves the staging, journal included, for the next run to roll back.
  let keepStaging = false;
  let archive = listed;
  try {
    const local = await localArchive(store, listed.key, listed.etag, tempDir);
    archive = { ...listed, etag: local.etag };
    const stagingPrefix = `${staging}files/`;
    const files = await o.metrics.time("extractMs", () =>
      extractArchive(local.path, {
        stagingPrefix,
        write: o.dryRun ? discard : stagingWriter(store),
        maxNameBytes: MAX_KEY_BYTES - Math.max(Buffer.byteLength(stagingPrefix), Buffer.byteLength(o.destination)),
        limits: o.limits,
        concurrency: o.concurrency,
        tempDir,
        signal: o.signal,
        onBytes: (bytes) => o.progress.advance(0, bytes),
      }),
    );
    const conflict = await destinationConflict(store, o.destination, files, ownManifestKey);
    if (conflict) throw conflict;
    if (o.dryRun) return countExtracted(o, files, log, "would publish");

    await verifyStaging(store, stagingPrefix, files);
    publication = new Publication(store, { archive, destination: o.destination, stagingPrefix: staging, manifestKey: ownManifestKey, runId: o.runId, job: o.job });
    const manifest = await o.metrics.time("publishMs", () => publication!.publish(files));
    await o.processed.markProcessed({ key: archive.key, etag: archive.etag, runId: o.runId, output: { manifestKey: ownManifestKey, destination: o.destination, entries: manifest.entries, bytes: manifest.bytes } });
    committed = true;
    countExtracted(o, files, log, "published");
  } catch (error) {
    if (publication && !committed) {
      await publication.rollback().catch((rollbackError) => {
        keepStaging = true;
        log.error("could not remove what was published of the archive; the next run removes it", { error: errorMessage(rollbackError) });
      });
    }
    // A database error (the record of the archive lost its connection) is the run's: exit 75, not a failed archive.
    if (o.signal.aborted || isDatabaseError(error) || appliesToTheRole(error)) throw error;
    if (!(error instanceof RuleViolation)) {
      counts.failed!++;
      log.error("could not extract the archive; it stays in the inbox for the next run", { error: errorMessage(error) });
      await o.deadLetters?.recordDeadLetters([{ itemKey: archive.key, error: errorMessage(error), payload: { key: archive.key, etag: archive.etag } }]);
    } else if (o.dryRun) {
      counts.quarantined!++;
      log.warn("would quarantine", { rule: error.rule, detail: error.detail });
    } else {
      await quarantineArchive(o, archive, error);
    }
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    if (!o.dryRun && !keepStaging) await removePrefix(store, staging).catch((error) => log.warn("could not remove the archive's staging; the next run does", { error: errorMessage(error) }));
  }
  if (committed) await afterCommit(o, archive, log);
}

function countExtracted(o: UnzipInboxOptions, files: readonly ExtractedFile[], log: Logger, what: string): void {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  o.counts.unzipped!++;
  o.counts.extracted! += files.length;
  o.counts.bytes! += bytes;
  log.info(what, { entries: files.length, bytes, destination: o.destination });
}

/** Quarantines the archive under the rule it broke; a quarantine that fails leaves it in the inbox, failed. */
async function quarantineArchive(o: UnzipInboxOptions, archive: InboxArchive, violation: RuleViolation): Promise<void> {
  try {
    await o.quarantine.quarantine(archive.key, { rule: violation.rule, detail: violation.detail });
    o.counts.quarantined!++;
  } catch (error) {
    if (appliesToTheRole(error)) throw error;
    o.counts.failed!++;
    o.log.error("could not quarantine the archive; it stays in the inbox", { archive: archive.key, rule: violation.rule, error: errorMessage(error) });
    await o.deadLetters?.recordDeadLetters([{ itemKey: archive.key, error: `${violation.rule}: ${violation.detail} (quarantine failed: ${errorMessage(error)})`, payload: { key: archive.key, etag: archive.etag } }]);
  }
}

/** Housekeeping once the archive is recorded: a failure here is a warning (a denial ends the run, exit 2), never a rollback. */
async function afterCommit(o: UnzipInboxOptions, archive: InboxArchive, log: Logger): Promise<void> {
  await o.deadLetters?.resolveDeadLetters([archive.key]).catch((error) => log.warn("could not resolve the archive's dead letter", { error: errorMessage(error) }));
  if (o.deleteProcessed) {
    await o.store.delete(archive.key).catch((error) => {
      if (appliesToTheRole(error)) throw error;
      log.warn("could not delete the processed archive", { error: errorMessage(error) });
    });
  }
}

/**
 * S3 denying a request by policy (S3AccessDeniedError names the action) or rejecting the
 * credentials: every archive would meet it, so it ends the run (exit 2) instead of failing this
 * one with a dead letter that a replay only fails again; the archive's publication is rolled back
 * first, as for any failure. A denied CopyObject at publish was a failed archive and exit 3.
 */
function appliesToTheRole(error: unknown): boolean {
  return error instanceof EtlError && error.code === "config";
}

/** A dry run's sink: the entry is inflated and checked, and its bytes dropped. */
async function discard(_key: string, body: Readable | Uint8Array): Promise<void> {
  if (!(body instanceof Uint8Array)) await pipeline(body, new Writable({ write: (_chunk, _encoding, done) => done() }));
}
