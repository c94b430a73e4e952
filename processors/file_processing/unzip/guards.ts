/**
 * The rules an archive must keep before anything of it is extracted, each with the name its
 * quarantine records (`reason.json` `rule`). yauzl refuses `../` and absolute names and size lies
 * by itself, with messages of its own; we read names undecoded and check them here so that every
 * refusal names its rule, and we add what no library checks: backslashes, drive letters, NULs,
 * names that collide once normalised or case-folded, links and special files, encryption,
 * overlapping entries, nested archives too deep, and sizes over the limits.
 */
import type { ExtraField } from "yauzl";
import { EtlError } from "../../../core/errors";
import { RATIO_GRACE_BYTES, type ExtractionLimits } from "./limits";

/** An archive broke a rule: it is quarantined under `rule`, with `detail` for the operator. */
export class RuleViolation extends EtlError {
  constructor(
    readonly rule: string,
    readonly detail: string,
  ) {
    super("failed", `${rule}: ${detail}`);
    this.name = "RuleViolation";
  }
}

/** What the guards read of one central directory record. */
export interface EntryHeader {
  /** Decoded (entry_name.ts: UTF-8 or CP437), backslashes kept. */
  name: string;
  rawName: Buffer;
  versionMadeBy: number;
  generalPurposeBitFlag: number;
  compressionMethod: number;
  externalFileAttributes: number;
  extraFields: ExtraField[];
  compressedSize: number;
  uncompressedSize: number;
}

// Longest segment most filesystems take (NAME_MAX), so a `file:` destination can hold every name.
const MAX_SEGMENT_BYTES = 255;

/** The rule an entry's name breaks, or undefined. A directory entry's trailing "/" is allowed. */
export function nameViolation(name: string, rawName: Buffer): RuleViolation | undefined {
  const shown = JSON.stringify(name);
  // The decoded name too: a Unicode Path extra field (0x7075) can carry a NUL the header's name has not.
  if (rawName.includes(0) || name.includes("\0")) return new RuleViolation("nul_in_name", `entry ${shown} has a NUL byte in its name`);
  if (name.startsWith("/")) return new RuleViolation("absolute_path", `entry ${shown} is an absolute path`);
  if (/^[A-Za-z]:/.test(name)) return new RuleViolation("drive_letter", `entry ${shown} starts with a drive letter`);
  if (name.includes("\\")) return new RuleViolation("backslash_in_name", `entry ${shown} has a backslash, a separator on Windows`);
  const path = name.endsWith("/") ? name.slice(0, -1) : name;
  const segments = path.split("/");
  if (segments.includes("..")) return new RuleViolation("path_traversal", `entry ${shown} has a ".." segment`);
  const invalid = (why: string) => new RuleViolation("invalid_name", `entry ${shown} ${why}`);
  if (path === "") return invalid("has an empty name");
  if (name.includes("\uFFFD")) return invalid("has U+FFFD in its name, the mark of bytes that are not UTF-8");
  if (/[\x01-\x1f\x7f]/.test(name)) return invalid("has a control character");
  if (segments.includes(".")) return invalid('has a "." segment');
  if (segments.includes("")) return invalid("has an empty segment (//)");
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) return invalid(`has a segment over ${MAX_SEGMENT_BYTES} bytes`);
  return undefined;
}

// Unix file types in the upper 16 bits of the external attributes (st_mode).
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
// FILE_ATTRIBUTE_REPARSE_POINT: what a Windows symbolic link or junction carries.
const REPARSE_POINT = 0x400;
// PKWARE's Unix extra field (APPNOTE 4.5.7): after 12 fixed bytes, the target of a hard or symbolic link.
const PKWARE_UNIX_FIELD = 0x000d;
const PKWARE_UNIX_FIXED_BYTES = 12;

/** The rule an entry's kind breaks: links, special files, encryption, compression we cannot read. */
export function entryKindViolation(entry: EntryHeader): RuleViolation | undefined {
  const shown = JSON.stringify(entry.name);
  // Bit 0: traditional PKWARE encryption; bit 6: strong encryption. We extract nothing we cannot read whole.
  if (entry.generalPurposeBitFlag & 0x41) return new RuleViolation("encrypted_entry", `entry ${shown} is encrypted`);
  const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
  const linkTarget = entry.extraFields.find((f) => f.id === PKWARE_UNIX_FIELD && f.data.length > PKWARE_UNIX_FIXED_BYTES);
  if (type === S_IFLNK || entry.externalFileAttributes & REPARSE_POINT) return new RuleViolation("symlink_entry", `entry ${shown} is a symbolic link`);
  if (linkTarget) return new RuleViolation("hardlink_entry", `entry ${shown} is a hard link to ${JSON.stringify(linkTarget.data.subarray(PKWARE_UNIX_FIXED_BYTES).toString())}`);
  if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) {
    return new RuleViolation("special_file_entry", `entry ${shown} is a special file (mode ${type.toString(8)})`);
  }
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    return new RuleViolation("unsupported_compression", `entry ${shown} uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are read`);
  }
  return undefined;
}

/** The limit an entry's declared sizes already break: refused before any byte is inflated. */
export function declaredSizeViolation(entry: EntryHeader, limits: ExtractionLimits): RuleViolation | undefined {
  if (entry.uncompressedSize > limits.maxEntryBytes) return entryTooLarge(entry.name, entry.uncompressedSize, limits);
  if (entry.uncompressedSize > RATIO_GRACE_BYTES && entry.uncompressedSize / Math.max(entry.compressedSize, 1) > limits.maxRatio) {
    return ratioTooHigh(entry.name, entry.uncompressedSize, entry.compressedSize, limits);
  }
  return undefined;
}

export function entryTooLarge(name: string, bytes: number, limits: ExtractionLimits): RuleViolation {
  return new RuleViolation("entry_too_large", `entry ${JSON.stringify(name)} inflates to ${bytes} bytes or more, over --max-entry-bytes ${limits.maxEntryBytes}`);
}

export function ratioTooHigh(name: string, bytes: number, compressedSize: number, limits: ExtractionLimits): RuleViolation {
  const ratio = Math.round(bytes / Math.max(compressedSize, 1));
  return new RuleViolation("zip_bomb_ratio", `entry ${JSON.stringify(name)} inflates ${compressedSize} bytes to ${bytes} or more (${ratio}:1), over --max-ratio ${limits.maxRatio}`);
}

export function tooManyEntries(count: number, limits: ExtractionLimits): RuleViolation {
  return new RuleViolation("too_many_entries", `the archive has ${count} entries or more, over --max-entries ${limits.maxEntries}`);
}

export function archiveTooLarge(bytes: number, limits: ExtractionLimits): RuleViolation {
  return new RuleViolation("archive_too_large", `the archive inflates to ${bytes} bytes or more, over --max-total-bytes ${limits.maxTotalBytes}`);
}

/** Whether an entry is an archive extracted in turn (by name: an .xlsx is a zip too, and is kept whole). */
export function isNestedArchive(name: string): boolean {
  return /\.zip$/i.test(name);
}

export function nestedTooDeep(name: string, depth: number, limits: ExtractionLimits): RuleViolation {
  return new RuleViolation("nested_archive_too_deep", `entry ${JSON.stringify(name)} is an archive nested ${depth} levels deep, over --max-depth ${limits.maxDepth}`);
}

/**
 * The names an archive (with its nested archives) extracts to, folded as a case-insensitive,
 * normalising filesystem (APFS, NTFS, SMB shares) would see them: two names that fold alike
 * would overwrite each other there, and even on S3 one silently replaces the other. A file whose
 * name is another entry's directory is refused too.
 */
export class NameRegistry {
  private readonly files = new Map<string, string>();
  private readonly directories = new Map<string, string>();

  /** Registers a file (or, with a trailing "/", a directory); returns the collision it makes, if any. */
  add(name: string): RuleViolation | undefined {
    const isDirectory = name.endsWith("/");
    const path = isDirectory ? name.slice(0, -1) : name;
    const folded = fold(path);
    const clash = this.files.get(folded) ?? (isDirectory ? undefined : this.directories.get(folded));
    if (clash !== undefined) return collision(name, clash);
    const segments = path.split("/");
    for (let i = 1; i <= segments.length - (isDirectory ? 0 : 1); i++) {
      const directory = segments.slice(0, i).join("/");
      const foldedDirectory = fold(directory);
      const file = this.files.get(foldedDirectory);
      if (file !== undefined) return collision(name, file);
      if (!this.directories.has(foldedDirectory)) this.directories.set(foldedDirectory, `${directory}/`);
    }
    if (!isDirectory) this.files.set(folded, name);
    return undefined;
  }
}

/**
 * NFC, then upper- and lower-casing: upper-casing first folds what lower-casing alone leaves
 * apart ("ß" and "SS", "ſ" and "s"), closer to Unicode full case folding than toLowerCase.
 */
function fold(name: string): string {
  return name.normalize("NFC").toUpperCase().toLowerCase().normalize("NFC");
}

function collision(name: string, earlier: string): RuleViolation {
  const how = name === earlier ? "appears twice" : `collides with ${JSON.stringify(earlier)} once normalised and case-folded`;
  return new RuleViolation("name_collision", `entry ${JSON.stringify(name)} ${how}`);
}

/** Where one entry sits in the archive file: its local header and its data, [start, end). */
export interface EntryRange {
  name: string;
  start: number;
  end: number;
}

/**
 * Entries must sit in disjoint ranges of the file. Central directory records that point at the
 * same (or an overlapping) local header inflate one member many times: a 21 KB zip of 200 entries
 * pointing at one 10 MiB member inflates to 2.1 GB in every library tried (Fifield's
 * "better zip bomb"); no reader refuses it, so we do.
 */
export function overlapViolation(ranges: readonly EntryRange[]): RuleViolation | undefined {
  const sorted = [...ranges].sort((a, b) => a.start - b.start || a.end - b.end);
  let widest: EntryRange | undefined;
  for (const range of sorted) {
    if (widest && range.start < widest.end) {
      return new RuleViolation(
        "overlapping_entries",
        `entry ${JSON.stringify(range.name)} (bytes ${range.start}-${range.end}) overlaps entry ${JSON.stringify(widest.name)} (bytes ${widest.start}-${widest.end})`,
      );
    }
    if (!widest || range.end > widest.end) widest = range;
  }
  return undefined;
}
