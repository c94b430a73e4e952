import type { ApiSource, Dataset } from "../../../core/dataset";
import type { HttpClient } from "../../../core/http/http_client";
import { readUnlessMissing } from "../../../core/db/missing_table";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import { writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import type { Progress } from "../../../core/runtime/progress";
import type { WatermarkRepository } from "../../../repositories/watermarks";
import { walkPages } from "./pages";

export interface IngestOptions {
  dataset: Dataset & { api: ApiSource };
  client: HttpClient;
  baseUrl: string;
  /** The lake: bronze/<dataset>/dt=<date>/ is written here. */
  store: ObjectStore;
  /** YYYY-MM-DD: the bronze partition (the run's logical date). */
  partitionDate: string;
  runId: string;
  watermarks: WatermarkRepository;
  /** Read the pages, land and commit nothing. */
  dryRun: boolean;
  /** Ignore the watermark and pull everything (the watermark still moves at the end). */
  fullRefresh: boolean;
  maxPages: number;
  prefetch: number;
  /** Records per bronze file: the memory one file holds before it lands. */
  recordsPerFile: number;
  log: Logger;
  progress: Progress;
  counts: Counts;
  signal: AbortSignal;
}

/**
 * Pulls one dataset's resource into bronze as gzipped NDJSON files, `<run>-<n>.ndjson.gz`, each
 * landed whole. The watermark (the greatest incremental field value landed) is committed only
 * after the files that hold those records have landed: at the end of the pull, and after every
 * file when the API returns records in field order (`sorted`), so a killed run resumes from its
 * last file. The overlap (`lagSeconds`) re-reads recent records; silver drops the duplicates.
 */
export async function ingestResource(o: IngestOptions): Promise<Counts> {
  const { dataset, counts } = o;
  const api = dataset.api;
  const incremental = api.incremental;
  const watermarkName = `ingest_api:${dataset.name}`;
  for (const name of ["pages", "records", "files"]) counts[name] ??= 0;

  const watermark = incremental && !o.fullRefresh ? await readUnlessMissing(o.dryRun, () => o.watermarks.readWatermark(watermarkName), undefined) : undefined;
  const since = watermark && incremental ? new Date(Date.parse(watermark.value) - incremental.lagSeconds * 1000).toISOString() : undefined;
  const firstUrl = resourceUrl(o.baseUrl, api, since);
  o.log.info("pulling", { dataset: dataset.name, url: firstUrl.toString(), watermark: watermark?.value ?? null, since: since ?? null });

  let lines: string[] = [];
  let newest: number | undefined; // the incremental field's greatest value among records read
  let landedNewest: number | undefined; // ... among records landed
  let truncated = false;
  const land = async () => {
    if (!lines.length) return;
    const body = Bun.gzipSync(Buffer.from(lines.join("")));
    const key = `bronze/${dataset.name}/dt=${o.partitionDate}/${o.runId}-${String(counts.files! + 1).padStart(5, "0")}.ndjson.gz`;
    if (!o.dryRun) await writeBytes(o.store, key, body, "application/x-ndjson");
    counts.files!++;
    lines = [];
    landedNewest = newest;
    if (incremental?.sorted) await commit();
  };
  const commit = async () => {
    if (!incremental || landedNewest === undefined || o.dryRun) return;
    const value = new Date(landedNewest).toISOString();
    if (watermark && Date.parse(watermark.value) >= landedNewest) return;
    await o.watermarks.advanceWatermark(watermarkName, value, o.runId);
  };

  for await (const page of walkPages(o.client, api, { firstUrl, maxPages: o.maxPages, prefetch: o.prefetch })) {
    for (const item of page.items) {
      lines.push(JSON.stringify(item) + "\n");
      if (incremental) {
        const at = Date.parse(String((item as Record<string, unknown>)?.[incremental.field] ?? ""));
        if (!Number.isNaN(at) && (newest === undefined || at > newest)) newest = at;
      }
      if (lines.length >= o.recordsPerFile) await land();
    }
    counts.pages!++;
    counts.records! += page.items.length;
    o.progress.advance(page.items.length);
    truncated = page.truncated === true;
    if (o.signal.aborted) break;
  }
  await land();
  // A pull cut short by --max-pages or a signal read an arbitrary part of an unsorted resource:
  // records older than its newest may still be unread, so the watermark stays where it was.
  if (truncated || o.signal.aborted) {
    if (!incremental?.sorted) o.log.warn("the pull stopped before the last page; the watermark stays, the next run reads this range again", { pages: counts.pages });
  } else {
    await commit();
  }
  o.log.info("pulled", { dataset: dataset.name, ...counts, watermark: landedNewest === undefined ? (watermark?.value ?? null) : new Date(landedNewest).toISOString() });
  return counts;
}

/** base URL + path, with the page size and the incremental filter. */
function resourceUrl(baseUrl: string, api: ApiSource, since: string | undefined): URL {
  const url = new URL(api.path.replace(/^\//, ""), baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  const p = api.pagination;
  const sizeParam = p.style === "page" ? p.sizeParam : p.style === "offset" ? p.limitParam : api.pageSizeParam;
  if (sizeParam) url.searchParams.set(sizeParam, String(api.pageSize));
  if (since && api.incremental) url.searchParams.set(api.incremental.param, since);
  return url;
}
