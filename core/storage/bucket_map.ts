import { UsageError } from "../errors";
import { parseLocation, type Location } from "./object_store";

/**
 * `--bucket-map etl-lake=file:.etl/demo/lake,...`: where to read a deployment's bucket from instead
 * (the demo's directories, a staging bucket). Each name must be one of `known`, the buckets the
 * deployment's declarations name (undefined: any name); `flag` is what the errors call it.
 */
export function parseBucketMap(text: string | undefined, known: Iterable<string> | undefined, flag = "--bucket-map"): Map<string, Location> {
  const map = new Map<string, Location>();
  if (text === undefined || text.trim() === "") return map;
  const declared = known && new Set(known);
  for (const entry of text.split(",")) {
    const equals = entry.indexOf("=");
    const [name, location] = [entry.slice(0, equals).trim(), entry.slice(equals + 1).trim()];
    if (equals <= 0 || !location) throw new UsageError(`${flag} ${JSON.stringify(entry)} must be <bucket>=<bucket or file:dir>`);
    if (declared && !declared.has(name)) throw new UsageError(`${flag} ${name}: no declared bucket of that name; they are ${[...declared].sort().join(", ") || "none"}`);
    try {
      map.set(name, parseLocation(location));
    } catch (error) {
      throw new UsageError(`${flag} ${name}: ${(error as Error).message}`);
    }
  }
  return map;
}
