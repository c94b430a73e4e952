import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Dataset } from "../../../core/dataset";
import type { Counts } from "../../../core/runtime/job";
import { readUnlessMissing } from "../../../core/db/missing_table";
import { makeWorkDirectory, sweepAbandonedWorkDirectories } from "../../../core/runtime/work_directory";
import type { Logger } from "../../../core/log";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { AgencyRepository } from "../../../repositories/agencies";
import type { PartitionRepository } from "../../../repositories/partitions";
import { bronzePrefix, fingerprintInputs, listBronzeInputs, sameInputs, stageInputs } from "./bronze_inputs";
import { removeDeadRunLeftovers } from "./leftovers";
import { publishPartition, silverPrefix, writePartitionFiles } from "./publish";
import type { UnreadableInput } from "./bronze_read";
import { UNREADABLE_FILE, transformPartition, type DuckSql, type TransformCounts } from "./transform";

export interface BuildPartitionOptions {
  dataset: Dataset;
  /** The lake: bronze/ is read and silver/ written here. */
  store: ObjectStore;
  partitionDate: string;
  runId: string;
  partitions: PartitionRepository;
  agencies: AgencyRepository;
  /** Opens DuckDB with its spill directory in `tempDirectory` (core/db/duckdb.ts). */
  openDuckDB: (tempDirectory: string) => Promise<{ connection: DuckSql; close(): void }>;
  /** Rejected rows over this share of the rows read make the run partial (exit 3). */
  maxRejectRatio: number;
  /** Rebuild even when the inputs are those of the committed partition. */
  rebuild: boolean;
  /** Whether a run still holds a lease (core/ledger/lease.ts holdsLiveLease): what a dead one left is removed. */
  isLive: (runId: string) => Promise<boolean>;
  /** Aborts when the run has lost its lease on the partition (another run may own it now): it then writes no manifest. */
  leaseLost?: AbortSignal;
  dryRun: boolean;
  log: Logger;
  counts: Counts;
}

/**
 * Builds one silver partition from its bronze partition: first it removes what killed runs left
 * (in the partition and in $TMPDIR); then skipped when the inputs' fingerprint is the committed
 * one (and its manifest is there), else staged, transformed in DuckDB, written as Parquet and
 * published, then recorded in etl_partitions. A bronze file DuckDB cannot read is left out,
 * named in the rejects and the manifest, and makes the run partial; with none readable the
 * committed partition is kept (keepCommitted). A dry run transforms and
 * counts but writes and removes nothing.
 */
export async function buildSilverPartition(o: BuildPartitionOptions): Promise<Counts> {
  const { dataset, store, log, counts } = o;
  if (!o.dryRun) await removeLeftovers(o);
  const { inputs, ignored } = await listBronzeInputs(store, dataset, o.partitionDate);
  if (ignored.length) log.warn("bronze files of no format this job reads were left out", { files: ignored });
  counts.inputs = inputs.length;
  if (!inputs.length) {
    log.warn("no bronze files for this partition: nothing to build", { prefix: `${store.url}/${bronzePrefix(dataset, o.partitionDate)}` });
    return counts;
  }
  const fingerprint = fingerprintInputs(inputs);
  const committed = await readUnlessMissing(o.dryRun, () => o.partitions.findPartition(dataset.name, o.partitionDate), undefined);
  if (!o.rebuild && committed && (await sameInputs(store, inputs, committed)) && (await store.head(committed.manifestKey))) {
    log.info("the partition's inputs are unchanged since run " + committed.runId + ": nothing to do", { manifest: `${store.url}/${committed.manifestKey}` });
    return Object.assign(counts, { unchanged: 1, rowsOut: committed.rowsOut });
  }

  const work = await makeWorkDirectory("silver");
  let duck: { connection: DuckSql; close(): void } | undefined;
  try {
    const files = await stageInputs(store, inputs, work);
    duck = await o.openDuckDB(join(work, "spill"));
    const { counts: checked, unreadable } = await transformPartition(duck.connection, dataset, files, async ({ agency }) => ({ agency: await o.agencies.findAgencies(agency) }));
    const ratio = checked.rowsIn ? checked.rejected / checked.rowsIn : 0;
    const overRatio = ratio > o.maxRejectRatio;
    if (overRatio) log.warn("rejected rows over --max-reject-ratio", { rejected: checked.rejected, rowsIn: checked.rowsIn, ratio: Math.round(ratio * 10_000) / 10_000, max: o.maxRejectRatio });
    // A file left out is rows lost that no ratio can weigh: always partial (exit 3).
    Object.assign(counts, { rejectedInputs: unreadable.length, failed: (overRatio ? checked.rejected : 0) + unreadable.length });
    const outcome = (rowsOut: number): TransformCounts => ({ ...checked, rowsOut, duplicates: checked.rowsIn - checked.rejected - rowsOut });
    if (unreadable.length === files.length) return keepCommitted(o, unreadable, committed?.runId, Object.assign(counts, outcome(0)));
    if (unreadable.length) log.warn("bronze files that cannot be read were left out of the partition", { files: unreadable });
    if (o.dryRun) {
      const [row] = (await duck.connection.runAndReadAll("select count(*)::double as n from silver")).getRowObjects();
      return Object.assign(counts, outcome(Number(row!.n)));
    }

    const written = await writePartitionFiles(duck.connection, work, { ...checked, unreadable: unreadable.length });
    const result = outcome(written.rows);
    Object.assign(counts, result);
    const manifest = await publishPartition({ db: duck.connection, store, dataset, partitionDate: o.partitionDate, runId: o.runId, files: written, counts: result, inputs, unreadable, fingerprint, leaseLost: o.leaseLost, log });
    await o.partitions.commitPartition({
      dataset: dataset.name,
      partitionDate: o.partitionDate,
      fingerprint,
      inputs,
      rowsIn: result.rowsIn,
      rowsOut: result.rowsOut,
      rowsRejected: result.rejected,
      runId: o.runId,
      manifestKey: `${silverPrefix(dataset, o.partitionDate)}_manifest.json`,
    });
    log.info("partition published", { manifest: `${store.url}/${silverPrefix(dataset, o.partitionDate)}_manifest.json`, files: manifest.files.length, rows: manifest.rows });
    return counts;
  } finally {
    duck?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * No input readable: publishing would replace the committed partition with an empty one, so one
 * bad re-delivery would wipe what readers see. The partition stays as it is and the fingerprint
 * is not recorded (a rerun after the file is fixed rebuilds); the rejects, which no manifest can
 * point at, are logged one event each.
 */
function keepCommitted(o: BuildPartitionOptions, unreadable: UnreadableInput[], committedRun: string | undefined, counts: Counts): Counts {
  for (const input of unreadable) o.log.warn("bronze input rejected", { event: "silver.rejected_input", file: input.key, rule: UNREADABLE_FILE, reason: input.reason });
  const kept = committedRun ? `the committed partition (run ${committedRun}) is kept as it is` : "nothing is published";
  o.log.warn(`no bronze file of the partition can be read: ${kept}`, { prefix: `${o.store.url}/${bronzePrefix(o.dataset, o.partitionDate)}`, files: unreadable.length });
  return counts;
}

/** What killed runs left: their files in the partition, their work directories in $TMPDIR. */
async function removeLeftovers(o: BuildPartitionOptions): Promise<void> {
  await removeDeadRunLeftovers({ store: o.store, prefix: silverPrefix(o.dataset, o.partitionDate), runId: o.runId, isLive: o.isLive, log: o.log });
  await sweepAbandonedWorkDirectories(o.log);
}
