import type { FileHandle } from "node:fs/promises";
import { open, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ObjectStore } from "../../../core/storage/object_store";
import { compareKeys, type FoundObject } from "./merge";

// Objects sorted in memory at a time when a listing must be sorted: about 20 MB of keys of 60
// characters; a million objects make ten runs on disk.
const RUN_OBJECTS = 100_000;

/**
 * The objects under `prefix` in key order (UTF-8 byte order), with memory that does not grow with
 * their number. S3 lists in that order already. A directory lists in walk order
 * (ObjectStore.list), so its listing is sorted externally: runs of RUN_OBJECTS sorted in memory
 * and spilled to temp files, then merged. Each temp file is unlinked as soon as it is open, so a
 * killed run leaves nothing in /tmp.
 */
export async function* listInKeyOrder(store: ObjectStore, prefix: string, options: { runObjects?: number; signal?: AbortSignal } = {}): AsyncGenerator<FoundObject> {
  // The stores with a local path are the directories (core/storage/file_store.ts).
  if (!store.localPath) {
    for await (const { key, size } of store.list(prefix)) yield { key, size };
    return;
  }
  const runObjects = options.runObjects ?? RUN_OBJECTS;
  const runs: FileHandle[] = [];
  try {
    let batch: FoundObject[] = [];
    for await (const { key, size } of store.list(prefix)) {
      options.signal?.throwIfAborted();
      batch.push({ key, size });
      if (batch.length === runObjects) {
        runs.push(await spillRun(batch));
        batch = [];
      }
    }
    batch.sort((a, b) => compareKeys(a.key, b.key));
    if (runs.length === 0) {
      yield* batch;
      return;
    }
    if (batch.length) runs.push(await spillRun(batch, true));
    yield* mergeRuns(runs.map(readRun));
  } finally {
    await Promise.all(runs.map((run) => run.close().catch(() => undefined)));
  }
}

/** Writes the objects, sorted, one JSON line each (a key may hold any character, a newline too). */
async function spillRun(objects: FoundObject[], sorted = false): Promise<FileHandle> {
  if (!sorted) objects.sort((a, b) => compareKeys(a.key, b.key));
  const path = join(tmpdir(), `etl-completeness-${crypto.randomUUID()}.ndjson`);
  const file = await open(path, "w+", 0o600);
  await unlink(path);
  await file.writeFile(objects.map((o) => JSON.stringify([o.key, o.size])).join("\n") + "\n");
  return file;
}

async function* readRun(file: FileHandle): AsyncGenerator<FoundObject> {
  for await (const line of createInterface({ input: file.createReadStream({ start: 0, autoClose: false }), crlfDelay: Infinity })) {
    const [key, size] = JSON.parse(line) as [string, number];
    yield { key, size };
  }
}

/** A k-way merge of sorted runs through a binary heap of their heads. */
async function* mergeRuns(runs: AsyncGenerator<FoundObject>[]): AsyncGenerator<FoundObject> {
  const heap: Array<{ head: FoundObject; run: AsyncGenerator<FoundObject> }> = [];
  const less = (i: number, j: number) => compareKeys(heap[i]!.head.key, heap[j]!.head.key) < 0;
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
  const up = (i: number) => {
    for (let parent = (i - 1) >> 1; i > 0 && less(i, parent); i = parent, parent = (i - 1) >> 1) swap(i, parent);
  };
  const down = (i: number) => {
    for (;;) {
      const [left, right] = [2 * i + 1, 2 * i + 2];
      let least = i;
      if (left < heap.length && less(left, least)) least = left;
      if (right < heap.length && less(right, least)) least = right;
      if (least === i) return;
      swap(i, least);
      i = least;
    }
  };
  for (const run of runs) {
    const step = await run.next();
    if (!step.done) heap.push({ head: step.value, run }), up(heap.length - 1);
  }
  while (heap.length) {
    const top = heap[0]!;
    yield top.head;
    const step = await top.run.next();
    if (step.done) {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
    } else top.head = step.value;
    if (heap.length) down(0);
  }
}
