import type { Dataset } from "../../../core/dataset";
import { UsageError } from "../../../core/errors";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { Logger } from "../../../core/log";
import { NothingToProfileError, partitionInputs, prefixInputs, type ProfileInputs } from "./inputs";
import { profileKey, readProfile } from "./profile_diff";
import { earlierPartitionProfiles } from "./trend";

const DAY_MS = 86_400_000;

/** What a run profiles, what freshness is measured against, and the profile it diffs with. */
export interface ProfileTarget {
  inputs: ProfileInputs;
  referenceTime: Date;
  previousProfileKey: string | undefined;
  /** The earlier profiles the page's trend shows (the previous one among them). */
  trendProfileKeys: string[];
}

/**
 * From the flags: with `prefix`, the files under it (diffed with the profile already at the
 * output); else the dataset's committed partition of `date` (default: the logical date's day),
 * diffed with the newest earlier partition's profile, its trend over the earlier partitions' profiles.
 */
export async function resolveProfileTarget(o: {
  store: ObjectStore;
  dataset: Dataset | undefined;
  /** The partition: --date, else the run's partitionDate (core/runtime/data_interval.ts). */
  date: string | undefined;
  prefix: string | undefined;
  outPrefix: string | undefined;
  logicalDate: Date | undefined;
}): Promise<ProfileTarget> {
  if (o.prefix !== undefined) {
    if (o.date) throw new UsageError("--date names a dataset's partition; with --prefix the files under the prefix are profiled: give one or the other");
    const inputs = await prefixInputs(o.store, o.prefix, o.outPrefix ?? `${o.prefix}_profile/`);
    const previous = profileKey(inputs.outputPrefix);
    return { inputs, referenceTime: o.logicalDate ?? new Date(), previousProfileKey: previous, trendProfileKeys: [previous] };
  }
  if (!o.dataset) throw new UsageError("give --dataset D (its silver partition is profiled) or --prefix P (the files under it are)");
  if (o.outPrefix !== undefined) throw new UsageError("--out-prefix applies with --prefix; a partition's profile goes to silver/<dataset>/dt=<date>/_profile/");
  const partitionDate = o.date;
  if (!partitionDate) throw new UsageError("give the partition with --date YYYY-MM-DD or --logical-date");
  // A past partition is judged at its day's end, so a backfilled profile's freshness means what it did that day.
  const dayEnd = Date.parse(`${partitionDate}T00:00:00Z`) + DAY_MS;
  const inputs = await partitionInputs(o.store, o.dataset, partitionDate);
  const earlier = await earlierPartitionProfiles(o.store, o.dataset, partitionDate);
  return { inputs, referenceTime: o.logicalDate ?? new Date(Math.min(Date.now(), dayEnd)), previousProfileKey: earlier[0], trendProfileKeys: earlier };
}

/**
 * Whether a committed partition has no profile yet, or one of an earlier build of it (its profile
 * names the manifest's run): a lookback profiles those again. "missing": the day was never committed.
 */
export async function partitionChangedSinceProfile(store: ObjectStore, dataset: Dataset, partitionDate: string, log: Logger): Promise<boolean | "missing"> {
  let inputs: ProfileInputs;
  try {
    inputs = await partitionInputs(store, dataset, partitionDate);
  } catch (error) {
    if (error instanceof NothingToProfileError) return "missing";
    throw error;
  }
  const profiled = await readProfile(store, profileKey(inputs.outputPrefix), log);
  return profiled?.source.manifest?.runId !== inputs.manifest?.runId;
}
