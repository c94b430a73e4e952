import { arg, kebabCase, type ArgValues } from "../core/runtime/args";
import type { JobContext } from "../core/runtime/context";
import { UsageError } from "../core/errors";
import { defineJob, type Counts } from "../core/runtime/job";
import { locationLabel, requireExists } from "../core/storage/object_store";
import { checkAgencies } from "../processors/observability/completeness/agencies";
import { checkFreshness } from "../processors/observability/freshness/check";
import { declaredBucketOpener } from "../processors/observability/freshness/probe";
import { FRESHNESS_SOURCES, declarationProblems, parseSourceBucketMap, selectSources } from "../processors/observability/freshness/sources";
import { SOURCES_JSON_KEY } from "../processors/observability/freshness/sources_json";
import { FreshnessRepository } from "../repositories/freshness";

const NAMES = /^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$/;

const ARGS = {
  source: arg.optionalText("check only these sources of processors/observability/freshness/sources.ts, a comma list (default: all)", { placeholder: "<name,...>", pattern: NAMES, patternHelp: "must be source names separated by commas" }),
  bucketMap: arg.optionalText("read a declared bucket from elsewhere, a comma list: etl-lake=file:.etl/demo/lake", { placeholder: "<bucket=location,...>" }),
  sourcesJson: arg.optional(arg.location(`also write dbt's sources.json artefact (schema sources/v3) to ${SOURCES_JSON_KEY} there, as dbt does in its project`)),
  agencyId: arg.optional(arg.integer("check get_s3_files's copy of this agency (with --destination-bucket) instead of the sources", { min: 1, placeholder: "<id>" })),
  allAgencies: arg.flag("check get_s3_files's copy of every active agency (with --destination-bucket), each under agency_id=<id>/"),
  destinationBucket: arg.optional(arg.location("get_s3_files's destination bucket or directory")),
  destinationPrefix: arg.keyPrefix("get_s3_files's destination prefix, ending in / (default: agency_id=<id>/)"),
  minRatio: arg.number("completeness under this share of the expected objects present fails the run (exit 3)", { min: 0, max: 1, default: 1 }),
  grace: arg.optionalText("attachments created less than this long ago are not expected yet, e.g. 26h (default: all are)", { placeholder: "<90m|26h|2d>", pattern: /^[1-9]\d{0,5}[mhd]$/, patternHelp: "must be a duration such as 90m, 26h or 2d" }),
  // Without an index on (agency_id, s3_key collate "C", id) each page scans and sorts the agency's
  // rows: on 1M, 352 ms a page of 5000, 621 ms a page of 20,000 (2.3x faster in all); with it,
  // 16 and 55 ms. Two pages of 20,000 in memory are about 8 MB.
  batchSize: arg.integer("attachments read from the database per page", { min: 1, max: 100_000, default: 20_000 }),
  reportTo: arg.optional(arg.location("write every missing, changed and unexpected key as CSV to completeness/agency_id=<id>/<run id>.csv there")),
};

export const JOB = defineJob({
  name: "freshness_monitor",
  description: "Each declared source's freshness against its thresholds (as dbt source freshness), or get_s3_files' completeness for an agency or every active one",
  lane: "observability",
  args: ARGS,
  schedules: {
    // Every 15 minutes: the tightest threshold declared is 2 hours.
    sources: { cron: "*/15 * * * *", timeZone: "UTC", args: {}, maxDurationSeconds: 600 },
    // Daily after get_s3_files' 02:00 run, every active agency; a day's uploads are due the next night.
    completeness: { cron: "0 5 * * *", timeZone: "UTC", args: { allAgencies: true, destinationBucket: "etl-attachments-archive", grace: "26h" }, maxDurationSeconds: 3600 },
  },
  // A completeness check, or a subset of the sources, pushes to a group of its own: a push
  // replaces its group's series of the same names, and must not erase the full check's.
  metricsGroup: (args): Record<string, string> =>
    args.allAgencies && args.destinationBucket
      ? { agency_id: "all", bucket: locationLabel(args.destinationBucket) }
      : args.agencyId !== undefined && args.destinationBucket
        ? { agency_id: String(args.agencyId), bucket: locationLabel(args.destinationBucket), prefix: args.destinationPrefix ?? `agency_id=${args.agencyId}/` }
        : { ...(args.source && { sources: args.source }), ...(args.bucketMap && { bucket_map: args.bucketMap }) },
  example: "--bucket-map etl-lake=file:.etl/demo/lake",
  run: (args, ctx) => (args.agencyId === undefined && !args.allAgencies && args.destinationBucket === undefined ? checkSources(args, ctx) : checkAgencies(args, ctx)),
});

async function checkSources(args: ArgValues<typeof ARGS>, ctx: JobContext): Promise<Counts> {
  const misplaced = (["destinationPrefix", "grace", "reportTo"] as const).find((key) => args[key] !== undefined);
  if (misplaced) throw new UsageError(`--${kebabCase(misplaced)} belongs to a completeness check: give --agency-id and --destination-bucket`);
  const problems = declarationProblems(FRESHNESS_SOURCES);
  if (problems.length) throw new Error(`processors/observability/freshness/sources.ts: ${problems.join("; ")}`);
  const sources = selectSources(FRESHNESS_SOURCES, args.source);
  const openStore = declaredBucketOpener(parseSourceBucketMap(args.bucketMap, FRESHNESS_SOURCES), ctx.objectStore);
  const artefact = args.sourcesJson && (await ctx.objectStore(args.sourcesJson));
  if (artefact) await requireExists(artefact, "--sources-json");
  // The only identifiers the repository reads: the declared tables and columns.
  const freshness = new FreshnessRepository(await ctx.db(), sources.flatMap((s) => (s.kind === "table" ? [{ table: s.table, column: s.column }] : [])));
  // A dry run writes nothing: the events, the gauges and the counts only.
  const sourcesJson = artefact && !ctx.dryRun ? { store: artefact, key: SOURCES_JSON_KEY, invocationId: ctx.runId } : undefined;
  return checkFreshness({ ...ctx, sources, probe: { freshness, openStore, signal: ctx.signal }, sourcesJson });
}

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
