/**
 * Extracts an archive, and the archives nested in it up to --max-depth, into a staging prefix:
 * every entry's name and kind checked first (guards.ts), then every entry's bytes metered as they
 * inflate, against the limits and the CRC-32 of the central directory.
 */
import { createWriteStream } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, pipeline, type Readable } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import { crc32, inflateRawSync } from "node:zlib";
import { mapBounded } from "../../../core/executor";
import { ZipArchive, archiveError, type EntryData } from "./archive_reader";
import {
  NameRegistry,
  RuleViolation,
  archiveTooLarge,
  declaredSizeViolation,
  entryKindViolation,
  entryTooLarge,
  isNestedArchive,
  nameViolation,
  nestedTooDeep,
  overlapViolation,
  ratioTooHigh,
  tooManyEntries,
  type EntryRange,
} from "./guards";
import { RATIO_GRACE_BYTES, type ExtractionLimits } from "./limits";

/** One file extracted into staging, under its name relative to the destination. */
export interface ExtractedFile {
  name: string;
  stagedKey: string;
  size: number;
  crc32: number;
}

/** Writes one entry's bytes (exactly `size`) to `key`; fails when a streamed body fails. */
export type EntryWriter = (key: string, body: Readable | Uint8Array, size: number) => Promise<void>;

export interface ExtractOptions {
  /** Entries are written to `<stagingPrefix><name>`. */
  stagingPrefix: string;
  write: EntryWriter;
  /** Longest name (UTF-8 bytes) that still makes a key S3 takes under both prefixes it is written to. */
  maxNameBytes: number;
  limits: ExtractionLimits;
  /** Entries extracted at once. */
  concurrency: number;
  /** A local directory for nested archives (yauzl reads them from disk); the caller removes it. */
  tempDir: string;
  /** Aborting starts no new entry; the archive's extraction then fails with the abort reason. */
  signal: AbortSignal;
  /** Bytes inflated, as they are. */
  onBytes(bytes: number): void;
}

/**
 * Entries this small are read and inflated in memory, everything else streams: a chain of streams
 * per entry (read, inflate, byte counts, meter) cost 130 µs, 8.7 s of 65,600 one-line entries,
 * where reading and inflating them all in memory takes 1 s, central directory included. In memory
 * at once: at most `concurrency` x (64 KiB + 1 MiB).
 */
const SMALL_STORED_BYTES = 64 * 1024;
const SMALL_INFLATED_BYTES = 1024 * 1024;
/** Entries between two turns of the event loop. */
const YIELD_EVERY = 256;

/** What one archive, nested archives included, has used of the limits so far. */
class Budget {
  entries = 0;
  bytes = 0;
  constructor(private readonly limits: ExtractionLimits) {}

  addEntry(): void {
    if (++this.entries > this.limits.maxEntries) throw tooManyEntries(this.entries, this.limits);
  }

  addBytes(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.limits.maxTotalBytes) throw archiveTooLarge(this.bytes, this.limits);
  }
}

interface Extraction {
  options: ExtractOptions;
  budget: Budget;
  names: NameRegistry;
  files: ExtractedFile[];
  nestedArchives: number;
}

/** Extracts the zip at `path` into staging; throws a RuleViolation for the first rule it breaks. */
export async function extractArchive(path: string, options: ExtractOptions): Promise<ExtractedFile[]> {
  const extraction: Extraction = { options, budget: new Budget(options.limits), names: new NameRegistry(), files: [], nestedArchives: 0 };
  await extractLevel(extraction, path, "", 0);
  return extraction.files;
}

/** One archive of the tree: `prefix` is where its names go (a nested archive's folder), `depth` its nesting. */
async function extractLevel(extraction: Extraction, path: string, prefix: string, depth: number): Promise<void> {
  const { options, budget } = extraction;
  const archive = await ZipArchive.open(path);
  try {
    if (budget.entries + archive.declaredEntries > options.limits.maxEntries) throw tooManyEntries(budget.entries + archive.declaredEntries, options.limits);
    const records = await checkedRecords(extraction, archive, prefix, depth);
    const files = records.filter((r) => !r.name.endsWith("/") && !isNestedArchive(r.name));
    await mapBounded(
      files,
      options.concurrency,
      async (record, index) => {
        // Small entries come from cached blocks and can go to sinks that finish at once (a dry run):
        // a chain of microtasks only, which would starve timers (the lease's renewal) for seconds.
        if (index % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        await extractFile(extraction, archive, record, prefix);
      },
      options.signal,
    );
    // Nested archives one at a time, after this level's files: their own entries run `concurrency`
    // at a time, so nesting never multiplies the streams (and buffers) in flight.
    for (const record of records.filter((r) => isNestedArchive(r.name))) {
      options.signal.throwIfAborted();
      const nestedPath = join(options.tempDir, `nested-${++extraction.nestedArchives}.zip`);
      try {
        await extractEntry(extraction, archive, record, prefix + record.name, (body) =>
          body instanceof Uint8Array ? writeFile(nestedPath, body) : pipelineAsync(body, createWriteStream(nestedPath)),
        );
        await extractLevel(extraction, nestedPath, `${prefix}${nestedFolder(record.name)}/`, depth + 1);
      } finally {
        await rm(nestedPath, { force: true });
      }
    }
  } finally {
    archive.close();
  }
}

/** A nested archive extracts into a folder named after it, without `.zip`. */
function nestedFolder(name: string): string {
  return name.slice(0, -".zip".length);
}

/**
 * The central directory read whole and checked against every rule before any entry is inflated.
 * Overlap is decided first: a bomb of overlapping entries breaks the ratio rule too, and is
 * reported as what it is.
 */
async function checkedRecords(extraction: Extraction, archive: ZipArchive, prefix: string, depth: number): Promise<EntryData[]> {
  const { options, budget, names } = extraction;
  const { limits } = options;
  // Past the checks only what extraction needs is kept, not the records' raw names and extra fields.
  const records: EntryData[] = [];
  const ranges: EntryRange[] = [];
  let firstViolation: RuleViolation | undefined;
  let declaredBytes = budget.bytes;
  for await (const record of archive.records()) {
    budget.addEntry();
    const name = prefix + record.name;
    ranges.push({ name, start: record.headerOffset, end: record.dataStart + record.compressedSize });
    const { compressionMethod, compressedSize, uncompressedSize, crc32, dataStart } = record;
    records.push({ name: record.name, compressionMethod, compressedSize, uncompressedSize, crc32, dataStart });
    if (firstViolation) continue;
    declaredBytes += record.uncompressedSize;
    firstViolation =
      nameViolation(record.name, record.rawName) ??
      (Buffer.byteLength(name) > options.maxNameBytes ? new RuleViolation("invalid_name", `entry ${JSON.stringify(name)} makes a key longer than S3's 1024 bytes`) : undefined) ??
      entryKindViolation(record) ??
      declaredSizeViolation(record, limits) ??
      (declaredBytes > limits.maxTotalBytes ? archiveTooLarge(declaredBytes, limits) : undefined) ??
      (isNestedArchive(record.name) && depth + 1 > limits.maxDepth ? nestedTooDeep(name, depth + 1, limits) : undefined) ??
      names.add(isNestedArchive(record.name) ? `${prefix}${nestedFolder(record.name)}/` : name);
  }
  const violation = overlapViolation(ranges) ?? firstViolation;
  if (violation) throw violation;
  return records;
}

async function extractFile(extraction: Extraction, archive: ZipArchive, record: EntryData, prefix: string): Promise<void> {
  const { write, stagingPrefix } = extraction.options;
  const name = prefix + record.name;
  const stagedKey = stagingPrefix + name;
  await extractEntry(extraction, archive, record, name, (body) => write(stagedKey, body, record.uncompressedSize));
  extraction.files.push({ name, stagedKey, size: record.uncompressedSize, crc32: record.crc32 });
}

/**
 * Counts one entry's inflated bytes against the entry, ratio and total limits as they come
 * (headers are not trusted), and at the end checks the count against the declared size and the
 * CRC-32 against the central directory's.
 */
class EntryMeter {
  private bytes = 0;
  private crc = 0;

  constructor(
    private readonly extraction: Extraction,
    private readonly record: EntryData,
    private readonly name: string,
  ) {}

  /** Throws the RuleViolation that `chunk` makes the entry break. */
  add(chunk: Buffer): void {
    const { limits } = this.extraction.options;
    this.bytes += chunk.length;
    if (this.bytes > limits.maxEntryBytes) throw entryTooLarge(this.name, this.bytes, limits);
    if (this.bytes > RATIO_GRACE_BYTES && this.bytes / Math.max(this.record.compressedSize, 1) > limits.maxRatio) throw ratioTooHigh(this.name, this.bytes, this.record.compressedSize, limits);
    if (this.bytes > this.record.uncompressedSize) throw this.sizeMismatch();
    this.extraction.budget.addBytes(chunk.length);
    this.crc = crc32(chunk, this.crc);
    this.extraction.options.onBytes(chunk.length);
  }

  finish(): void {
    if (this.bytes !== this.record.uncompressedSize) throw this.sizeMismatch();
    if (this.crc >>> 0 !== this.record.crc32 >>> 0) {
      throw new RuleViolation("integrity_check_failed", `entry ${JSON.stringify(this.name)} has CRC-32 ${hex(this.crc)}, its header says ${hex(this.record.crc32)}`);
    }
  }

  private sizeMismatch(): RuleViolation {
    return new RuleViolation("size_mismatch", `entry ${JSON.stringify(this.name)} inflates to ${this.bytes} bytes, its header says ${this.record.uncompressedSize}`);
  }
}

/**
 * Hands one entry's bytes to `sink`, metered: in memory when small, else streamed. A rule broken
 * on the way fails the sink with that RuleViolation, so nothing partial is kept.
 */
async function extractEntry(extraction: Extraction, archive: ZipArchive, record: EntryData, name: string, sink: (body: Readable | Uint8Array) => Promise<void>): Promise<void> {
  const { signal } = extraction.options;
  const meter = new EntryMeter(extraction, record, name);
  if (record.compressedSize <= SMALL_STORED_BYTES && record.uncompressedSize <= SMALL_INFLATED_BYTES) {
    const data = inflateSmall(record, await archive.readStored(record), name);
    meter.add(data);
    meter.finish();
    return sink(data);
  }
  const source = await archive.openEntryStream(record);
  let violation: unknown;
  let sourceError: unknown;
  source.once("error", (error) => (sourceError ??= error));
  const metered = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        meter.add(chunk);
      } catch (error) {
        return done((violation = error) as Error);
      }
      done(null, chunk);
    },
    flush(done) {
      try {
        meter.finish();
      } catch (error) {
        return done((violation = error) as Error);
      }
      done();
    },
  });
  // Errors travel down to the meter, and a sink that gives up destroys the source too.
  const body = pipeline(source, metered, () => {});
  // A 5 GiB entry takes longer than the runner's drain after SIGTERM: it stops where it is.
  const abort = () => body.destroy(signal.reason);
  signal.addEventListener("abort", abort, { once: true });
  try {
    await sink(body);
  } catch (error) {
    body.destroy();
    if (signal.aborted) throw signal.reason;
    throw violation ?? (sourceError === undefined ? error : archiveError(sourceError));
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

/** A small entry's bytes, inflated at most to its declared size (a lie is a size mismatch). */
function inflateSmall(record: EntryData, stored: Buffer, name: string): Buffer {
  if (record.compressionMethod !== 8) return stored;
  try {
    return inflateRawSync(stored, { maxOutputLength: Math.max(record.uncompressedSize, 1) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") throw archiveError(error);
    throw new RuleViolation("size_mismatch", `entry ${JSON.stringify(name)} inflates to more than the ${record.uncompressedSize} bytes its header says`);
  }
}

function hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, "0");
}
