/**
 * End-of-run metrics against Debian's real Pushgateway (harness/pushgateway_server.ts); faults come
 * from the fault proxy in front of it and from a port nobody listens on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtlError } from "../../../core/errors";
import { Metrics } from "../../../core/metrics/metrics";
import { pushMetrics, renderRunMetrics, type PushOptions, type RunMetrics } from "../../../core/metrics/pushgateway";
import { startFaultProxy } from "../../harness/fault_proxy";
import { checkMetrics } from "../../harness/promtool";
import { freePort } from "../../harness/processes";
import { find, parseExposition, scrape, startPushgateway, valueOf, type PushgatewayServer } from "../../harness/pushgateway_server";

/** The error of a push that has to fail. */
async function pushFailure(options: PushOptions): Promise<EtlError> {
  try {
    await pushMetrics(options);
  } catch (error) {
    expect(error).toBeInstanceOf(EtlError);
    return error as EtlError;
  }
  throw new Error("the push succeeded");
}

const uniqueJob = () => `test_${crypto.randomUUID().slice(0, 8)}`;

function run(overrides: Partial<RunMetrics> = {}): RunMetrics {
  return {
    job: "get_s3_files",
    status: "succeeded",
    exitCode: 0,
    durationMs: 12_345,
    finishedAt: new Date("2026-05-01T02:03:04.500Z"),
    counts: { copied: 10, skipped: 2, failed: 0 },
    metrics: { copiedBytes: 1_048_576, copyMs: { count: 10, totalMs: 2_345, maxMs: 801 } },
    ...overrides,
  };
}

describe("renderRunMetrics", () => {
  test("a succeeded run: the job's gauges, its items by kind and its own metrics", () => {
    expect(renderRunMetrics(run())).toBe(
      [
        "# HELP etl_job_last_run_timestamp_seconds When the job's last run finished, in Unix seconds.",
        "# TYPE etl_job_last_run_timestamp_seconds gauge",
        "etl_job_last_run_timestamp_seconds 1777600984.5",
        "# HELP etl_job_last_success_timestamp_seconds When a run of the job last finished with status succeeded, in Unix seconds.",
        "# TYPE etl_job_last_success_timestamp_seconds gauge",
        "etl_job_last_success_timestamp_seconds 1777600984.5",
        "# HELP etl_job_duration_seconds How long the job's last run took, in seconds.",
        "# TYPE etl_job_duration_seconds gauge",
        "etl_job_duration_seconds 12.345",
        "# HELP etl_job_exit_code The exit code of the job's last run.",
        "# TYPE etl_job_exit_code gauge",
        "etl_job_exit_code 0",
        "# HELP etl_job_items Items the job's last run handled, by kind (the counts of its summary).",
        "# TYPE etl_job_items gauge",
        'etl_job_items{kind="copied"} 10',
        'etl_job_items{kind="skipped"} 2',
        'etl_job_items{kind="failed"} 0',
        "# HELP etl_copied_bytes A counter of the job's own, as its last run left it.",
        "# TYPE etl_copied_bytes gauge",
        "etl_copied_bytes 1048576",
        "# HELP etl_copy_operations Operations the job's last run timed under this name.",
        "# TYPE etl_copy_operations gauge",
        "etl_copy_operations 10",
        "# HELP etl_copy_duration_seconds Time the job's last run spent in all the operations timed under this name, in seconds.",
        "# TYPE etl_copy_duration_seconds gauge",
        "etl_copy_duration_seconds 2.345",
        "# HELP etl_copy_max_duration_seconds The longest operation the job's last run timed under this name, in seconds.",
        "# TYPE etl_copy_max_duration_seconds gauge",
        "etl_copy_max_duration_seconds 0.801",
        "",
      ].join("\n"),
    );
  });

  test("only a succeeded run is a success: partial, failed, interrupted and skipped runs are not", () => {
    for (const status of ["partial", "failed", "interrupted", "skipped"] as const) {
      const text = renderRunMetrics(run({ status, exitCode: status === "partial" ? 3 : 0 }));
      expect(text).not.toContain("etl_job_last_success_timestamp_seconds");
      expect(text).toContain("etl_job_last_run_timestamp_seconds 1777600984.5");
    }
  });

  test("job metric names become valid snake_case families, each with one TYPE line", () => {
    const text = renderRunMetrics(run({ counts: {}, metrics: { "s3.requests:retried": 4, HTTPRequests: 2, "weird-Name 2": 1, "9lives": 9, waitMs: { count: 1, totalMs: 5, maxMs: 5 } } }));
    const families = [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!);
    expect(families).toEqual([
      "etl_job_last_run_timestamp_seconds",
      "etl_job_last_success_timestamp_seconds",
      "etl_job_duration_seconds",
      "etl_job_exit_code",
      "etl_9lives",
      "etl_http_requests",
      "etl_s3_requests_retried",
      "etl_wait_operations",
      "etl_wait_duration_seconds",
      "etl_wait_max_duration_seconds",
      "etl_weird_name_2",
    ]);
    for (const sample of parseExposition(text)) expect(sample.name).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });

  test("labelled gauges: one family per name, a sample per label set, the last value set winning", () => {
    const metrics = new Metrics();
    metrics.gauge("etl_profile_null_ratio", "Share of nulls.", { dataset: "d", column: "a" }, 0.5);
    metrics.gauge("etl_profile_null_ratio", "Share of nulls.", { column: "b", dataset: "d" }, 0);
    metrics.gauge("etl_profile_null_ratio", "Share of nulls.", { dataset: "d", column: "a" }, 0.25);
    const text = renderRunMetrics(run({ counts: {}, metrics: {}, gauges: metrics.gauges() }));
    expect(text).toEndWith(
      ['# HELP etl_profile_null_ratio Share of nulls.', "# TYPE etl_profile_null_ratio gauge", 'etl_profile_null_ratio{dataset="d",column="a"} 0.25', 'etl_profile_null_ratio{column="b",dataset="d"} 0', ""].join("\n"),
    );
    expect(() => renderRunMetrics(run({ gauges: [{ name: "etl_job_exit_code", help: "x", labels: {}, value: 1 }] }))).toThrow(/already produces/);
    expect(() => metrics.gauge("etl-bad name", "x", {}, 1)).toThrow(/not a Prometheus metric name/);
  });

  test("refuses two job metrics, or a job metric and a job gauge, that land on one family", () => {
    expect(() => renderRunMetrics(run({ metrics: { copiedBytes: 1, copied_bytes: 2 } }))).toThrow(/"copied_bytes" maps to etl_copied_bytes, which "copiedBytes" already produces/);
    expect(() => renderRunMetrics(run({ metrics: { jobExitCode: 1 } }))).toThrow(/maps to etl_job_exit_code/);
    expect(() => renderRunMetrics(run({ metrics: { "...": 1 } }))).toThrow(EtlError);
  });

  test("refuses a counter named like a counter's, a summary's or a histogram's series, which no gauge may be", () => {
    for (const [source, family] of [["retriesTotal", "etl_retries_total"], ["rowCount", "etl_row_count"], ["bytes_sum", "etl_bytes_sum"], ["le_bucket", "etl_le_bucket"]]) {
      expect(() => renderRunMetrics(run({ metrics: { [source!]: 1 } }))).toThrow(`job metric "${source}" maps to ${family}: a gauge's name may not end in _total, _count, _sum or _bucket`);
    }
  });

  test("promtool check metrics accepts every kind of family the renderer makes", async () => {
    const metrics = new Metrics();
    metrics.gauge("etl_profile_null_ratio", "Share of nulls.", { dataset: "d", column: "a" }, Number.NaN);
    metrics.gauge("etl_freshness_lag_seconds", "Lag.", { source: "s" }, Infinity);
    const text = renderRunMetrics(run({ metrics: { copiedBytes: 1, "s3.requests:retried": 2, copyMs: { count: 1, totalMs: 3, maxMs: 3 } }, gauges: metrics.gauges() }));
    const verdict = await checkMetrics(text);
    expect({ problems: verdict.problems, exitCode: verdict.exitCode }).toEqual({ problems: [], exitCode: 0 });
  });
});

describe("pushMetrics to a real Pushgateway", () => {
  let gateway: PushgatewayServer;
  beforeAll(async () => {
    gateway = await startPushgateway();
  });
  afterAll(async () => {
    await gateway.stop();
  });

  test("a failed run after a succeeded one keeps the last success and replaces what it sends", async () => {
    const job = uniqueJob();
    const requests: Array<{ method?: string; contentType?: string }> = [];
    const recordingFetch = Object.assign(async (url: string | URL | Request, init?: RequestInit) => {
      requests.push({ method: init?.method, contentType: new Headers(init?.headers).get("content-type") ?? undefined });
      return fetch(url, init);
    }, fetch);
    const first = run({ job, finishedAt: new Date("2026-05-01T02:00:00.250Z") });
    const second = run({ job, status: "failed", exitCode: 1, durationMs: 900, finishedAt: new Date("2026-05-01T03:00:00.750Z"), counts: { copied: 3, failed: 1 }, metrics: {} });
    await pushMetrics({ url: gateway.url, job, body: renderRunMetrics(first), fetch: recordingFetch });
    await pushMetrics({ url: gateway.url, job, body: renderRunMetrics(second), fetch: recordingFetch });

    expect(requests).toEqual([
      { method: "POST", contentType: "text/plain; version=0.0.4" },
      { method: "POST", contentType: "text/plain; version=0.0.4" },
    ]);
    const samples = await scrape(gateway);
    const group = { job, instance: "" };
    expect(valueOf(samples, "etl_job_last_success_timestamp_seconds", group)).toBe(1777600800.25);
    expect(valueOf(samples, "etl_job_last_run_timestamp_seconds", group)).toBe(1777604400.75);
    expect(valueOf(samples, "etl_job_exit_code", group)).toBe(1);
    expect(valueOf(samples, "etl_job_duration_seconds", group)).toBe(0.9);
    // POST replaces a family whole: the second run's kinds only, "skipped" gone with the first run.
    expect(find(samples, "etl_job_items", group).map((s) => [s.labels.kind, s.value])).toEqual([["copied", 3], ["failed", 1]]);
    // A family the second run did not send keeps the first run's value.
    expect(valueOf(samples, "etl_copied_bytes", group)).toBe(1_048_576);
    expect(valueOf(samples, "etl_copy_max_duration_seconds", group)).toBe(0.801);
  });

  test("label values with quotes, backslashes and newlines arrive intact", async () => {
    const job = uniqueJob();
    const kind = 'a "quoted" \\ back\nslash';
    await pushMetrics({ url: gateway.url, job, body: renderRunMetrics(run({ job, counts: { [kind]: 7 } })) });
    expect(valueOf(await scrape(gateway), "etl_job_items", { job, kind })).toBe(7);
  });

  test("a sharded run pushes to a group of its own, shard values with slashes and spaces included", async () => {
    const job = uniqueJob();
    await pushMetrics({ url: gateway.url, job, body: renderRunMetrics(run({ job, exitCode: 0 })) });
    const shards = ["0/4", "eu west", "..", "ü-1"];
    for (const [i, shard] of shards.entries()) {
      await pushMetrics({ url: `${gateway.url}/`, job, shard, body: renderRunMetrics(run({ job, status: "failed", exitCode: 10 + i })) });
    }
    const samples = await scrape(gateway);
    const exitCodes = find(samples, "etl_job_exit_code", { job }).map((s) => `${s.labels.shard ?? "(unsharded)"} ${s.value}`);
    expect(exitCodes.sort()).toEqual(["(unsharded) 0", ".. 12", "0/4 10", "eu west 11", "ü-1 13"]);
    expect(valueOf(samples, "etl_job_last_success_timestamp_seconds", { job, shard: "0/4" })).toBeUndefined();
    expect(valueOf(samples, "push_time_seconds", { job, shard: "0/4" })).toBeGreaterThan(0);
  });

  test("a rejected push names the URL and the status, with the start of the gateway's answer", async () => {
    const job = uniqueJob();
    const error = await pushFailure({ url: gateway.url, job, body: `etl_bad ${"q".repeat(500)}\n` });
    expect(error.code).toBe("failed");
    const prefix = `pushing metrics to ${gateway.url}/metrics/job/${job}: the pushgateway answered 400 Bad Request: `;
    expect(error.message).toStartWith(prefix);
    expect(error.message.slice(prefix.length)).toStartWith("text format parsing error");
    expect(error.message.length - prefix.length).toBe(200);
  });

  test("a 5xx from the gateway is a transient error naming the status", async () => {
    const proxy = await startFaultProxy(gateway.url);
    try {
      proxy.failNext(1, 503);
      const error = await pushFailure({ url: proxy.url, job: uniqueJob(), shard: "0/4", body: renderRunMetrics(run()) });
      expect(error.code).toBe("transient");
      expect(error.message).toContain(`${proxy.url}/metrics/job/`);
      expect(error.message).toContain("/shard@base64/MC80: the pushgateway answered 503 Service Unavailable: ");
      expect(proxy.requests.byMethod).toEqual({ POST: 1 });
    } finally {
      await proxy.stop();
    }
  });

  test("a gateway that never answers is given up on at the timeout", async () => {
    const proxy = await startFaultProxy(gateway.url);
    try {
      proxy.stall(true);
      const started = performance.now();
      const error = await pushFailure({ url: proxy.url, job: "stalled", body: renderRunMetrics(run()), timeoutMs: 300 });
      const elapsed = performance.now() - started;
      expect(error.message).toBe(`pushing metrics to ${proxy.url}/metrics/job/stalled timed out after 300 ms`);
      expect(error.code).toBe("transient");
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      await proxy.stop();
    }
  });

  test("a port nobody listens on fails at once, naming the URL", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const error = await pushFailure({ url, job: "nobody", body: renderRunMetrics(run()) });
    expect(error.code).toBe("transient");
    expect(error.message).toStartWith(`pushing metrics to ${url}/metrics/job/nobody failed: `);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  test("a URL that cannot be parsed is a config error that does not repeat it", async () => {
    const error = await pushFailure({ url: "pushgateway:9091 with s3cret", job: "j", body: "" });
    expect(error.code).toBe("config");
    expect(error.message).not.toContain("s3cret");
  });
});

describe("pushMetrics to a Pushgateway behind basic auth", () => {
  const password = "pgw-pass-5d1c";
  let gateway: PushgatewayServer;
  beforeAll(async () => {
    gateway = await startPushgateway({ basicAuth: { username: "etl", password } });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  test("credentials in the URL authenticate the push and never appear in an error", async () => {
    const job = uniqueJob();
    const withCredentials = (pass: string) => gateway.url.replace("http://", `http://etl:${pass}@`);
    await pushMetrics({ url: withCredentials(password), job, body: renderRunMetrics(run({ job })) });
    const scraped = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Basic ${btoa(`etl:${password}`)}` } });
    expect(valueOf(parseExposition(await scraped.text()), "etl_job_exit_code", { job })).toBe(0);

    const error = await pushFailure({ url: withCredentials("wrong-pass-1234"), job, body: renderRunMetrics(run({ job })) });
    expect(error.message).toBe(`pushing metrics to ${gateway.url}/metrics/job/${job}: the pushgateway answered 401 Unauthorized: Unauthorized`);
    expect(error.message).not.toContain("wrong-pass-1234");
    expect(error.message).not.toContain("etl:");
  });
});
