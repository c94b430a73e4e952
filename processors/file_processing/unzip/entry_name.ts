/**
 * An entry's name as the archiver meant it, from its raw bytes. The zip format has two ways to say
 * a name is UTF-8, and the archivers most partners use take neither:
 *
 * - general purpose bit 11 (APPNOTE 4.4.4): the name is UTF-8;
 * - the Info-ZIP Unicode Path extra field 0x7075 (APPNOTE 4.6.9): version 1, the CRC-32 of the
 *   header's name, then the name in UTF-8. A CRC that does not match means the header's name was
 *   changed after the field was written (zipnote renames, for one); the field is ignored then;
 * - neither: the name is in the archiver's own code page. Windows archivers write the OEM code
 *   page (CP437, the APPNOTE's default), but Info-ZIP's zip on Linux writes the bytes of the file
 *   name as the filesystem has them, UTF-8 on any current system, flagged or not: Debian's zip 3.0
 *   sets neither bit 11 nor 0x7075, in C.UTF-8 and in C alike (checked with `zipinfo -v`). Info-ZIP's
 *   unzip leaves the names of archives made on Unix as they are and converts only those made on
 *   FAT, HPFS or NTFS from the OEM code page; we read a Unix archive's name as UTF-8 when it is
 *   valid UTF-8, and as CP437 otherwise (a Latin-1 name from an old system).
 */
import { crc32 } from "node:zlib";
import type { ExtraField } from "yauzl";

/** What the name is read from in a central directory record. */
export interface RawEntryName {
  rawName: Buffer;
  versionMadeBy: number;
  generalPurposeBitFlag: number;
  extraFields: readonly ExtraField[];
}

const UTF8_FLAG = 0x800;
const UNICODE_PATH_FIELD = 0x7075;
const UNICODE_PATH_VERSION = 1;
// The "made by" hosts (APPNOTE 4.4.2.2) whose archivers write a Unix filesystem's bytes: 3 Unix, 19 OS X (Darwin).
const UNIX_HOSTS = new Set([3, 19]);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * The decoded name (backslashes kept, for the guards to refuse). A name flagged UTF-8 that is not
 * keeps U+FFFD where its bad bytes were, which the guards refuse.
 */
export function decodeEntryName(entry: RawEntryName, cp437: (raw: Buffer) => string): string {
  const unicodePath = unicodePathName(entry);
  if (unicodePath !== undefined) return unicodePath;
  if (entry.generalPurposeBitFlag & UTF8_FLAG) return lenientUtf8.decode(entry.rawName);
  if (UNIX_HOSTS.has(entry.versionMadeBy >>> 8)) {
    const utf8 = strictUtf8OrUndefined(entry.rawName);
    if (utf8 !== undefined) return utf8;
  }
  return cp437(entry.rawName);
}

/** The name in a 0x7075 field that belongs to this header's name, if there is one. */
function unicodePathName(entry: RawEntryName): string | undefined {
  for (const field of entry.extraFields) {
    if (field.id !== UNICODE_PATH_FIELD || field.data.length < 6) continue;
    // "Changes may not be backward compatible so this extra field should not be used if the version is not recognized."
    if (field.data[0] !== UNICODE_PATH_VERSION) continue;
    if (field.data.readUInt32LE(1) !== crc32(entry.rawName) >>> 0) continue;
    // A field that is not UTF-8 says nothing we can trust: the header's name is read instead.
    const name = strictUtf8OrUndefined(field.data.subarray(5));
    if (name !== undefined) return name;
  }
  return undefined;
}

function strictUtf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
