import type { ListedObject, ObjectStore } from "../../../core/storage/object_store";
import type { AttachmentSummary } from "../../../repositories/attachments";
import type { ListingSide, ObjectListingRepository } from "../../../repositories/object_listings";

// One insert per ListObjectsV2 page (S3 returns at most 1000 keys a page).
const ROWS_PER_INSERT = 1000;

/**
 * Lists every object under `prefix` into the run's rows of etl_object_listings, streamed: one
 * insert in flight while the next page is listed, so memory holds two pages whatever the count.
 * Gives up (forgetting what it recorded) once more than `maxObjects` are listed, where listing
 * would cost more requests than the HEADs it saves. Returns how many it recorded, or undefined
 * when it gave up.
 */
export async function recordListing(
  store: ObjectStore,
  prefix: string,
  side: ListingSide,
  listings: ObjectListingRepository,
  maxObjects: number,
  /** Called once, as soon as more than `objects` are listed. */
  onMoreThan?: { objects: number; call: () => void },
): Promise<number | undefined> {
  let batch: ListedObject[] = [];
  let inserting: Promise<void> = Promise.resolve();
  let count = 0;
  try {
    for await (const object of store.list(prefix)) {
      if (count++ === onMoreThan?.objects) onMoreThan.call();
      if (count > maxObjects) {
        await inserting;
        await listings.deleteListing(side);
        return undefined;
      }
      batch.push(object);
      if (batch.length === ROWS_PER_INSERT) {
        const rows = batch;
        batch = [];
        await inserting;
        inserting = listings.addListedObjects(side, rows);
        inserting.catch(() => undefined); // awaited before the next insert; this only marks it handled meanwhile
      }
    }
    await inserting;
    await listings.addListedObjects(side, batch);
    return count;
  } finally {
    await inserting.catch(() => undefined);
  }
}

/** The longest prefix two keys share. */
export function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

const LIST_PAGE_KEYS = 1000;
// A ListObjectsV2 page answers for up to 1000 keys, a HEAD for one. Past 500 listed keys per
// attachment a listing costs more than half the HEADs it saves, so the copier HEADs instead.
const LISTED_KEYS_PER_ATTACHMENT = 500;

export interface ListingPlan {
  source: boolean;
  destination: boolean;
}

/**
 * Lists the destination under the run's prefix and, when that tells more than HEADs would, the
 * source under the prefix all of the agency's keys share, into etl_object_listings. The source
 * listing answers one question: is the object already at the destination the same? So it is
 * needed for the objects the destination holds, and for the copies of attachments whose size the
 * database does not know. When those are no more than the pages the source listing would take
 * (a first copy of sized attachments has none), they are HEADed instead and the source is not
 * listed: a first copy costs one request per object. Otherwise the source listing starts as soon
 * as the destination's first page shows it is needed, and both run at once. A side is left
 * unlisted when its listing grows past what it saves.
 */
export async function listStoresForAttachments(options: {
  source: ObjectStore;
  destination: ObjectStore;
  destinationPrefix: string;
  attachments: AttachmentSummary;
  listings: ObjectListingRepository;
}): Promise<ListingPlan & { sourcePrefix: string; sourceObjects?: number; destinationObjects?: number }> {
  const { attachments, listings } = options;
  if (attachments.count === 0) return { source: false, destination: false, sourcePrefix: "" };
  const sourcePrefix = commonPrefix(attachments.firstKey ?? "", attachments.lastKey ?? "");
  const maxObjects = Math.max(1000, attachments.count * LISTED_KEYS_PER_ATTACHMENT);
  // The source listing's cost in requests, at least: one page per 1000 attachments.
  const sourcePages = Math.ceil(attachments.count / LIST_PAGE_KEYS);
  let sourceListing: Promise<number | undefined> | undefined;
  const listSource = () => {
    sourceListing ??= recordListing(options.source, sourcePrefix, "source", listings, maxObjects);
    sourceListing.catch(() => undefined); // awaited below; this only marks it handled meanwhile
  };
  const headsAllowed = sourcePages - attachments.unsized;
  if (headsAllowed < 0) listSource();
  const destinationObjects = await recordListing(options.destination, options.destinationPrefix, "destination", listings, maxObjects, { objects: headsAllowed, call: listSource });
  // A destination too big to list is HEADed object by object, and the source listing pays for itself.
  if (destinationObjects === undefined) listSource();
  const sourceObjects = await sourceListing;
  await listings.analyzeListings();
  return { source: sourceObjects !== undefined, destination: destinationObjects !== undefined, sourcePrefix, sourceObjects, destinationObjects };
}
