import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { ApiSource, Dataset } from "../../core/dataset";
import { ConfigError } from "../../core/errors";
import { HttpClient, HttpStatusError, parseRetryAfter } from "../../core/http/http_client";
import { createLogger } from "../../core/log";
import { loadMigrations, migrate } from "../../core/db/migrate";
import { ingestResource } from "../../processors/data_pipeline/api_ingest/ingest";
import { PaginationError, nextLink, walkPages } from "../../processors/data_pipeline/api_ingest/pages";
import { loadDataset } from "../../processors/datasets/index";
import { WatermarkRepository } from "../../repositories/watermarks";
import { makeRecords, startApiServer, type ApiServer } from "../harness/api_server";
import { ROOT, createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { track } from "../harness/processes";

let api: ApiServer;
beforeEach(() => {
  api = startApiServer({ records: makeRecords(250) });
});
afterEach(() => api.stop());

const client = (options: ConstructorParameters<typeof HttpClient>[0] = {}) => new HttpClient({ token: api.token, baseDelayMs: 10, ...options });

async function readAll(source: ApiSource, path: string, options: { maxPages?: number; prefetch?: number; http?: HttpClient } = {}) {
  const ids: number[] = [];
  let truncated = false;
  for await (const page of walkPages(options.http ?? client(), source, { firstUrl: new URL(path, api.url), maxPages: options.maxPages ?? 1000, prefetch: options.prefetch ?? 1 })) {
    ids.push(...page.items.map((r) => (r as { id: number }).id));
    truncated ||= page.truncated === true;
  }
  return { ids, truncated };
}

const ALL = Array.from({ length: 250 }, (_, i) => i + 1);
const source = (pagination: ApiSource["pagination"], itemsPath: string): ApiSource => ({ path: "", baseUrlEnv: "", tokenEnv: "", itemsPath, pagination, pageSize: 100 });

describe("pagination", () => {
  test("every style reads every record exactly once, in order", async () => {
    const styles: Array<[ApiSource, string]> = [
      [source({ style: "cursor", cursorPath: "next_cursor", cursorParam: "cursor" }, "data"), "/v1/service-requests?limit=100"],
      [source({ style: "next_url", nextPath: "links.next" }, "results"), "/styles/next_url?size=100"],
      [source({ style: "link_header" }, ""), "/styles/link_header?size=100"],
      [source({ style: "page", pageParam: "page", sizeParam: "per_page", totalPath: "total" }, "items"), "/styles/page?per_page=100"],
      [source({ style: "offset", offsetParam: "offset", limitParam: "limit", totalPath: "meta.total" }, "items"), "/styles/offset?limit=100"],
      // Without a total, the numbered styles stop at the first empty page.
      [source({ style: "page", pageParam: "page", sizeParam: "per_page" }, "items"), "/styles/page?per_page=100"],
    ];
    for (const [style, path] of styles) {
      api.requests.length = 0;
      expect({ style: style.pagination, ...(await readAll(style, path)) }).toEqual({ style: style.pagination, ids: ALL, truncated: false });
    }
  });

  test("the numbered styles ask for pages ahead, within the concurrency cap, and stop at the total", async () => {
    api.latencyMs = 50;
    const offset = source({ style: "offset", offsetParam: "offset", limitParam: "limit", totalPath: "meta.total" }, "items");
    api.records = makeRecords(1000);
    const { ids } = await readAll(offset, "/styles/offset?limit=100", { prefetch: 4, http: client({ concurrency: 3 }) });
    expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(api.maxInFlight).toBe(3);
    // The total (1000) says when to stop: no request past it.
    expect(api.requests.length).toBe(10);
  });

  test("--max-pages stops early and says the pull was truncated", async () => {
    const cursor = source({ style: "cursor", cursorPath: "next_cursor", cursorParam: "cursor" }, "data");
    expect(await readAll(cursor, "/v1/service-requests?limit=100", { maxPages: 2 })).toEqual({ ids: ALL.slice(0, 200), truncated: true });
  });

  test("a cursor the API returns twice is an error, never a loop", async () => {
    api.repeatCursorAfter = 1;
    const cursor = source({ style: "cursor", cursorPath: "next_cursor", cursorParam: "cursor" }, "data");
    const error = await readAll(cursor, "/v1/service-requests?limit=100").catch((e) => e);
    expect(error).toBeInstanceOf(PaginationError);
    expect(error.message).toContain("twice");
    // The second page hands back the cursor that led to it.
    expect(api.requests.length).toBe(2);
  });

  test("Link headers: rel=next among other relations, quoted or not", () => {
    expect(nextLink('<https://a/x?p=2>; rel="next", <https://a/x?p=1>; rel="first"')).toBe("https://a/x?p=2");
    expect(nextLink('<https://a/x?p=1>; rel="prev first", <https://a/x?p=3>; rel=next')).toBe("https://a/x?p=3");
    expect(nextLink('<https://a/x?p=1>; rel="first"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
  });
});

describe("the API client", () => {
  const url = () => `${api.url}/v1/service-requests?limit=10`;

  test("429 with Retry-After in seconds or as an HTTP date is waited out, then retried", async () => {
    api.faults.push({ status: 429, headers: { "retry-after": "1" } });
    // An HTTP date has whole seconds: 1.5 to 2.5 s from now, so 0.5 to 1.5 s after the first retry.
    api.faults.push({ status: 429, headers: { "retry-after": new Date(Date.now() + 2500).toUTCString() } });
    const started = Date.now();
    const response = await client().getJson(url());
    expect(response.status).toBe(200);
    expect(api.requests.length).toBe(3);
    expect(api.requests[1]!.at - api.requests[0]!.at).toBeGreaterThanOrEqual(950);
    expect(api.requests[2]!.at - api.requests[1]!.at).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1450);
    expect(parseRetryAfter("120")).toBe(120_000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.parse("2015-10-21T07:27:00Z"))).toBe(60_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });

  test("5xx and dropped connections are retried with backoff; a Retry-After longer than the run waits is transient at once", async () => {
    api.faults.push({ status: 503 }, { status: 502 }, { status: 500 });
    expect((await client().getJson(url())).status).toBe(200);
    expect(api.requests.length).toBe(4);

    api.faults.push({ status: 503 }, { status: 503 }, { status: 503 });
    const exhausted = await client({ attempts: 3 }).getJson(url()).catch((e) => e);
    expect(exhausted.code).toBe("transient");
    expect(exhausted.message).toContain("HTTP 503");

    api.faults.push({ status: 429, headers: { "retry-after": "3600" } });
    const tooLong = await client().getJson(url()).catch((e) => e);
    expect(tooLong.code).toBe("transient");
    expect(tooLong.message).toContain("retry after 3600 s");

    const unreachable = await new HttpClient({ attempts: 2, baseDelayMs: 1 }).getJson("http://127.0.0.1:1/x").catch((e) => e);
    expect(unreachable.code).toBe("transient");
  });

  test("other 4xx fail at once; 401 and 403 are a configuration error naming the token's variable", async () => {
    api.faults.push({ status: 404, body: '{"error":"no such resource"}' });
    const notFound = await client().getJson(url()).catch((e) => e);
    expect(notFound).toBeInstanceOf(HttpStatusError);
    expect(notFound.message).toContain("HTTP 404 ({\"error\":\"no such resource\"})");
    expect(api.requests.length).toBe(1);

    const expired = await new HttpClient({ token: "expired-token-123", tokenSource: "SERVICE_API_TOKEN" }).getJson(url()).catch((e) => e);
    expect(expired).toBeInstanceOf(ConfigError);
    expect(expired.message).toContain("SERVICE_API_TOKEN");
    expect(expired.message).not.toContain("expired-token-123");
    expect(api.requests.length).toBe(2);
  });

  test("the rate limit spaces requests out", async () => {
    const http = client({ requestsPerSecond: 20, concurrency: 8 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 10 }, () => http.getJson(url())));
    // Ten requests at 20 per second: the tenth starts 450 ms after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(440);
    const at = api.requests.map((r) => r.at);
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(400);
  });
});

describe.each(LAKE_KINDS)("ingest_api into a %s lake", (kind) => {
  let db: TestDatabase;
  let lake: Lake;
  beforeEach(async () => {
    db = await createTestDatabase();
    lake = await createLake(kind);
  });
  afterEach(async () => {
    await db.drop();
    await lake.dispose();
  });

  // A short lease: a run retried after a SIGKILL waits out the dead run's slot within seconds.
  const env = () => ({ DATABASE_URL: db.url, SERVICE_API_URL: api.url, SERVICE_API_TOKEN: api.token, ETL_LEASE_TTL_SECONDS: "2" });
  const ingest = (argv: string[] = [], extra: Record<string, string> = {}) =>
    runCommand(["jobs/ingest_api.ts"], ["--dataset", "service_requests", "--bucket", lake.arg, ...(argv.includes("--logical-date") ? [] : ["--logical-date", "2026-11-02"]), ...argv], { ...env(), ...extra });
  const files = async (dataset = "service_requests") => (await lake.keys(`bronze/${dataset}/dt=2026-11-02/`)).filter((k) => k.endsWith(".ndjson.gz"));
  const landed = async (dataset?: string) => {
    const records = [];
    for (const key of await files(dataset)) records.push(...new TextDecoder().decode(Bun.gunzipSync(await lake.read(key))).split("\n").filter(Boolean).map((l) => JSON.parse(l)));
    return records;
  };
  const watermark = async (name = "ingest_api:service_requests") => (await db.sql`select value from etl_watermarks where name = ${name}`)[0]?.value;

  test("lands every record as gzipped NDJSON in the logical date's partition, then moves the watermark; the next run reads from it minus the lag", async () => {
    api.records = makeRecords(1200);
    const first = await ingest();
    expect(first.summary).toMatchObject({ status: "succeeded", exitCode: 0 });
    expect(first.summary!.counts).toEqual({ pages: 3, records: 1200, files: 1 });
    expect(await files()).toEqual([`bronze/service_requests/dt=2026-11-02/${first.summary!.runId}-00001.ndjson.gz`]);
    expect((await landed()).map((r) => r.id)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect((await landed())[1]).toEqual(api.records[1]); // as received
    expect(await watermark()).toBe(api.records.at(-1)!.updated_at);
    expect(first.stdout).not.toContain(api.token);

    // 30 new records; the overlap re-reads the last 10 minutes (10 records one minute apart, plus the boundary).
    api.records.push(...makeRecords(30, Date.parse(api.records.at(-1)!.updated_at) + 60_000, 1201));
    api.requests.length = 0;
    // The next hour's run: another logical date, the same day's partition.
    const second = await ingest(["--logical-date", "2026-11-02T01:00:00Z"]);
    expect(second.exitCode).toBe(0);
    const since = new URL(api.url + api.requests[0]!.path).searchParams.get("updated_since");
    expect(since).toBe(new Date(Date.parse(api.records[1199]!.updated_at) - 600_000).toISOString());
    expect(second.summary!.counts).toMatchObject({ records: 41 });
    expect(await watermark()).toBe(api.records.at(-1)!.updated_at);
  });

  test("every pagination style lands every record once, in files of --records-per-file, and moves the watermark; the next pull starts at it", async () => {
    await migrate(db.sql, await loadMigrations());
    const store = await lake.store();
    const base = (await loadDataset("service_requests")) as Dataset & { api: ApiSource };
    const styles: Array<[string, string, string, ApiSource["pagination"], string?]> = [
      ["cursor", "/v1/service-requests", "data", { style: "cursor", cursorPath: "next_cursor", cursorParam: "cursor" }, "limit"],
      ["next_url", "/styles/next_url", "results", { style: "next_url", nextPath: "links.next" }, "size"],
      ["link_header", "/styles/link_header", "", { style: "link_header" }, "size"],
      ["page", "/styles/page", "items", { style: "page", pageParam: "page", sizeParam: "per_page", totalPath: "total" }],
      ["offset", "/styles/offset", "items", { style: "offset", offsetParam: "offset", limitParam: "limit", totalPath: "meta.total" }],
    ];
    const pull = (dataset: Dataset & { api: ApiSource }) =>
      ingestResource({
        dataset,
        client: client(),
        baseUrl: api.url,
        store,
        partitionDate: "2026-11-02",
        runId: crypto.randomUUID(),
        watermarks: new WatermarkRepository(db.sql),
        dryRun: false,
        fullRefresh: false,
        maxPages: 1000,
        prefetch: 2,
        recordsPerFile: 100,
        log: createLogger({ format: "json", level: "error", write: () => {} }),
        progress: { setTotal: () => {}, advance: () => {} },
        counts: {},
        signal: new AbortController().signal,
      });
    for (const [name, path, itemsPath, pagination, pageSizeParam] of styles) {
      api.records = makeRecords(250);
      // lagSeconds 0: the next pull asks for records at or after the newest landed, the boundary included.
      const dataset = { ...base, name: `style_${name}`, api: { ...base.api, path, itemsPath, pagination, pageSize: 100, pageSizeParam, incremental: { ...base.api.incremental!, lagSeconds: 0 } } };
      expect({ name, counts: await pull(dataset) }).toEqual({ name, counts: { pages: 3, records: 250, files: 3 } });
      expect({ name, ids: (await landed(dataset.name)).map((r) => r.id) }).toEqual({ name, ids: ALL });
      expect(await watermark(`ingest_api:${dataset.name}`)).toBe(api.records.at(-1)!.updated_at);

      api.records.push(...makeRecords(5, Date.parse(api.records.at(-1)!.updated_at) + 60_000, 251));
      expect({ name, counts: await pull(dataset) }).toEqual({ name, counts: { pages: 1, records: 6, files: 1 } });
      expect(await watermark(`ingest_api:${dataset.name}`)).toBe(api.records.at(-1)!.updated_at);
    }
  });

  test("the watermark moves only after its records landed: a failed write leaves it where it was", async () => {
    api.records = makeRecords(100);
    // A bucket that does not exist; a directory that cannot be made (its parent is a file).
    if (kind === "file") await lake.write("not-a-directory", "x");
    const unwritable = kind === "s3" ? `s3://no-such-lake-${crypto.randomUUID().slice(0, 8)}` : `${lake.arg}/not-a-directory/lake`;
    const run = await runCommand(["jobs/ingest_api.ts"], ["--dataset", "service_requests", "--bucket", unwritable, "--logical-date", "2026-11-02"], env());
    expect(run.exitCode).toBe(1);
    expect(String(run.summary!.error)).toContain(kind === "s3" ? "NoSuchBucket" : "ENOTDIR");
    expect(await watermark()).toBeUndefined();
  });

  test("a run killed mid-pull resumes from its last landed file: nothing lost", async () => {
    api.records = makeRecords(3000);
    api.latencyMs = 150;
    const child = track(
      Bun.spawn(["bun", "jobs/ingest_api.ts", "--dataset", "service_requests", "--bucket", lake.arg, "--logical-date", "2026-11-02", "--records-per-file", "500"], {
        cwd: ROOT,
        env: { ...process.env, ...env(), LOG_FORMAT: "json" },
        stdout: "ignore",
      }),
    );
    while ((await files()).length < 2) {
      if (child.exitCode !== null) throw new Error(`ingest_api exited ${child.exitCode} before landing two files`);
      await Bun.sleep(20);
    }
    child.kill("SIGKILL");
    await child.exited;
    const committed = await watermark();
    const landedFiles = await files();
    const before = await landed();
    expect(before.length).toBeLessThan(3000);
    // Committed after each landed file (the API returns records in updated_at order): the newest
    // record of the last file, or of the one before when the kill fell between a landing and its commit.
    const newestOf = (n: number) => before[n * 500 - 1].updated_at;
    expect([newestOf(landedFiles.length), newestOf(landedFiles.length - 1)]).toContain(committed);

    api.latencyMs = 0;
    const resumed = await ingest(["--records-per-file", "500"]);
    expect(resumed.exitCode).toBe(0);
    const ids = new Set((await landed()).map((r) => r.id));
    expect(ids.size).toBe(3000);
    // It started from the watermark minus the lag (10 records a minute apart), not from the beginning.
    const committedId = api.records.find((r) => r.updated_at === committed)!.id;
    expect((resumed.summary!.counts as { records: number }).records).toBe(3000 - committedId + 11);
  });

  test("an expired token is exit 2 naming the variable; a dry run lands and commits nothing", async () => {
    const expired = await ingest([], { SERVICE_API_TOKEN: "expired-token-0000" });
    expect(expired.exitCode).toBe(2);
    expect(expired.summary!.error).toContain("SERVICE_API_TOKEN");
    expect(expired.stdout).not.toContain("expired-token-0000");

    const dry = await ingest(["--dry-run"]);
    expect(dry.exitCode).toBe(0);
    expect(dry.summary!.counts).toMatchObject({ records: 250 });
    expect(await lake.keys()).toEqual([]);
    expect(await watermark()).toBeUndefined();

    const unknown = await runCommand(["jobs/ingest_api.ts"], ["--dataset", "partner_payments", "--bucket", lake.arg], env());
    expect(unknown.exitCode).toBe(2);
    // Refused as a bad flag value, before the run starts: --dataset offers only the API-fed datasets.
    expect(unknown.summary!.error).toBe('ingest_api: --dataset must be one of: service_requests (got "partner_payments")');
  });
});
