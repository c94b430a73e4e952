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
});
