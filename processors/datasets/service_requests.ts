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
