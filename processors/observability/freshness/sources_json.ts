/**
 * dbt's `sources.json` artefact (schema https://schemas.getdbt.com/dbt/sources/v3.json), as
 * `dbt source freshness` writes it to `target/sources.json`, so the tools that read dbt's
 * artefacts read ours. Only what that schema allows is in it: our own fields (`name`, `kind`,
 * `detail`, a null `max_loaded_at`) stay in the freshness.source and freshness.result events.
 */
import { VERSION } from "../../../core/version";
import type { FreshnessCriteria, FreshnessResult, FreshnessThreshold } from "./status";

export const SOURCES_SCHEMA_VERSION = "https://schemas.getdbt.com/dbt/sources/v3.json";
/**
 * The dbt release whose published sources v3 schema the artefact follows (tests/fixtures/dbt/);
 * readers pick their parser by dbt_schema_version. The platform's own version is in `env`, where
 * dbt puts a run's custom variables (the schema allows no field of ours in `metadata`).
 */
export const DBT_VERSION = "1.11.6";
/** Where dbt writes it in a project: `--sources-json file:.` puts it where dbt would. */
export const SOURCES_JSON_KEY = "target/sources.json";

/**
 * dbt's own value for a source with no row: it takes the maximum as "0:00 January 1 year 1 UTC",
 * "infinitely long ago" (dbt-adapters, calculate_freshness), so the lag is huge and the status
 * error. The schema requires a string there.
 */
const NEVER_LOADED = new Date("0001-01-01T00:00:00.000Z");

/** How one source was measured, besides its result: for dbt's `timing` and `thread_id`. */
export interface MeasuredSource {
  result: FreshnessResult;
  startedAt: Date;
  completedAt: Date;
  /** Which of the concurrent measurements ran it, dbt's `Thread-<n>`. */
  threadId: string;
}

interface SourceFreshnessOutput {
  unique_id: string;
  max_loaded_at: string;
  snapshotted_at: string;
  max_loaded_at_time_ago_in_s: number;
  status: "pass" | "warn" | "error";
  criteria: { warn_after: FreshnessThreshold; error_after: FreshnessThreshold; filter: null };
  adapter_response: Record<string, never>;
  timing: Array<{ name: string; started_at: string; completed_at: string }>;
  thread_id: string;
  execution_time: number;
}

interface SourceFreshnessRuntimeError {
  unique_id: string;
  error: string;
  status: "runtime error";
}

export interface SourcesJson {
  metadata: { dbt_schema_version: string; dbt_version: string; generated_at: string; invocation_id: string; env: Record<string, string> };
  results: Array<SourceFreshnessOutput | SourceFreshnessRuntimeError>;
  elapsed_time: number;
}

/** The artefact of one run (`invocationId`: its run id); `elapsedTime` in seconds, as dbt's. */
export function sourcesArtefact(measured: readonly MeasuredSource[], o: { invocationId: string; generatedAt: Date; elapsedTime: number }): SourcesJson {
  return {
    // invocation_started_at is left out: the v3 schemas dbt published before 1.10 refuse it.
    metadata: { dbt_schema_version: SOURCES_SCHEMA_VERSION, dbt_version: DBT_VERSION, generated_at: o.generatedAt.toISOString(), invocation_id: o.invocationId, env: { ETL_PLATFORM_VERSION: VERSION } },
    results: measured.map(artefactResult),
    elapsed_time: o.elapsedTime,
  };
}

function artefactResult({ result, startedAt, completedAt, threadId }: MeasuredSource): SourceFreshnessOutput | SourceFreshnessRuntimeError {
  if (result.status === "runtime error") return { unique_id: result.unique_id, error: result.error ?? "could not be measured", status: "runtime error" };
  const maxLoadedAt = result.max_loaded_at ?? NEVER_LOADED.toISOString();
  return {
    unique_id: result.unique_id,
    max_loaded_at: maxLoadedAt,
    snapshotted_at: result.snapshotted_at,
    max_loaded_at_time_ago_in_s: result.max_loaded_at_time_ago_in_s ?? (Date.parse(result.snapshotted_at) - Date.parse(maxLoadedAt)) / 1000,
    // dbt's statuses are pass, warn and error: a source that never delivered is a warning there.
    status: result.status === "never delivered" ? "warn" : result.status,
    criteria: criteriaOf(result.criteria),
    adapter_response: {},
    timing: [{ name: "execute", started_at: startedAt.toISOString(), completed_at: completedAt.toISOString() }],
    thread_id: threadId,
    execution_time: result.execution_time,
  };
}

function criteriaOf(criteria: FreshnessCriteria): SourceFreshnessOutput["criteria"] {
  return { warn_after: criteria.warn_after, error_after: criteria.error_after, filter: null };
}
