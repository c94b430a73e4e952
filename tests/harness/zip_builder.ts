/**
 * Zip archives for the tests. `buildZip` writes the ones no honest tool makes, field by field
 * (APPNOTE 6.3.10): names with NULs, backslashes or bytes that are not UTF-8, links and special
 * files in the external attributes, the encrypted flag, sizes and CRCs that lie, and central
 * directory records that share one member (the overlapping-entries bomb); past 65,534 entries,
 * ZIP64 end records. `writeStreamedZip` streams members of any size; `yazlZip` makes honest
 * small ones with yazl. (info_zip.ts has Info-ZIP's own zip make them.)
 */
import { createWriteStream } from "node:fs";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createDeflateRaw, deflateRawSync } from "node:zlib";

export interface ZipEntrySpec {
  /** A string is written as UTF-8 with the UTF-8 flag; bytes are written as they are. */
  name: string | Uint8Array;
  data?: string | Uint8Array;
  /** 8 (deflate, the default) or 0 (stored) compress the data; any other method stores it under that number. */
  method?: number;
  /** General purpose bits added to the UTF-8 flag, e.g. 0x1 (encrypted). */
  flags?: number;
  /** A Unix st_mode for the upper half of the external attributes (0o120777: a symbolic link). */
  unixMode?: number;
  /** The "made by" host (APPNOTE 4.4.2.2): 3 (Unix) with a unixMode, else 0 (MS-DOS), unless given. */
  host?: number;
  /** The lower half of the external attributes (MS-DOS attributes, 0x400: a reparse point). */
  dosAttributes?: number;
  /** Extra fields, in both headers. */
  extra?: Uint8Array;
  /** Uncompressed size written in the headers, instead of the real one. */
  declaredSize?: number;
  /** CRC-32 written in the headers, instead of the real one. */
  crc32?: number;
  /** This central record points at that earlier entry's local header and data instead of its own. */
  sameDataAs?: number;
}

const UTF8_FLAG = 0x800;
const DATA_DESCRIPTOR_FLAG = 0x8;
const VERSION_UNIX = (3 << 8) | 20;
const VERSION_DOS = 20;

/** One extra field: id, length, data. */
export function extraField(id: number, data: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16LE(id, 0);
  header.writeUInt16LE(data.length, 2);
  return Buffer.concat([header, data]);
}

/** PKWARE's Unix extra field (0x000d) naming a link target, as a hard link carries it. */
export function pkwareLinkField(target: string): Buffer {
  return extraField(0x000d, Buffer.concat([Buffer.alloc(12), Buffer.from(target)]));
}

/**
 * The Info-ZIP Unicode Path extra field (0x7075, APPNOTE 4.6.9) that gives `name` in UTF-8 to the
 * entry whose header name is `headerName`: version 1, then the CRC-32 of the header name, unless
 * `crc` or `version` say otherwise.
 */
export function unicodePathField(name: string | Uint8Array, headerName: Uint8Array, options: { crc?: number; version?: number } = {}): Buffer {
  const fixed = Buffer.alloc(5);
  fixed.writeUInt8(options.version ?? 1, 0);
  fixed.writeUInt32LE((options.crc ?? crc32(headerName)) >>> 0, 1);
  return extraField(0x7075, Buffer.concat([fixed, Buffer.from(name)]));
}

/** A whole zip in memory, written as `entries` say; with `zip64`, ZIP64 end records whatever the count. */
export function buildZip(entries: readonly ZipEntrySpec[], options: { zip64?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  const written: Array<{ offset: number; method: number; crc: number; compressedSize: number; size: number }> = [];
  let offset = 0;
  for (const entry of entries) {
    const name = typeof entry.name === "string" ? Buffer.from(entry.name) : Buffer.from(entry.name);
    const flags = (typeof entry.name === "string" ? UTF8_FLAG : 0) | (entry.flags ?? 0);
    const extra = Buffer.from(entry.extra ?? []);
    const shared = entry.sameDataAs === undefined ? undefined : written[entry.sameDataAs];
    let member = shared;
    if (!member) {
      const data = Buffer.from(entry.data ?? "");
      const method = entry.method ?? 8;
      const stored = method === 8 ? deflateRawSync(data) : data;
      member = { offset, method, crc: entry.crc32 ?? crc32(data), compressedSize: stored.length, size: entry.declaredSize ?? data.length };
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(flags, 6);
      local.writeUInt16LE(method, 8);
      local.writeUInt32LE(member.crc >>> 0, 14);
      local.writeUInt32LE(member.compressedSize, 18);
      local.writeUInt32LE(member.size, 22);
      local.writeUInt16LE(name.length, 26);
      local.writeUInt16LE(extra.length, 28);
      parts.push(local, name, extra, stored);
      offset += local.length + name.length + extra.length + stored.length;
    }
    written.push(member);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(entry.host !== undefined ? (entry.host << 8) | 20 : entry.unixMode === undefined ? VERSION_DOS : VERSION_UNIX, 4);
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(flags, 8);
    record.writeUInt16LE(member.method, 10);
    record.writeUInt32LE(member.crc >>> 0, 16);
    record.writeUInt32LE(member.compressedSize, 20);
    record.writeUInt32LE(member.size, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt16LE(extra.length, 30);
    record.writeUInt32LE((((entry.unixMode ?? 0) << 16) | (entry.dosAttributes ?? 0)) >>> 0, 38);
    record.writeUInt32LE(member.offset, 42);
    central.push(record, name, extra);
  }
  const directory = Buffer.concat(central);
  // 0xffff entries or more: the counts live in the ZIP64 end record, found through its locator.
  const zip64 = options.zip64 === true || entries.length >= 0xffff;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, ...(zip64 ? zip64End(entries.length, directory.length, offset) : []), end]);
}

/** The ZIP64 end of central directory record and its locator (APPNOTE 4.3.14, 4.3.15). */
function zip64End(count: number, directorySize: number, directoryOffset: number): Buffer[] {
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeUInt16LE(45, 12);
  record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(BigInt(count), 24);
  record.writeBigUInt64LE(BigInt(count), 32);
  record.writeBigUInt64LE(BigInt(directorySize), 40);
  record.writeBigUInt64LE(BigInt(directoryOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(directoryOffset + directorySize), 8);
  locator.writeUInt32LE(1, 16);
  return [record, locator];
}

/**
 * Streams a zip of deflated entries to `path`, each read from its `source` as it is written: sizes
 * and CRC go in ZIP64 data descriptors and central records, so a member may pass 4 GiB. (yazl
 * computes its CRC-32 in JavaScript: 5 GiB took it 110 s; zlib's takes 1.2 s.)
 */
export async function writeStreamedZip(path: string, entries: ReadonlyArray<{ name: string; source: () => Readable }>): Promise<void> {
  const out = createWriteStream(path);
  let offset = 0;
  const write = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      offset += bytes.length;
      out.write(bytes, (error) => (error ? reject(error) : resolve()));
    });
  const central: Buffer[] = [];
  for (const entry of entries) {
    const name = Buffer.from(entry.name);
    const headerOffset = offset;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt16LE(UTF8_FLAG | DATA_DESCRIPTOR_FLAG, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(name.length, 26);
    await write(Buffer.concat([local, name]));
    let crc = 0;
    let size = 0;
    let compressed = 0;
    await pipeline(
      entry.source(),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          crc = crc32(chunk, crc);
          size += chunk.length;
          yield chunk;
        }
      },
      createDeflateRaw(),
      async function (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          compressed += chunk.length;
          await write(chunk);
        }
      },
    );
    const descriptor = Buffer.alloc(24);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(crc >>> 0, 4);
    descriptor.writeBigUInt64LE(BigInt(compressed), 8);
    descriptor.writeBigUInt64LE(BigInt(size), 16);
    await write(descriptor);
    const sizes = Buffer.alloc(16);
    sizes.writeBigUInt64LE(BigInt(size), 0);
    sizes.writeBigUInt64LE(BigInt(compressed), 8);
    const extra = extraField(0x0001, sizes);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(45, 4);
    record.writeUInt16LE(45, 6);
    record.writeUInt16LE(UTF8_FLAG | DATA_DESCRIPTOR_FLAG, 8);
    record.writeUInt16LE(8, 10);
    record.writeUInt32LE(crc >>> 0, 16);
    record.writeUInt32LE(0xffffffff, 20);
    record.writeUInt32LE(0xffffffff, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt16LE(extra.length, 30);
    record.writeUInt32LE(headerOffset, 42);
    central.push(record, name, extra);
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  await write(Buffer.concat([directory, end]));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

interface YazlZipFile {
  outputStream: Readable;
  addBuffer(buffer: Buffer, name: string, options?: { compress?: boolean }): void;
  addEmptyDirectory(name: string): void;
  end(): void;
}

const yazl = createRequire(import.meta.url)("yazl") as { ZipFile: new () => YazlZipFile };

export interface YazlEntry {
  /** A directory when it ends in "/". */
  name: string;
  data?: string | Uint8Array;
  compress?: boolean;
}

/** An honest zip in memory. */
export async function yazlZip(entries: Iterable<YazlEntry>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => zip.outputStream.on("data", (c: Buffer) => chunks.push(c)).on("end", resolve).on("error", reject));
  for (const entry of entries) {
    if (entry.name.endsWith("/")) zip.addEmptyDirectory(entry.name);
    else zip.addBuffer(Buffer.from(entry.data ?? ""), entry.name, { compress: entry.compress ?? true });
  }
  zip.end();
  await done;
  return Buffer.concat(chunks);
}

/** `bytes` zero bytes, in 1 MiB chunks of one shared buffer: nothing held but that MiB. */
export function zeros(bytes: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  let left = bytes;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}
