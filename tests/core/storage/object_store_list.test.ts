import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { FileStore } from "../../../core/storage/file_store";
import type { ObjectStore } from "../../../core/storage/object_store";
import { S3Store } from "../../../core/storage/s3_store";
import { createBucket, s3 } from "../../harness/fixtures";

const KEYS = ["prod/etl/a.py", "prod/etl/b.py", "prod/etl/sub/d.py", "prod/etl2/c.py", "prod/etl-x.py", "staging/etl/e.py", "top.txt"];

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  return keys.sort();
}

const stores: Array<[string, () => Promise<{ store: ObjectStore; cleanup: () => void }>]> = [
  // A page of two keys makes the listing follow continuation tokens, as a 1000-key page does on S3.
  ["S3Store", async () => ({ store: new S3Store(await createBucket(), s3(), { listPageSize: 2 }), cleanup: () => {} })],
  [
    "FileStore",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "etl-list-"));
      return { store: new FileStore(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
];

describe.each(stores)("%s list and delete", (_, open) => {
  test("list(prefix) yields exactly the keys starting with the prefix, with their sizes", async () => {
    const { store, cleanup } = await open();
    try {
      for (const key of KEYS) await store.write(key, Readable.from([Buffer.from(key)]), { size: key.length });
      expect(await keysOf(store, "prod/etl/")).toEqual(["prod/etl/a.py", "prod/etl/b.py", "prod/etl/sub/d.py"]);
      expect(await keysOf(store, "prod/etl")).toEqual(["prod/etl-x.py", "prod/etl/a.py", "prod/etl/b.py", "prod/etl/sub/d.py", "prod/etl2/c.py"]);
      expect(await keysOf(store, "")).toEqual([...KEYS].sort());
      expect(await keysOf(store, "nothing/")).toEqual([]);
      const sizes: Record<string, number> = {};
      for await (const { key, size } of store.list("staging/")) sizes[key] = size;
      expect(sizes).toEqual({ "staging/etl/e.py": "staging/etl/e.py".length });
    } finally {
      cleanup();
    }
  });

  test("delete removes one key; deleting a missing key is not an error", async () => {
    const { store, cleanup } = await open();
    try {
      await store.write("x/1", Readable.from([Buffer.from("1")]), { size: 1 });
      await store.write("x/2", Readable.from([Buffer.from("2")]), { size: 1 });
      await store.delete("x/1");
      await store.delete("x/never-there");
      expect(await keysOf(store, "x/")).toEqual(["x/2"]);
    } finally {
      cleanup();
    }
  });
});

test("FileStore lists no half-written files, and an absent directory as empty", async () => {
  const dir = mkdtempSync(join(tmpdir(), "etl-list-"));
  try {
    writeFileSync(join(dir, "done.txt"), "done");
    writeFileSync(join(dir, "done.txt.etl-partial-123-abcdef"), "half");
    expect(await keysOf(new FileStore(dir), "")).toEqual(["done.txt"]);
    expect(await keysOf(new FileStore(join(dir, "absent")), "")).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
