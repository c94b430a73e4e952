/**
 * THE monitored sources of freshness_monitor: the one place they are declared, reviewed like code.
 * Adding a source is adding an entry here; `--source` picks among these names, and tests pass
 * their own list to the processor instead. Thresholds are dbt's: `<n>m`, `<n>h` or `<n>d`, and a
 * source is stale once its lag is over them. Buckets are the deployment's (the jobs' schedules);
 * `--bucket-map etl-lake=file:...` reads one from elsewhere (the demo's directories).
 */
import { UsageError } from "../../../core/errors";
import { unsafeKeyReason, unsafePrefixReason } from "../../../core/storage/object_key";
import { parseBucketMap } from "../../../core/storage/bucket_map";
import { parseLocation, type Location } from "../../../core/storage/object_store";
import { parseThreshold, thresholdSeconds, type FreshnessCriteria } from "./status";

interface Declared {
  /** snake_case, unique: the `source` label of the gauges and the table part of dbt's unique_id `source.etl.<kind>.<name>`. */
  name: string;
  /** Who produces the data, for whoever is paged. */
  description: string;
  warnAfter: string;
  errorAfter: string;
}

/** The commit time of the dataset's newest partition (etl_partitions, else its `_manifest.json`). */
interface SilverPartitionSource extends Declared {
  kind: "silver_partition";
  dataset: string;
  bucket: string;
}

/** The LastModified of the newest object under the prefix: a folder (`a/b/`) or a key-name prefix (`a/_manifest`). */
interface S3PrefixSource extends Declared {
  kind: "s3_prefix";
  bucket: string;
  prefix: string;
  /**
   * The job that writes there: an empty prefix is `never delivered` while that job never
   * succeeded, and an error once it has (the data is gone). Without it, an empty prefix is an error.
   */
  producedBy?: string;
}

/** max(column) of a table; the column must be timestamptz. */
interface TableSource extends Declared {
  kind: "table";
  table: string;
  column: string;
}

/** finished_at of the job's last succeeded run in etl_job_runs (dry runs aside; any shard). */
interface JobSuccessSource extends Declared {
  kind: "job_success";
  job: string;
}

export type FreshnessSource = SilverPartitionSource | S3PrefixSource | TableSource | JobSuccessSource;

export const FRESHNESS_SOURCES: readonly FreshnessSource[] = [
  {
    name: "silver_service_requests",
    description: "bronze_to_silver builds service_requests daily at 01:30 UTC",
    kind: "silver_partition",
    dataset: "service_requests",
    bucket: "etl-lake",
    // A day between builds, plus two hours for a slow or retried one; the second missed day pages.
    warnAfter: "26h",
    errorAfter: "50h",
  },
  {
    name: "silver_partner_payments",
    description: "bronze_to_silver builds partner_payments daily from the partners' CSV drops",
    kind: "silver_partition",
    dataset: "partner_payments",
    bucket: "etl-lake",
    warnAfter: "26h",
    errorAfter: "50h",
  },
  {
    name: "bronze_service_requests",
    description: "ingest_api pulls service_requests hourly at :15",
    kind: "s3_prefix",
    bucket: "etl-lake",
    prefix: "bronze/service_requests/",
    producedBy: "ingest_api",
    // Two missed hourly pulls warn, six page: the API's own outages rarely last longer.
    warnAfter: "2h",
    errorAfter: "6h",
  },
  {
    name: "attachments_archive",
    description: "get_s3_files copies agency 10's attachments nightly at 02:00 UTC and rewrites its manifests",
    kind: "s3_prefix",
    bucket: "etl-attachments-archive",
    // The manifests only (`_manifest.csv`, `_manifest.<i>-of-<n>.csv`): listing the whole archive
    // every 15 minutes would be 1000 requests per million attachments.
    prefix: "agency_id=10/_manifest",
    producedBy: "get_s3_files",
    warnAfter: "26h",
    errorAfter: "50h",
  },
  {
    name: "attachment_uploads",
    description: "the application records every upload in attachment.created_at",
    kind: "table",
    table: "attachment",
    column: "created_at",
    // Agencies upload every working day; a long weekend stays under three days.
    warnAfter: "1d",
    errorAfter: "4d",
  },
  {
    name: "ingest_api_success",
    description: "ingest_api's hourly run (service_requests) succeeds",
    kind: "job_success",
    job: "ingest_api",
    warnAfter: "2h",
    errorAfter: "6h",
  },
  {
    name: "get_s3_files_success",
    description: "get_s3_files's nightly run (agency 10, four shards) succeeds",
    kind: "job_success",
    job: "get_s3_files",
    warnAfter: "26h",
    errorAfter: "50h",
  },
];

/** The source's thresholds in dbt's criteria shape. */
export function criteriaOf(source: FreshnessSource): FreshnessCriteria {
  return { warn_after: parseThreshold(source.warnAfter), error_after: parseThreshold(source.errorAfter) };
}

const NAME = /^[a-z][a-z0-9_]*$/;
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * What is wrong with a list of declarations, one line per problem (empty when nothing is): a
 * malformed declaration is a bug in this file, found by the tests and refused at start.
 */
export function declarationProblems(sources: readonly FreshnessSource[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    const problem = (text: string) => problems.push(`source ${source.name}: ${text}`);
    if (!NAME.test(source.name)) problem("name must be snake_case");
    if (seen.has(source.name)) problem("name is declared twice");
    seen.add(source.name);
    try {
      const criteria = criteriaOf(source);
      if (thresholdSeconds(criteria.warn_after) > thresholdSeconds(criteria.error_after)) problem(`warnAfter ${source.warnAfter} is longer than errorAfter ${source.errorAfter}`);
    } catch (error) {
      problem((error as Error).message);
    }
    switch (source.kind) {
      case "silver_partition":
        if (!NAME.test(source.dataset)) problem("dataset must be a dataset name");
        break;
      case "s3_prefix": {
        const reason = source.prefix === "" || source.prefix.endsWith("/") ? unsafePrefixReason(source.prefix) : unsafeKeyReason(source.prefix);
        if (reason) problem(`prefix ${reason}`);
        break;
      }
      case "table":
        if (!source.table.split(".").every((part) => IDENTIFIER.test(part)) || source.table.split(".").length > 2) problem("table must be [schema.]name in lower case");
        if (!IDENTIFIER.test(source.column)) problem("column must be a lower-case identifier");
        break;
      case "job_success":
        if (!NAME.test(source.job)) problem("job must be a job name");
        break;
    }
    if ("bucket" in source) {
      try {
        parseLocation(source.bucket);
      } catch (error) {
        problem(`bucket ${(error as Error).message}`);
      }
    }
  }
  return problems;
}

/** The sources `--source a,b` names, in declaration order; all of them without the flag. */
export function selectSources(sources: readonly FreshnessSource[], names: string | undefined): FreshnessSource[] {
  if (names === undefined) return [...sources];
  const wanted = new Set(names.split(","));
  const unknown = [...wanted].filter((name) => !sources.some((source) => source.name === name));
  if (unknown.length) throw new UsageError(`--source ${unknown.join(",")}: no such source; declared: ${sources.map((s) => s.name).join(", ")}`);
  return sources.filter((source) => wanted.has(source.name));
}

/** `--bucket-map` (core/storage/bucket_map.ts) over the buckets the sources declare. */
export function parseSourceBucketMap(text: string | undefined, sources: readonly FreshnessSource[]): Map<string, Location> {
  return parseBucketMap(text, sources.flatMap((source) => ("bucket" in source ? [source.bucket] : [])));
}
