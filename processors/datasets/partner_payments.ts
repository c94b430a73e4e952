import { defineDataset } from "../../core/dataset";

/**
 * Payments partners report for agencies, delivered as CSV files into bronze (decrypted and
 * unzipped by the file_processing lane). A corrected payment is re-sent with a later `reported_at`.
 */
export const DATASET = defineDataset({
  name: "partner_payments",
  description: "Payments partners report per agency, delivered as CSV",
  format: "csv",
  columns: {
    payment_id: { type: "string", required: true, description: "the partner's payment reference" },
    partner: { type: "string", required: true, lowercase: true, description: "partner code" },
    agency_id: { type: "integer", required: true, description: "agency paid" },
    amount: { type: "number", required: true, description: "amount in the currency below" },
    currency: { type: "string", required: true, oneOf: ["EUR", "USD", "GBP"], description: "ISO 4217 code" },
    paid_on: { type: "date", required: true, description: "value date" },
    payer_email: { type: "string", lowercase: true, email: true, description: "payer's address, if given" },
    reported_at: { type: "timestamp", required: true, description: "when the partner reported it; the latest report wins" },
  },
  primaryKey: ["partner", "payment_id"],
  versionColumn: "reported_at",
  enrich: [{ lookup: "agency", key: "agency_id", columns: { agency_name: "name", agency_active: "is_active" } }],
  // profile_dataset evaluates these on every profile of a silver partition.
  checks: [
    { kind: "schema", severity: "error" },
    { kind: "row_count_between", min: 1, severity: "error" },
    { kind: "unique", columns: ["partner", "payment_id"], severity: "error" },
    { kind: "in_set", column: "currency", values: ["EUR", "USD", "GBP"], severity: "error" },
    { kind: "regex", column: "payment_id", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", severity: "warn" },
    // Refunds are reported as negative amounts: a few are normal.
    { kind: "between", column: "amount", min: 0, severity: "warn", mostly: 0.99 },
    { kind: "not_null", column: "agency_name", severity: "warn", mostly: 0.99 },
    // Partners report daily, value dates lag a business day or two: a week is late.
    { kind: "freshness", column: "reported_at", maxAgeHours: 168, severity: "warn" },
  ],
});
