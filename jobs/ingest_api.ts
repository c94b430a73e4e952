import { arg } from "../core/runtime/args";
import { ConfigError, UsageError } from "../core/errors";
import { HttpClient } from "../core/http/http_client";
import { locationUrl } from "../core/storage/object_store";
import { defineJob } from "../core/runtime/job";
import { ingestResource } from "../processors/data_pipeline/api_ingest/ingest";
import { apiDatasetNames, loadDataset } from "../processors/datasets/index";
import { WatermarkRepository } from "../repositories/watermarks";

// Read from the dataset files, which declare their source: the only ones --dataset offers and accepts.
const API_DATASETS = await apiDatasetNames();

export const JOB = defineJob({
  name: "ingest_api",
  description: "Pull one dataset's records from the application API into bronze, incrementally",
  lane: "data_pipeline",
  args: {
    dataset: arg.choice("dataset fed by an API", API_DATASETS),
    bucket: arg.location("the lake: bucket or directory holding bronze/<dataset>/dt=<date>/"),
    maxPages: arg.integer("stop after this many pages; the next run continues", { min: 1, max: 10_000_000, default: 100_000 }),
    requestsPerSecond: arg.integer("client-side rate limit", { min: 1, max: 10_000, default: 10 }),
    // Only the page and offset styles can ask for pages ahead; cursor and link styles are sequential.
    concurrency: arg.integer("requests in flight at once", { min: 1, max: 64, default: 4 }),
    recordsPerFile: arg.integer("records per bronze file", { min: 1, max: 10_000_000, default: 50_000 }),
    fullRefresh: arg.flag("pull everything, ignoring the watermark"),
  },
  partitioned: true,
  // Hourly; each pull lands in the bronze partition of the day its data interval starts in, so the
  // 00:15 pull (23:15 to 00:15) closes the day before.
  schedule: { cron: "15 * * * *", timeZone: "UTC", args: { dataset: "service_requests", bucket: "etl-lake" } },
  example: "--dataset service_requests --bucket file:.etl/demo/lake",
  outputs: (args) => [`${locationUrl(args.bucket)}/bronze/${args.dataset}/`],
  async run(args, ctx) {
    const dataset = await loadDataset(args.dataset);
    if (!dataset.api) throw new UsageError(`--dataset ${dataset.name} is not fed by an API (its file declares no api source)`);
    const baseUrl = ctx.env[dataset.api.baseUrlEnv]?.trim();
    if (!baseUrl || !URL.canParse(baseUrl) || !/^https?:/.test(baseUrl)) throw new ConfigError(`environment variable ${dataset.api.baseUrlEnv} must be the API's base URL, e.g. https://api.example.com`);
    const token = ctx.env[dataset.api.tokenEnv]?.trim();
    if (!token) throw new ConfigError(`environment variable ${dataset.api.tokenEnv} is not set (the API's bearer token)`);

    const client = new HttpClient({
      token,
      tokenSource: dataset.api.tokenEnv,
      requestsPerSecond: args.requestsPerSecond,
      concurrency: args.concurrency,
      signal: ctx.signal,
      log: ctx.log,
    });
    return ingestResource({
      ...ctx,
      ...args,
      dataset: { ...dataset, api: dataset.api },
      client,
      baseUrl,
      store: await ctx.objectStore(args.bucket),
      partitionDate: ctx.partitionDate ?? new Date().toISOString().slice(0, 10),
      watermarks: new WatermarkRepository(await ctx.db()),
      prefetch: args.concurrency,
    });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
