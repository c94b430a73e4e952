/**
 * Quarantine (DESIGN.md "file_processing"): a file that breaks a safety or integrity rule is
 * moved out of the inbox to `quarantine/<job>/<YYYY-MM-DD>/<original key>`, beside it
 * `<original key>.reason.json`, and never half-processed. The original is removed only after the
 * copy is verified, so a failure on the way leaves the file where it was.
 */
import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import { EtlError } from "../../../core/errors";
import type { Logger } from "../../../core/log";
import { readBytes, writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { VERSION } from "../../../core/version";
import type { DeadLetterRepository } from "../../../core/ledger/dead_letters";

export const QUARANTINE_PREFIX = "quarantine/";
export const REASON_SUFFIX = ".reason.json";

export interface QuarantineReason {
  /** Short snake_case name of the rule the file broke, e.g. `path_traversal`. */
  rule: string;
  /** What exactly broke it, for the operator: the entry, the limit, the error. */
  detail: string;
}

/** `<key>.reason.json`: why the file is here and what it was. */
export interface QuarantineRecord extends QuarantineReason {
  key: string;
  quarantineKey: string;
  sha256: string;
  size: number;
  sourceEtag: string;
  runId: string;
  job: string;
  version: string;
  quarantinedAt: string;
}

export interface QuarantineOptions {
  /** The bucket or directory holding the inbox; the quarantine lives in the same one. */
  store: ObjectStore;
  job: string;
  runId: string;
  /** YYYY-MM-DD: the run's logical day, else today (UTC). */
  date: string;
  /** When the run has a database: one dead letter per quarantined file, keyed by its original key. */
  deadLetters?: DeadLetterRepository;
  log: Logger;
}

export function quarantineKey(job: string, date: string, key: string): string {
  return `${QUARANTINE_PREFIX}${job}/${date}/${key}`;
}

export class Quarantine {
  private quarantined = 0;

  constructor(private readonly options: QuarantineOptions) {}

  /** Files this run quarantined. */
  get count(): number {
    return this.quarantined;
  }

  /**
   * Moves `key` into the quarantine with its reason: streamed copy (sha256 computed on the way),
   * verified by size and MD5, then the reason, then the original is deleted. Returns the quarantine key.
   */
  async quarantine(key: string, reason: QuarantineReason): Promise<string> {
    const { store, job, runId, date, log } = this.options;
    const target = quarantineKey(job, date, key);
    const { size, etag, sha256 } = await copyVerified(store, key, target);
    const record: QuarantineRecord = { ...reason, key, quarantineKey: target, sha256, size, sourceEtag: etag, runId, job, version: VERSION, quarantinedAt: new Date().toISOString() };
    await writeBytes(store, target + REASON_SUFFIX, Buffer.from(JSON.stringify(record, null, 2) + "\n"), "application/json");
    await store.delete(key);
    this.quarantined++;
    log.warn("quarantined", { key, quarantineKey: target, rule: reason.rule, detail: reason.detail });
    await this.options.deadLetters?.recordDeadLetters([{ itemKey: key, error: `${reason.rule}: ${reason.detail}`, payload: { quarantineKey: target, rule: reason.rule, sha256, size } }]);
    return target;
  }
}

/**
 * Streams `from` to `to` in one store, hashing on the way, and checks the copy's size (and its MD5
 * where the store's ETag is one) before anyone removes the source. Returns the source's size and
 * ETag and the content's sha256.
 */
export async function copyVerified(store: ObjectStore, from: string, to: string): Promise<{ size: number; etag: string; sha256: string }> {
  const source = await store.read(from);
  const sha256 = createHash("sha256");
  const md5 = createHash("md5");
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sha256.update(chunk);
      md5.update(chunk);
      done(null, chunk);
    },
  });
  source.body.on("error", (error) => hashing.destroy(error));
  await store.write(to, source.body.pipe(hashing), { size: source.size });
  const copy = await store.head(to);
  const digest = md5.digest("hex");
  // A single-part upload's ETag (S3) and a local file's (FileStore) are the MD5 of the content.
  const etagIsMd5 = copy !== undefined && /^[0-9a-f]{32}$/.test(copy.etag);
  if (!copy || copy.size !== source.size || (etagIsMd5 && copy.etag !== digest)) {
    throw new EtlError("failed", `copy of ${store.url}/${from} to ${to} did not verify (size ${copy?.size ?? "missing"} of ${source.size}); the original is left in place`);
  }
  return { size: source.size, etag: source.etag, sha256: sha256.digest("hex") };
}

export const RELEASED_SUFFIX = ".released.json";

/** A released file's record, `<quarantine key>.released.json`: the reason record plus who put it back, when and why. */
export interface ReleaseRecord extends QuarantineRecord {
  releasedAt: string;
  releasedBy: string;
  releaseReason: string;
}

/** The reason records under quarantine/ (of one job's, when named), oldest first; with `released`, the release records too. */
export async function listQuarantined(store: ObjectStore, options: { job?: string; released?: boolean } = {}): Promise<Array<QuarantineRecord | ReleaseRecord>> {
  const records: Array<QuarantineRecord | ReleaseRecord> = [];
  for await (const object of store.list(QUARANTINE_PREFIX + (options.job ? `${options.job}/` : ""))) {
    if (!object.key.endsWith(REASON_SUFFIX) && !(options.released && object.key.endsWith(RELEASED_SUFFIX))) continue;
    records.push(await readRecord(store, object.key));
  }
  return records.sort((a, b) => (a.quarantinedAt < b.quarantinedAt ? -1 : a.quarantinedAt > b.quarantinedAt ? 1 : 0));
}

export class NotQuarantinedError extends EtlError {
  constructor(message: string) {
    super("usage", message);
  }
}

/**
 * Puts a quarantined file back at its original key for the job to process again: verified copy
 * (its sha256 must still be the one recorded), then the release record, then the quarantined copy
 * and its reason are removed. Refuses to overwrite a file at the original key.
 */
export async function releaseQuarantined(store: ObjectStore, quarantined: string, release: { reason: string; by: string }): Promise<ReleaseRecord> {
  const reasonKey = quarantined + REASON_SUFFIX;
  if (!quarantined.startsWith(QUARANTINE_PREFIX) || !(await store.head(reasonKey))) {
    throw new NotQuarantinedError(`${store.url}/${quarantined} is not a quarantined file (\`etl quarantine list\` shows their keys)`);
  }
  const record = await readRecord(store, reasonKey);
  if (await store.head(record.key)) {
    throw new NotQuarantinedError(`${store.url}/${record.key} exists again; move it away before releasing ${quarantined} over it`);
  }
  const copied = await copyVerified(store, quarantined, record.key);
  if (copied.sha256 !== record.sha256) {
    await store.delete(record.key);
    throw new EtlError("failed", `${store.url}/${quarantined} no longer has the sha256 recorded when it was quarantined; not released`);
  }
  const released: ReleaseRecord = { ...record, releasedAt: new Date().toISOString(), releasedBy: release.by, releaseReason: release.reason };
  await writeBytes(store, quarantined + RELEASED_SUFFIX, Buffer.from(JSON.stringify(released, null, 2) + "\n"), "application/json");
  await store.delete(reasonKey);
  await store.delete(quarantined);
  return released;
}

async function readRecord(store: ObjectStore, key: string): Promise<QuarantineRecord> {
  return JSON.parse((await readBytes(store, key)).toString("utf8")) as QuarantineRecord;
}
