import type { Dataset } from "../../../core/dataset";
import type { Logger } from "../../../core/log";
import type { ObjectStore } from "../../../core/storage/object_store";
import { PROFILE_FOLDER } from "./inputs";
import type { ProfileDocument, TrendPoint } from "./profile_document";
import { readProfile } from "./profile_diff";

/** Earlier partitions a profile's trend shows: two weeks of a daily dataset. */
export const TREND_PARTITIONS = 14;

/**
 * The keys of the profiles of the dataset's newest partitions before `partitionDate`, newest
 * first, at most `limit`: one listing of silver/<dataset>/ (S3 or a directory alike).
 */
export async function earlierPartitionProfiles(store: ObjectStore, dataset: Dataset, partitionDate: string, limit = TREND_PARTITIONS): Promise<string[]> {
  const prefix = `silver/${dataset.name}/dt=`;
  const pattern = new RegExp(`^${prefix}(\\d{4}-\\d{2}-\\d{2})/${PROFILE_FOLDER}profile\\.json$`);
  const found: Array<{ date: string; key: string }> = [];
  for await (const object of store.list(prefix)) {
    const date = pattern.exec(object.key)?.[1];
    if (date && date < partitionDate) found.push({ date, key: object.key });
  }
  return found.sort((a, b) => (a.date < b.date ? 1 : -1)).slice(0, limit).map((f) => f.key);
}

/** The stored profiles at `keys` that exist and are of this version, by key. */
export async function readProfiles(store: ObjectStore, keys: readonly string[], log: Logger): Promise<Map<string, ProfileDocument>> {
  const documents = new Map<string, ProfileDocument>();
  for (const key of keys) {
    const document = await readProfile(store, key, log);
    if (document) documents.set(key, document);
  }
  return documents;
}

/** What the trend keeps of a profile: its rows, each column's null share, each check's status. */
export function trendPoint(document: ProfileDocument, key: string): TrendPoint {
  return {
    partition: document.partition,
    generatedAt: document.generatedAt,
    runId: document.runId,
    key,
    rows: document.rows,
    nullRatio: Object.fromEntries(Object.entries(document.columns).map(([name, c]) => [name, c.nullRatio])),
    checks: Object.fromEntries(document.checks.map((c) => [c.name, c.status])),
    ...(document.rejects ? { rejected: document.rejects.rows } : {}),
  };
}

/** The trend of `documents` (by key), oldest first: by partition, else by when each was generated. */
export function trendOf(documents: ReadonlyMap<string, ProfileDocument>): TrendPoint[] {
  const order = (p: TrendPoint) => `${p.partition ?? ""} ${p.generatedAt}`;
  return [...documents].map(([key, document]) => trendPoint(document, key)).sort((a, b) => (order(a) < order(b) ? -1 : 1));
}
