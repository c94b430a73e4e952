import { defineDataset } from "../../core/dataset";

/**
 * Service requests residents file with an agency, pulled from the application's API by
 * ingest_api (NDJSON in bronze), updated in place: the latest `updated_at` of a request wins.
 */
export const DATASET = defineDataset({
  name: "service_requests",
  description: "Service requests filed with agencies, from the application API",
  format: "ndjson",
  columns: {
    id: { type: "integer", required: true, description: "request id in the application" },
    agency_id: { type: "integer", required: true, description: "agency the request was filed with" },
    title: { type: "string", required: true, description: "short text the resident typed" },
    status: { type: "string", required: true, lowercase: true, oneOf: ["open", "in_progress", "closed"], description: "open, in_progress or closed" },
    reporter_email: { type: "string", lowercase: true, email: true, description: "who filed it, if they left an address" },
    priority: { type: "integer", description: "1 (urgent) to 5" },
    created_at: { type: "timestamp", required: true, description: "when it was filed (UTC)" },
    updated_at: { type: "timestamp", required: true, description: "last change (UTC); the newest version of a request wins" },
  },
  primaryKey: ["id"],
  versionColumn: "updated_at",
  enrich: [{ lookup: "agency", key: "agency_id", columns: { agency_name: "name", agency_active: "is_active" } }],
  // profile_dataset evaluates these on every profile of a silver partition.
  checks: [
    { kind: "schema", severity: "error" },
    { kind: "row_count_between", min: 1, max: 50_000_000, severity: "error" },
    { kind: "unique", column: "id", severity: "error" },
    { kind: "in_set", column: "status", values: ["open", "in_progress", "closed"], severity: "error" },
    { kind: "between", column: "priority", min: 1, max: 5, severity: "warn", mostly: 0.99 },
    // Requests of an agency the application does not know yet: a few are expected, many mean the agency table is stale.
    { kind: "not_null", column: "agency_name", severity: "warn", mostly: 0.95 },
    { kind: "freshness", column: "updated_at", maxAgeHours: 48, severity: "warn" },
  ],
  api: {
    path: "/v1/service-requests",
    baseUrlEnv: "SERVICE_API_URL",
    tokenEnv: "SERVICE_API_TOKEN",
    itemsPath: "data",
    pagination: { style: "cursor", cursorPath: "next_cursor", cursorParam: "cursor" },
    pageSize: 500,
    pageSizeParam: "limit",
    // Requests committed up to 10 minutes late (long transactions in the application) are still
    // picked up; the overlap's duplicates are removed in silver by id.
    incremental: { field: "updated_at", param: "updated_since", lagSeconds: 600, sorted: true },
  },
});
