import { createReadStream, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "../../../core/dataset";
import type { Logger } from "../../../core/log";
import { writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import type { BronzeInput } from "./bronze_inputs";
import type { UnreadableInput } from "./bronze_read";
import { UNREADABLE_FILE, type CheckedCounts, type DuckSql, type TransformCounts } from "./transform";

export interface SilverManifest {
  dataset: string;
  partition: string;
  run_id: string;
  committed_at: string;
  fingerprint: string;
  files: Array<{ key: string; rows: number; bytes: number }>;
  /** The rejects file: `rows` invalid rows, then a line per rejected input. */
  rejects: { key: string; rows: number } | null;
  rows: { in: number; out: number; rejected: number; duplicates: number };
  /** Every bronze file the partition was built from, the rejected ones included (the fingerprint covers them). */
  inputs: BronzeInput[];
  /** The inputs left out because they cannot be read, with DuckDB's reason. */
  rejected_inputs: Array<{ key: string; rule: string; reason: string }>;
  columns: Array<{ name: string; type: string }>;
}

// Parts of about 256 MiB: large enough for scans, small enough to upload and retry one at a time.
const PART_BYTES = "256MB";

export function silverPrefix(dataset: Dataset, partitionDate: string): string {
  return `silver/${dataset.name}/dt=${partitionDate}/`;
}

export interface PartitionFiles {
  parts: Array<{ path: string; rows: number }>;
  rejects?: string;
  /** Rows in the parts: the rows out. */
  rows: number;
}

/**
 * Writes `silver` (zstd Parquet parts) and `rejects` (NDJSON) into `dir`. The parts are not sorted:
 * on 1M rows sorting by key cost 1.2 s (one integer key) to 1.8 s (two strings) of 3-5 s, and the
 * 10M-row sort held the run's peak memory; readers that want an order ask for it.
 */
export async function writePartitionFiles(db: DuckSql, dir: string, counts: CheckedCounts & { unreadable: number }): Promise<PartitionFiles> {
  const partsDir = join(dir, "parts");
  await db.run(`copy silver to '${partsDir}' (format parquet, compression zstd, file_size_bytes '${PART_BYTES}', filename_pattern 'part-{i}')`);
  const parts: PartitionFiles["parts"] = [];
  for (const file of readdirSync(partsDir).filter((f) => f.endsWith(".parquet")).sort()) {
    const path = join(partsDir, file);
    // From the footer: no data is read.
    const rows = Number((await db.runAndReadAll(`select count(*)::double as n from read_parquet('${path}')`)).getRowObjects()[0]!.n);
    parts.push({ path, rows });
  }
  const rows = parts.reduce((sum, p) => sum + p.rows, 0);
  if (!counts.rejected && !counts.unreadable) return { parts, rows };
  const rejects = join(dir, "_rejects.ndjson");
  await db.run(`copy rejects to '${rejects}' (format json)`);
  return { parts, rejects, rows };
}

/**
 * Publishes a partition atomically for readers: the run's files under `<partition>/<run>/`
 * first, `_manifest.json` (what readers follow) last, and only then removes the folders of
 * earlier runs. A crash before the manifest leaves the previous partition as it was; what the
 * crashed run wrote is removed by the next run over the partition (leftovers.ts). A run that
 * lost its lease (`leaseLost` aborted: another run may own the partition now) writes no manifest.
 */
export async function publishPartition(o: {
  db: DuckSql;
  store: ObjectStore;
  dataset: Dataset;
  partitionDate: string;
  runId: string;
  files: PartitionFiles;
  counts: TransformCounts;
  inputs: BronzeInput[];
  unreadable: UnreadableInput[];
  fingerprint: string;
  leaseLost?: AbortSignal;
  log: Logger;
}): Promise<SilverManifest> {
  const prefix = silverPrefix(o.dataset, o.partitionDate);
  const runPrefix = `${prefix}${o.runId}/`;
  const upload = async (path: string, key: string, contentType: string) => {
    const bytes = statSync(path).size;
    await o.store.write(key, createReadStream(path), { size: bytes, contentType });
    return bytes;
  };
  const files: SilverManifest["files"] = [];
  for (const [i, { path, rows }] of o.files.parts.entries()) {
    const key = `${runPrefix}part-${String(i).padStart(5, "0")}.parquet`;
    files.push({ key, rows, bytes: await upload(path, key, "application/vnd.apache.parquet") });
  }
  const rejectsKey = o.files.rejects ? `${runPrefix}_rejects.ndjson` : undefined;
  if (o.files.rejects && rejectsKey) await upload(o.files.rejects, rejectsKey, "application/x-ndjson");

  const columns = (await o.db.runAndReadAll("describe silver")).getRowObjects().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
  const manifest: SilverManifest = {
    dataset: o.dataset.name,
    partition: o.partitionDate,
    run_id: o.runId,
    committed_at: new Date().toISOString(),
    fingerprint: o.fingerprint,
    files,
    rejects: rejectsKey ? { key: rejectsKey, rows: o.counts.rejected } : null,
    rows: { in: o.counts.rowsIn, out: o.counts.rowsOut, rejected: o.counts.rejected, duplicates: o.counts.duplicates },
    inputs: o.inputs,
    rejected_inputs: o.unreadable.map((u) => ({ key: u.key, rule: UNREADABLE_FILE, reason: u.reason })),
    columns,
  };
  const body = Buffer.from(JSON.stringify(manifest, null, 2) + "\n");
  o.leaseLost?.throwIfAborted();
  await writeBytes(o.store, `${prefix}_manifest.json`, body, "application/json");

  let removed = 0;
  for await (const object of o.store.list(prefix)) {
    // _profile/ is profile_dataset's: the partition's last profile, which the next one replaces and the next day's diffs against.
    if (object.key.startsWith(runPrefix) || object.key === `${prefix}_manifest.json` || object.key.startsWith(`${prefix}_profile/`)) continue;
    await o.store.delete(object.key);
    removed++;
  }
  if (removed) o.log.info("removed the partition's earlier files", { removed });
  return manifest;
}
