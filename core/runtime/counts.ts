import type { Counts } from "./contract";

/** Adds each count of `from` to `into`: a run's totals over the parts it worked on (partitions, agencies). */
export function addCounts(into: Counts, from: Counts): Counts {
  for (const [name, value] of Object.entries(from)) into[name] = (into[name] ?? 0) + value;
  return into;
}
