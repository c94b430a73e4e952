/**
 * Every code path that takes bytes takes any Uint8Array, not only a Buffer: Bun.gzipSync, fetch,
 * TextEncoder and openpgp hand out plain Uint8Arrays, often views into a larger buffer. A Buffer-only
 * API on one (Buffer#copy, Buffer.isBuffer, toString("latin1")) broke ingest_api's every S3 pull.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { readBytes, writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { decryptMessage } from "../../../processors/file_processing/decrypt/decrypt_stream";
import { stagingWriter } from "../../../processors/file_processing/unzip/staging";
import { LAKE_KINDS, createLake, type Lake } from "../../harness/lakes";

const MiB = 1024 * 1024;

/** `length` bytes of a pattern, as a view that starts `offset` bytes into a larger ArrayBuffer (not a Buffer). */
function plainView(length: number, offset = 3, seed = 1): Uint8Array {
  const view = new Uint8Array(new ArrayBuffer(length + offset + 5), offset, length);
  for (let i = 0; i < length; i++) view[i] = (i * 31 + seed) % 251;
  return view;
}

const md5 = (...parts: Array<Uint8Array | string>) => parts.reduce((h, p) => h.update(p), createHash("md5")).digest("hex");

describe.each(LAKE_KINDS)("bytes into a %s store", (kind) => {
  let lake: Lake;
  let store: ObjectStore;
  beforeAll(async () => {
    lake = await createLake(kind);
    store = await lake.store();
  });
  afterAll(() => lake.dispose());

  test("writeBytes takes a plain Uint8Array, a view into a larger buffer and Bun.gzipSync's output; readBytes gives each back", async () => {
    const view = plainView(1000);
    const gzipped = Bun.gzipSync(new TextEncoder().encode('{"id":1}\n'));
    expect(Buffer.isBuffer(view) || Buffer.isBuffer(gzipped)).toBe(false);
    await writeBytes(store, "bytes/view.bin", view, "application/octet-stream");
    await writeBytes(store, "bytes/records.ndjson.gz", gzipped, "application/x-ndjson");
    expect(Buffer.from(await readBytes(store, "bytes/view.bin")).equals(view)).toBe(true);
    expect(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await readBytes(store, "bytes/records.ndjson.gz"))))).toBe('{"id":1}\n');
    // A single-part object's ETag (and a file's) is the MD5 of its bytes: the view's, not its whole buffer's.
    expect((await store.head("bytes/view.bin"))!.etag).toBe(md5(view));
  });

  test("a streamed body of plain Uint8Array views, Buffers and strings lands byte for byte, across several parts", async () => {
    // 8 MiB parts (core/storage/s3_upload.ts): 17 MiB + 1 makes three, and the chunks straddle the boundaries.
    const chunks: Array<Uint8Array | string> = [plainView(5 * MiB + 7), Buffer.from(plainView(3 * MiB, 0, 2)), "ünïcödé text, two bytes a letter", plainView(9 * MiB, 11, 3)];
    const size = chunks.reduce((n, c) => n + (typeof c === "string" ? Buffer.byteLength(c) : c.length), 0);
    await store.write("bytes/parts.bin", Readable.from(chunks), { size });
    const back = await readBytes(store, "bytes/parts.bin");
    expect(back.length).toBe(size);
    expect(md5(back)).toBe(md5(...chunks));
    if (kind === "s3") expect((await store.head("bytes/parts.bin"))!.etag).toMatch(/-3$/);
  });

  test("a body that is not a stream of bytes is refused and nothing lands (S3 once wrote an empty object)", async () => {
    // Iterating a Uint8Array given where a Readable belongs yields numbers.
    await expect(store.write("bytes/numbers.bin", plainView(10) as unknown as Readable, { size: 10 })).rejects.toThrow(/number/);
    expect(await store.head("bytes/numbers.bin")).toBeUndefined();
  });

  test("unzip's staging writer takes an entry held in memory as any Uint8Array", async () => {
    const entry = plainView(4096);
    await stagingWriter(store)("staged/entry.bin", entry, entry.length);
    expect(Buffer.from(await lake.read("staged/entry.bin")).equals(entry)).toBe(true);
  });
});

test("decrypt reads an ASCII-armored message from a source of plain Uint8Arrays", async () => {
  const openpgp = await import("openpgp");
  const { privateKey, publicKey } = await openpgp.generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "bytes" }], format: "object" });
  const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ text: "armored plaintext" }), encryptionKeys: publicKey, format: "armored" });
  const ciphertext = new TextEncoder().encode(armored as string);
  const plaintext: Uint8Array[] = [];
  const result = await decryptMessage(Readable.from([ciphertext]), ciphertext.length, async (chunk) => void plaintext.push(chunk), {
    keyring: { decryptionKeys: [privateKey] },
    maxOutputBytes: MiB,
    stallMs: 10_000,
  });
  expect(result.bytes).toBe(17);
  expect(Buffer.concat(plaintext).toString()).toBe("armored plaintext");
});
