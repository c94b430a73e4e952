import type { SilverManifest } from "../../data_pipeline/silver/publish";
import { UNREADABLE_FILE } from "../../data_pipeline/silver/transform";
import type { PartitionRejects } from "./profile_document";
import { quoteText, type ProfileSql } from "./relation";

/** The rejects file's lines (processors/data_pipeline/silver/transform.ts, view `rejects`). */
const REJECT_COLUMNS = `{'file': 'VARCHAR', 'rule': 'VARCHAR', 'column': 'VARCHAR', 'value': 'VARCHAR', 'row': 'JSON', 'detail': 'VARCHAR'}`;

/**
 * bronze_to_silver's rejects of the committed partition, by rule and column, most rows first,
 * each with `sampleRows` of its rows (by file and value). `path`: the rejects file on this
 * machine, when the manifest names one. The unreadable files are the manifest's rejected_inputs,
 * not rules, so the rules' rows add up to the manifest's rows.rejected.
 */
export async function summarizeRejects(db: ProfileSql, manifest: Pick<SilverManifest, "rejects" | "rows" | "rejected_inputs">, path: string | undefined, sampleRows: number): Promise<PartitionRejects> {
  const summary: PartitionRejects = { key: manifest.rejects?.key ?? null, rowsIn: manifest.rows.in, rows: manifest.rows.rejected, byRule: [], inputs: manifest.rejected_inputs ?? [] };
  if (!path) return summary;
  const lines = `(select * from read_json(${quoteText(path)}, format = 'newline_delimited', columns = ${REJECT_COLUMNS}) where rule <> ${quoteText(UNREADABLE_FILE)})`;
  const rules = (await db.runAndReadAll(`select rule, "column", count(*)::double as n from ${lines} group by all order by n desc, rule, "column"`)).getRowObjectsJson();
  const samples = sampleRows
    ? (await db.runAndReadAll(`select rule, "column", file, value, "row"::varchar as "row" from ${lines} qualify row_number() over (partition by rule, "column" order by file, value) <= ${sampleRows} order by file, value`)).getRowObjectsJson()
    : [];
  const same = (a: Record<string, unknown>, b: Record<string, unknown>) => a.rule === b.rule && a.column === b.column;
  summary.byRule = rules.map((r) => ({
    rule: String(r.rule),
    column: (r.column as string | null) ?? null,
    rows: Number(r.n),
    sample: samples.filter((s) => same(s, r)).map((s) => ({ file: (s.file as string | null) ?? null, value: (s.value as string | null) ?? null, row: typeof s.row === "string" ? (JSON.parse(s.row) as Record<string, unknown>) : null })),
  }));
  return summary;
}
