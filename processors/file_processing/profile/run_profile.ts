import { createReadStream, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Dataset } from "../../../core/dataset";
import { errorMessage } from "../../../core/errors";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import type { Metrics } from "../../../core/metrics/metrics";
import { writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { makeWorkDirectory, sweepAbandonedWorkDirectories } from "../../../core/runtime/work_directory";
import { collectFailures } from "./check_failures";
import { checkAggregates, evaluateChecks, expectedColumns, failingRowsCondition, planChecks } from "./checks";
import { countValues, scanColumns, type ColumnScanOptions } from "./column_profile";
import { findDuplicatedValues, profileDuplicates, type DuplicatedValues } from "./duplicates";
import { stageFiles, type ProfileInputs } from "./inputs";
import { PROFILE_VERSION, type ProfileDiff, type ProfileDocument } from "./profile_document";
import { diffProfiles, profileKey, readProfile } from "./profile_diff";
import { histogramColumns } from "./histogram";
import { summarizeRejects } from "./rejects";
import { readProfiles, trendOf } from "./trend";
import { createProfiledRelation, type ProfiledColumn, type ProfileSql, type RelationOptions } from "./relation";
import { renderProfileHtml } from "./render_html";
import { publishProfileGauges } from "./profile_gauges";

export interface ProfileRunOptions extends ColumnScanOptions {
  store: ObjectStore;
  inputs: ProfileInputs;
  /** Whose types, key and checks apply; files may be profiled without one. */
  dataset?: Dataset;
  /** The profile the diff compares with: the previous partition's, or the one already at the output. */
  previousProfileKey: string | undefined;
  /** The earlier profiles the trend shows (profile.html): the last partitions', or the one at the output. */
  trendProfileKeys?: readonly string[];
  /** What freshness checks measure against. */
  referenceTime: Date;
  /** Failing rows kept in profile.json per failing check. */
  sampleRows: number;
  /** Opens DuckDB with its spill directory in `tempDirectory` (core/db/duckdb.ts). */
  openDuckDB: (tempDirectory: string) => Promise<{ connection: ProfileSql; close(): void }>;
  runId: string;
  dryRun: boolean;
  log: Logger;
  metrics: Metrics;
  counts: Counts;
}

// Rejected rows kept per rule in profile.json: the page shows them all; the rejects file has every one.
const REJECT_SAMPLE_ROWS = 5;

// DuckDB's messages when a later value of a CSV or JSON file does not fit the type it detected from a sample.
const DETECTION_FAILED = /Conversion Error|Could not convert|CSV Error|Invalid Input Error.*(JSON|type)/i;

/**
 * Profiles the inputs in DuckDB: text files parsed once into a table; one scan per 100 columns for
 * the column statistics and the checks' counts; one per 60 for the top values (and the exact
 * distinct counts of the columns of few values); count(distinct) for the columns up to the exact
 * bound; one grouping for the key's and the unique checks' duplicates (and the duplicate rows among
 * them). Then it evaluates the dataset's checks, diffs against the previous profile, and writes, unless a dry run:
 * `failures/<check>.parquet` for each failing row check, then `profile.json` and `profile.html`,
 * then removes failures files of checks that no longer fail. Its work directory (the staged files,
 * DuckDB's spill) is named for its process (core/runtime/work_directory.ts): a run removes those killed
 * runs left.
 */
export async function runProfile(o: ProfileRunOptions): Promise<Counts> {
  const { store, inputs, dataset, log, counts } = o;
  // What killed runs (of any job, on this host) left in $TMPDIR: staged inputs, DuckDB's spill.
  if (!o.dryRun) await sweepAbandonedWorkDirectories(log);
  const work = await makeWorkDirectory("profile");
  let duck: { connection: ProfileSql; close(): void } | undefined;
  try {
    await mkdir(join(work, "files"));
    await mkdir(join(work, "failures"));
    const files = await stageFiles(store, inputs.keys, join(work, "files"));
    duck = await o.openDuckDB(join(work, "spill"));
    const db = duck.connection;
    await db.run("set TimeZone = 'UTC'");
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await step();
      } finally {
        timings[name] = Math.round(performance.now() - started);
      }
    };

    const columns = await timed("read", () => readInputs(db, { files, format: inputs.format, dataset, emptyColumns: inputs.manifest?.columns }, log));
    const planned = dataset ? planChecks(dataset, columns, inputs.partition !== null) : [];
    const main = await timed("columns", () => scanColumns(db, columns, checkAggregates(planned)));
    await timed("values", () => countValues(db, columns, main, o));
    await timed("histograms", () => histogramColumns(db, columns, main));

    const present = (names: readonly string[]) => names.every((n) => columns.some((c) => c.name === n));
    const key = dataset && present(dataset.primaryKey) ? [...dataset.primaryKey] : undefined;
    const uniqueChecks = planned.filter((p) => p.check.kind === "unique" && !p.skipped && !p.missing);
    const sets = [...(key ? [key] : []), ...uniqueChecks.map((p) => p.columns.map((c) => c.name))];
    const duplicatedSets = await timed("duplicates", () => findDuplicatedValues(db, sets));
    const bySet = (names: readonly string[]) => duplicatedSets.find((d) => d.columns.join("\u0000") === names.join("\u0000"));
    const duplicates = await timed("duplicateRows", () => profileDuplicates(db, columns.map((c) => c.name), key && bySet(key), o.sampleRows));
    const duplicated = new Map<string, DuplicatedValues>(uniqueChecks.map((p) => [p.name, bySet(p.columns.map((c) => c.name))!]));

    const checks = evaluateChecks(planned, {
      rows: main.rows,
      aggregates: main.extras,
      duplicated,
      columns,
      expectedColumns: dataset ? expectedColumns(dataset, { partition: inputs.partition !== null, typed: inputs.format === "parquet" }) : [],
      referenceTime: o.referenceTime,
    });
    const failing = planned.flatMap((p, i) => {
      const condition = failingRowsCondition(p, duplicated);
      return (checks[i]!.status === "failed" || checks[i]!.status === "warned") && condition ? [{ result: checks[i]!, condition }] : [];
    });
    const failuresFiles = await timed("failures", () =>
      collectFailures(db, failing, { keyColumns: key ?? [], sampleRows: o.sampleRows, dir: join(work, "failures"), outputPrefix: inputs.outputPrefix, write: !o.dryRun }),
    );

    const manifest = inputs.manifest;
    const rejectsFile = manifest?.rejects ? (await stageFiles(store, [manifest.rejects.key], join(work, "files")))[0] : undefined;
    const rejects = manifest && (await timed("rejects", () => summarizeRejects(db, manifest, rejectsFile, REJECT_SAMPLE_ROWS)));
    const earlier = await readProfiles(store, o.trendProfileKeys ?? [], log);
    const previous = o.previousProfileKey ? (earlier.get(o.previousProfileKey) ?? (await readProfile(store, o.previousProfileKey, log))) : undefined;
    const diff: ProfileDiff = previous
      ? { against: { partition: previous.partition, runId: previous.runId, generatedAt: previous.generatedAt, key: o.previousProfileKey! }, changes: diffProfiles(previous, { rows: main.rows, columns: main.columns, duplicates, checks }) }
      : { against: null, changes: [] };
    const document: ProfileDocument = {
      version: PROFILE_VERSION,
      dataset: dataset?.name ?? null,
      partition: inputs.partition,
      source: { store: store.url, format: inputs.format, files: inputs.keys, ...(manifest ? { manifest: { key: manifest.key, runId: manifest.runId, committedAt: manifest.committedAt, rows: manifest.rows } } : {}) },
      generatedAt: new Date().toISOString(),
      runId: o.runId,
      rows: main.rows,
      columns: main.columns,
      duplicates,
      checks,
      diff,
      timings,
      ...(rejects ? { rejects } : {}),
      trend: trendOf(earlier),
    };

    report(document, o);
    publishProfileGauges(o.metrics, document, dataset?.name ?? `${store.url}/${inputs.outputPrefix}`);
    if (!o.dryRun) await writeProfile(store, inputs.outputPrefix, document, failuresFiles, log);
    return counts;
  } finally {
    duck?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** `profiled` over the files; text files whose detected types a later value breaks are read again as text. */
async function readInputs(db: ProfileSql, relation: RelationOptions, log: Logger): Promise<ProfiledColumn[]> {
  try {
    return await createProfiledRelation(db, relation);
  } catch (error) {
    // Only text files without a dataset have detected types; with one, they are read as text.
    if (relation.format === "parquet" || relation.dataset || !DETECTION_FAILED.test(errorMessage(error))) throw error;
    log.warn("a value did not fit the type DuckDB detected from the files' first rows: every column profiled as text", { error: errorMessage(error).split("\n")[0] });
    return createProfiledRelation(db, { ...relation, allText: true });
  }
}

/** The run's counts and log lines: each failing check, the diff as one `profile.diff` event. */
function report(document: ProfileDocument, o: ProfileRunOptions): void {
  const { log, counts } = o;
  const evaluated = document.checks.filter((c) => c.status !== "skipped");
  Object.assign(counts, {
    rows: document.rows,
    columns: Object.keys(document.columns).length,
    checks: evaluated.length,
    checksWarned: evaluated.filter((c) => c.status === "warned").length,
    // The runner makes a run with failed > 0 partial (exit 3): an error-level check failed.
    failed: evaluated.filter((c) => c.status === "failed").length,
    diffChanges: document.diff.changes.length,
  });
  for (const c of document.checks) {
    const fields = { check: c.name, severity: c.severity, failing: c.failing, evaluated: c.evaluated, detail: c.detail, ...(c.failuresKey ? { failures: `${document.source.store}/${c.failuresKey}` } : {}) };
    if (c.status === "failed") log.error("check failed", fields);
    else if (c.status === "warned") log.warn("check failed at warn severity", fields);
  }
  if (document.diff.against && document.diff.changes.length) {
    log.info("the profile changed since the previous one", { event: "profile.diff", against: document.diff.against, changes: document.diff.changes.map((c) => c.message) });
  }
}

/** Failures files first, then profile.json and profile.html; then the failures files of checks that no longer fail go. */
async function writeProfile(store: ObjectStore, prefix: string, document: ProfileDocument, failures: ReadonlyArray<{ path: string; key: string }>, log: Logger): Promise<void> {
  for (const f of failures) await store.write(f.key, createReadStream(f.path), { size: statSync(f.path).size, contentType: "application/vnd.apache.parquet" });
  await writeBytes(store, profileKey(prefix), Buffer.from(JSON.stringify(document, null, 2) + "\n"), "application/json");
  const html = `${prefix}profile.html`;
  await writeBytes(store, html, Buffer.from(renderProfileHtml(document)), "text/html; charset=utf-8");
  const current = new Set(failures.map((f) => f.key));
  for await (const object of store.list(`${prefix}failures/`)) if (!current.has(object.key)) await store.delete(object.key);
  log.info("profile written", { profile: `${store.url}/${profileKey(prefix)}`, html: `${store.url}/${html}`, rows: document.rows, columns: Object.keys(document.columns).length });
}
