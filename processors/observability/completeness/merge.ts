/**
 * The merge at the heart of the completeness check: what the database says a destination should
 * hold against what it holds, both read in key order, one object of each side in memory at a time.
 */

/** An object the database expects at the destination (an attachment copied by get_s3_files). */
export interface ExpectedObject {
  /** The destination key: prefix + s3_key. */
  key: string;
  /** size_bytes; null when the database does not know it, and only presence is checked. */
  size: number | null;
  attachmentId: string;
  /** False for an attachment created within the grace: not expected yet, though welcome. */
  due: boolean;
}

export interface FoundObject {
  key: string;
  size: number;
}

export type Discrepancy =
  | { kind: "missing"; key: string; attachmentId: string; expectedSize: number | null }
  | { kind: "size_mismatch"; key: string; attachmentId: string; expectedSize: number | null; actualSize: number }
  | { kind: "unexpected"; key: string; actualSize: number };

export interface CompletenessCounts {
  /** Attachments that should be at the destination: present + sizeMismatch + missing. */
  expected: number;
  present: number;
  sizeMismatch: number;
  missing: number;
  /** Objects at the destination no live attachment accounts for (deleted since, or foreign). */
  unexpected: number;
  /** Attachments within the grace not at the destination at their size yet: neither expected nor missing. */
  pending: number;
}

/**
 * Orders keys as S3 lists them and as PostgreSQL's `collate "C"` sorts UTF-8 text: by code point
 * (UTF-8 byte order). JavaScript's `<` compares UTF-16 units, which puts U+10000 and above (a
 * surrogate pair, 0xD800-0xDFFF) before U+E000-U+FFFF; the two ranges are swapped back here.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Walks both sides in key order, reporting each discrepancy to `report` as it is found. Several
 * attachments may name one key (they share one destination object); the destination lists a key
 * once. `ignore` tells the destination's own files (get_s3_files's manifests) from unexpected ones.
 * Throws when either side is out of order: a merge of unsorted input would report nonsense.
 */
export async function mergeCompleteness(
  expected: AsyncIterable<ExpectedObject>,
  found: AsyncIterable<FoundObject>,
  options: { ignore: (key: string) => boolean; report: (discrepancy: Discrepancy) => void | Promise<void> },
): Promise<CompletenessCounts> {
  const counts: CompletenessCounts = { expected: 0, present: 0, sizeMismatch: 0, missing: 0, unexpected: 0, pending: 0 };
  const expectedSide = ordered(expected, "the database's attachments", false);
  const foundSide = ordered(found, "the destination's listing", true);
  try {
    let want = await expectedSide.next();
    let have = await foundSide.next();
    // Whether an attachment accounted for the destination object `have`.
    let claimed = false;
    while (!want.done || !have.done) {
      const order = want.done ? 1 : have.done ? -1 : compareKeys(want.value.key, have.value.key);
      if (order < 0) {
        const object = want.value as ExpectedObject;
        if (object.due) {
          counts.expected++;
          counts.missing++;
          await options.report({ kind: "missing", key: object.key, attachmentId: object.attachmentId, expectedSize: object.size });
        } else counts.pending++;
        want = await expectedSide.next();
      } else if (order > 0) {
        const object = have.value as FoundObject;
        if (!claimed && !options.ignore(object.key)) {
          counts.unexpected++;
          await options.report({ kind: "unexpected", key: object.key, actualSize: object.size });
        }
        have = await foundSide.next();
        claimed = false;
      } else {
        const [object, at] = [want.value as ExpectedObject, have.value as FoundObject];
        if (object.size === null || object.size === at.size) {
          counts.expected++;
          counts.present++;
        } else if (object.due) {
          counts.expected++;
          counts.sizeMismatch++;
          await options.report({ kind: "size_mismatch", key: object.key, attachmentId: object.attachmentId, expectedSize: object.size, actualSize: at.size });
        } else counts.pending++; // Not due yet: a copy that is not there yet, whatever is at its key.
        claimed = true;
        want = await expectedSide.next();
      }
    }
    return counts;
  } finally {
    // On an error, stop both sides: their read-ahead and a directory's spilled runs are let go.
    await Promise.allSettled([expectedSide.return?.(), foundSide.return?.()]);
  }
}

/** The side's iterator, checking that keys ascend (strictly for a listing, where a key is unique). */
function ordered<T extends { key: string }>(side: AsyncIterable<T>, name: string, strictly: boolean): AsyncIterator<T> {
  const iterator = side[Symbol.asyncIterator]();
  let previous: string | undefined;
  return {
    return: async () => (await iterator.return?.()) ?? { done: true, value: undefined },
    async next() {
      const step = await iterator.next();
      if (!step.done) {
        const order = previous === undefined ? 1 : compareKeys(step.value.key, previous);
        if (order < 0 || (strictly && order === 0)) throw new Error(`${name} is not in key order: ${JSON.stringify(step.value.key)} came after ${JSON.stringify(previous)}`);
        previous = step.value.key;
      }
      return step;
    },
  };
}
