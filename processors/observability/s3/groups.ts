import type { ListedObject, MultipartUpload } from "../../../core/storage/object_store";

/** What s3_metrics reports for one prefix group. */
export interface GroupFigures {
  objects: number;
  bytes: number;
  /** LastModified of the newest and oldest object, in ms since the epoch; undefined while the group has no object. */
  newestMs: number | undefined;
  oldestMs: number | undefined;
  incompleteUploads: number;
  /** When the oldest open multipart upload was initiated, in ms since the epoch. */
  oldestUploadMs: number | undefined;
}

/**
 * The group past --max-groups. No real group can be named so: every group is the listed prefix
 * itself (empty, or ending in "/") or a prefix below it ending in "/".
 */
export const OTHER_GROUP = "(other)";

/**
 * The group a key counts in: `prefix` plus the key's first `depth` path segments below it that
 * are directories. A key with fewer (`a/x.txt` at depth 2, `top.txt` at any depth) counts in the
 * shallower group its directories give (`a/`, `prefix` itself), so the groups never overlap and
 * their sum is the whole listing.
 */
export function groupOf(key: string, prefix: string, depth: number): string {
  let end = prefix.length;
  for (let level = 0; level < depth; level++) {
    const slash = key.indexOf("/", end);
    if (slash < 0) break;
    end = slash + 1;
  }
  return key.slice(0, end);
}

/**
 * Figures per group, aggregated while the listing streams: memory holds the groups, never the
 * objects. The first `maxGroups` groups met get their own row; objects of any later one count
 * in OTHER_GROUP, so a prefix with a million sub-folders cannot blow up the table or the
 * Pushgateway's series.
 */
export class GroupTable {
  private readonly groups = new Map<string, GroupFigures>();

  constructor(private readonly maxGroups: number) {}

  addObject(group: string, object: ListedObject): void {
    const figures = this.figuresOf(group);
    const modified = object.lastModified.getTime();
    figures.objects++;
    figures.bytes += object.size;
    if (figures.newestMs === undefined || modified > figures.newestMs) figures.newestMs = modified;
    if (figures.oldestMs === undefined || modified < figures.oldestMs) figures.oldestMs = modified;
  }

  addUpload(group: string, upload: MultipartUpload): void {
    const figures = this.figuresOf(group);
    const initiated = upload.initiated.getTime();
    figures.incompleteUploads++;
    if (figures.oldestUploadMs === undefined || initiated < figures.oldestUploadMs) figures.oldestUploadMs = initiated;
  }

  /** Adds the figures of a table filled apart (one listing that succeeded), under the same group limit. */
  merge(other: GroupTable): void {
    for (const [group, theirs] of other.groups) {
      const ours = this.figuresOf(group);
      ours.objects += theirs.objects;
      ours.bytes += theirs.bytes;
      ours.newestMs = extreme(Math.max, ours.newestMs, theirs.newestMs);
      ours.oldestMs = extreme(Math.min, ours.oldestMs, theirs.oldestMs);
      ours.incompleteUploads += theirs.incompleteUploads;
      ours.oldestUploadMs = extreme(Math.min, ours.oldestUploadMs, theirs.oldestUploadMs);
    }
  }

  /** Makes sure `group` has a row, empty if nothing counted in it (an empty prefix still reports zero). */
  ensure(group: string): void {
    this.figuresOf(group);
  }

  get size(): number {
    return this.groups.size;
  }

  /** Rows by group name, OTHER_GROUP last. */
  rows(): Array<[string, GroupFigures]> {
    return [...this.groups].sort(([a], [b]) => (a === OTHER_GROUP ? 1 : b === OTHER_GROUP ? -1 : a < b ? -1 : a > b ? 1 : 0));
  }

  private figuresOf(group: string): GroupFigures {
    let figures = this.groups.get(group);
    if (figures) return figures;
    if (this.groups.size >= this.maxGroups && group !== OTHER_GROUP) return this.figuresOf(OTHER_GROUP);
    figures = { objects: 0, bytes: 0, newestMs: undefined, oldestMs: undefined, incompleteUploads: 0, oldestUploadMs: undefined };
    this.groups.set(group, figures);
    return figures;
  }
}

function extreme(pick: (a: number, b: number) => number, a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : pick(a, b);
}
