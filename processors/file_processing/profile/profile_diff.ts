import type { Logger } from "../../../core/log";
import { ObjectNotFoundError, type ObjectStore } from "../../../core/storage/object_store";
import { PROFILE_VERSION, type ColumnProfile, type ProfileChange, type ProfileDocument } from "./profile_document";

/**
 * What counts as a change worth a line in the run's log. A day's data moves a little: these are
 * the moves that usually mean an upstream change (a field no longer sent, a feed half-delivered).
 */
const THRESHOLDS = {
  /** Rows: a fifth more or less. */
  rowsRelative: 0.2,
  /** Null and misfit shares: one percentage point (0.2% to 31% is one; 0.2% to 0.5% is noise). */
  ratioPoints: 0.01,
  /** Distinct values, both counted exactly: a fifth. */
  distinctRelative: 0.2,
  /** Distinct values, either one estimated: half (DuckDB's estimate was 30% off at 10k values here). */
  distinctEstimatedRelative: 0.5,
  /** Ignore distinct counts that move by fewer values than this (3 to 5 statuses is a change worth a check, not a diff). */
  distinctAbsolute: 10,
  /** A column with at least this share of distinct values is mostly unique (ids, timestamps, e-mails)... */
  mostlyUnique: 0.5,
  /** ...and its share moving by this much is a change (e-mails 99% distinct, then 60%: a default value appeared). */
  uniquenessPoints: 0.1,
  /** The mean of a numeric column: a quarter of its previous value. */
  meanRelative: 0.25,
} as const;

export const profileKey = (outputPrefix: string) => `${outputPrefix}profile.json`;

/** A stored profile, if there is one of this version at `key`. */
export async function readProfile(store: ObjectStore, key: string, log: Logger): Promise<ProfileDocument | undefined> {
  let text: string;
  try {
    const { body } = await store.read(key);
    text = Buffer.concat(await body.toArray()).toString("utf8");
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
  const document = JSON.parse(text) as ProfileDocument;
  if (document.version === PROFILE_VERSION) return document;
  log.warn("the earlier profile is of another version: no diff", { key: `${store.url}/${key}`, version: document.version });
  return undefined;
}

const pct = (ratio: number) => `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.01 ? 2 : 1)}%`;

function relativeChange(before: number, after: number): number {
  return before === 0 ? (after === 0 ? 0 : Infinity) : Math.abs(after - before) / Math.abs(before);
}

/** The changes from `before` to `after` above THRESHOLDS, dataset first, then column by column, then checks. */
export function diffProfiles(before: ProfileDocument, after: Pick<ProfileDocument, "rows" | "columns" | "duplicates" | "checks">): ProfileChange[] {
  const changes: ProfileChange[] = [];
  if (relativeChange(before.rows, after.rows) >= THRESHOLDS.rowsRelative) changes.push({ metric: "rows", before: before.rows, after: after.rows, message: `rows ${before.rows} -> ${after.rows}` });
  const keysBefore = before.duplicates.keys?.duplicatedKeys ?? 0;
  const keysAfter = after.duplicates.keys?.duplicatedKeys ?? 0;
  if (keysBefore !== keysAfter && (keysBefore === 0 || keysAfter === 0 || relativeChange(keysBefore, keysAfter) >= THRESHOLDS.rowsRelative)) {
    changes.push({ metric: "duplicateKeys", before: keysBefore, after: keysAfter, message: `duplicated keys ${keysBefore} -> ${keysAfter}` });
  }
  for (const [name, was] of Object.entries(before.columns)) {
    if (!after.columns[name]) changes.push({ metric: "removed", column: name, before: was.type, after: null, message: `column ${name} (${was.type}) is gone` });
  }
  // The mean of a key column (ids) moves with the ids a partition happens to hold: not a change.
  const key = new Set(after.duplicates.keys?.columns ?? []);
  for (const [name, now] of Object.entries(after.columns)) {
    const was = before.columns[name];
    if (!was) changes.push({ metric: "added", column: name, before: null, after: now.type, message: `column ${name} (${now.type}) is new` });
    else changes.push(...columnChanges(name, was, now, key.has(name)));
  }
  for (const check of after.checks) {
    const was = before.checks.find((c) => c.name === check.name);
    if (was && was.status !== check.status) changes.push({ metric: "check", check: check.name, before: was.status, after: check.status, message: `check ${check.name} ${was.status} -> ${check.status}` });
  }
  return changes;
}

function columnChanges(column: string, was: ColumnProfile, now: ColumnProfile, isKey: boolean): ProfileChange[] {
  const changes: ProfileChange[] = [];
  const change = (metric: string, before: number | string | null, after: number | string | null, message: string) => changes.push({ metric, column, before, after, message });
  if (was.type !== now.type) change("type", was.type, now.type, `type of ${column} ${was.type} -> ${now.type}`);
  if (Math.abs(now.nullRatio - was.nullRatio) >= THRESHOLDS.ratioPoints) change("nullRatio", was.nullRatio, now.nullRatio, `null % of ${column} ${pct(was.nullRatio)} -> ${pct(now.nullRatio)}`);
  const misfit = (p: ColumnProfile) => (p.notFit ?? 0) / Math.max(p.count, 1);
  if (Math.abs(misfit(now) - misfit(was)) >= THRESHOLDS.ratioPoints) change("notFit", misfit(was), misfit(now), `values of ${column} not fitting ${now.declaredType} ${pct(misfit(was))} -> ${pct(misfit(now))}`);
  // A mostly-unique column's distinct count follows the rows: its share of distinct values is what moves.
  const uniqueness = (p: ColumnProfile) => (p.count ? Math.min(p.distinct / p.count, 1) : 0);
  if (uniqueness(was) >= THRESHOLDS.mostlyUnique && uniqueness(now) >= THRESHOLDS.mostlyUnique) {
    if (Math.abs(uniqueness(now) - uniqueness(was)) >= THRESHOLDS.uniquenessPoints) {
      change("uniqueness", uniqueness(was), uniqueness(now), `distinct share of ${column}'s values ${pct(uniqueness(was))} -> ${pct(uniqueness(now))}`);
    }
  } else {
    const threshold = was.distinctExact && now.distinctExact ? THRESHOLDS.distinctRelative : THRESHOLDS.distinctEstimatedRelative;
    if (Math.abs(now.distinct - was.distinct) >= THRESHOLDS.distinctAbsolute && relativeChange(was.distinct, now.distinct) >= threshold) {
      change("distinct", was.distinct, now.distinct, `distinct values of ${column} ${was.distinct} -> ${now.distinct}`);
    }
  }
  if (!isKey && typeof was.mean === "number" && typeof now.mean === "number" && relativeChange(was.mean, now.mean) >= THRESHOLDS.meanRelative) {
    change("mean", was.mean, now.mean, `mean of ${column} ${round(was.mean)} -> ${round(now.mean)}`);
  }
  return changes;
}

const round = (n: number) => Number(n.toPrecision(4));
