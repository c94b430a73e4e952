import { ObjectNotFoundError, readBytes, type ObjectStore } from "../../../core/storage/object_store";
import { mapBounded } from "../../../core/executor";
import { retry } from "../../../core/http/retry";
import { bronzeFormat } from "../../data_pipeline/silver/bronze_read";

const DAY_MS = 86_400_000;
/** The days looked at: a week covers bronze_to_silver's lookback and a long weekend of missed slots. */
export const UNBUILT_WINDOW_DAYS = 7;

/** Bronze that a dataset's silver does not hold yet: since when, in which partition, how many files. */
export interface UnbuiltBronze {
  since: Date;
  partition: string;
  files: number;
}

interface CommittedInput {
  key: string;
  size: number;
  etag: string;
}

/**
 * The oldest bronze file of the last UNBUILT_WINDOW_DAYS days (today's included) that its day's
 * committed silver partition was not built from: a file written since the build (late data), or
 * any file of a day never built. Compared by key and size, and by ETag where the listing has it
 * (S3): the `inputs` of the partition's `_manifest.json`, the file readers follow. Undefined when
 * silver holds all of it.
 */
export async function unbuiltBronze(store: ObjectStore, dataset: string, nowMs: number, signal: AbortSignal): Promise<UnbuiltBronze | undefined> {
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const days = Array.from({ length: UNBUILT_WINDOW_DAYS }, (_, back) => new Date(today - back * DAY_MS).toISOString().slice(0, 10));
  // The days side by side: each is a listing, and a manifest read when it has bronze.
  const perDay = await mapBounded(days, UNBUILT_WINDOW_DAYS, (day) => unbuiltOfDay(store, dataset, day, signal), signal);
  let oldest: UnbuiltBronze | undefined;
  for (const day of perDay) if (day && (!oldest || day.since < oldest.since)) oldest = day;
  return oldest;
}

async function unbuiltOfDay(store: ObjectStore, dataset: string, day: string, signal: AbortSignal): Promise<UnbuiltBronze | undefined> {
  const files = [];
  for await (const object of store.list(`bronze/${dataset}/dt=${day}/`)) {
    const name = object.key.slice(object.key.lastIndexOf("/") + 1);
    if (!name.startsWith(".") && !name.startsWith("_") && bronzeFormat(name)) files.push(object);
  }
  if (!files.length) return undefined;
  const committed = new Map((await committedInputs(store, dataset, day, signal)).map((input) => [input.key, input]));
  const unbuilt = files.filter((f) => {
    const input = committed.get(f.key);
    return !input || input.size !== f.size || (f.etag !== null && input.etag !== f.etag);
  });
  if (!unbuilt.length) return undefined;
  return { since: new Date(Math.min(...unbuilt.map((f) => f.lastModified.getTime()))), partition: day, files: unbuilt.length };
}

async function committedInputs(store: ObjectStore, dataset: string, day: string, signal: AbortSignal): Promise<CommittedInput[]> {
  try {
    const manifest = JSON.parse((await retry(() => readBytes(store, `silver/${dataset}/dt=${day}/_manifest.json`), { signal })).toString("utf8")) as { inputs?: CommittedInput[] };
    return Array.isArray(manifest.inputs) ? manifest.inputs : [];
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return [];
    throw error;
  }
}
