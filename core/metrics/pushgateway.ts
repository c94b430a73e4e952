/**
 * A run's end-of-run metrics for a Prometheus Pushgateway (DESIGN.md, "Metrics"): rendered in the
 * text exposition format and POSTed to the group `job=<job>` (plus `shard` for sharded runs).
 *
 * POST, never PUT: POST replaces only the metric families it carries, so a failed run, which
 * sends no `etl_job_last_success_timestamp_seconds`, leaves the last success in place. The flip
 * side: any family a run does not send keeps the value an earlier run pushed (a job metric this
 * run never touched, the items of a run that failed before counting anything).
 *
 * Every family is a gauge: each push carries one run's values, not a running total.
 */
import { EtlError, errorMessage } from "../errors";
import type { Gauge, Metrics } from "./metrics";
import type { RunStatus } from "../runtime/contract";

export interface RunMetrics {
  job: string;
  status: RunStatus;
  exitCode: number;
  durationMs: number;
  finishedAt: Date;
  /** The run summary's counts; each becomes `etl_job_items{kind="<name>"}`. */
  counts: Record<string, number>;
  /** The job's own counters and timings (Metrics.snapshot()). */
  metrics: ReturnType<Metrics["snapshot"]>;
  /** The job's labelled gauges (Metrics.gauge), one family per name. */
  gauges?: Gauge[];
}

export interface PushOptions {
  /** The Pushgateway's base URL, e.g. `http://pushgateway:9091`; user:password in it becomes Basic auth. */
  url: string;
  job: string;
  /** The shard of a sharded run, e.g. `0/4`; adds a `shard` label to the group. */
  shard?: string;
  /** More labels of the group, after `job` (a job's metricsGroup, e.g. `dataset`): runs of other groups keep their series. */
  grouping?: Record<string, string>;
  /** Text exposition format, as renderRunMetrics makes it. */
  body: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

// A push happens once, at the end of a run that is otherwise done: waiting longer on an
// unreachable gateway only delays the exit (and the next scheduled run) for a warning.
const PUSH_TIMEOUT_MS = 5_000;
const CONTENT_TYPE = "text/plain; version=0.0.4";
const ERROR_BODY_CHARS = 200;
// Series suffixes of counters (_total), summaries and histograms (_count, _sum, _bucket):
// `promtool check metrics` refuses them on a gauge.
const RESERVED_SUFFIX = /_(total|count|sum|bucket)$/;

interface Family {
  name: string;
  help: string;
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

/**
 * The run as Prometheus text. Families, in order: etl_job_last_run_timestamp_seconds,
 * etl_job_last_success_timestamp_seconds (only when the status is "succeeded"),
 * etl_job_duration_seconds, etl_job_exit_code, etl_job_items{kind}, then the job's own metrics
 * sorted by name: a counter `copiedBytes` as `etl_copied_bytes`; a timing `copyMs` as
 * `etl_copy_operations`, `etl_copy_duration_seconds` (all of them) and
 * `etl_copy_max_duration_seconds` (see jobMetricBase). Every name passes `promtool check metrics`:
 * gauges, so none ends in `_total` (a counter's), `_count`, `_sum` or `_bucket` (a summary's or a
 * histogram's series). A timing is not a summary: a summary's `_sum` and `_count` are running
 * totals that rate() reads across pushes, and each push carries one run's.
 *
 * A "skipped" run (another run held the lock) is not a success although it exits 0: it did none of
 * the job's work, and a job skipped run after run behind a stuck lock must still trip the
 * "no success for N hours" alert. "partial" is not a success either (exit 3).
 *
 * Throws if two of the job's metric names map to the same family (`copiedBytes` and
 * `copied_bytes`): the gateway rejects a push that repeats a series, and which one to keep is
 * not this module's guess to make; and if a counter's name ends in one of those reserved suffixes
 * (`retriesTotal`), which no gauge may carry.
 */
export function renderRunMetrics(run: RunMetrics): string {
  const finishedSeconds = run.finishedAt.getTime() / 1000;
  const families: Family[] = [
    { name: "etl_job_last_run_timestamp_seconds", help: "When the job's last run finished, in Unix seconds.", samples: [{ value: finishedSeconds }] },
  ];
  if (run.status === "succeeded") {
    families.push({ name: "etl_job_last_success_timestamp_seconds", help: "When a run of the job last finished with status succeeded, in Unix seconds.", samples: [{ value: finishedSeconds }] });
  }
  families.push(
    { name: "etl_job_duration_seconds", help: "How long the job's last run took, in seconds.", samples: [{ value: run.durationMs / 1000 }] },
    { name: "etl_job_exit_code", help: "The exit code of the job's last run.", samples: [{ value: run.exitCode }] },
    {
      name: "etl_job_items",
      help: "Items the job's last run handled, by kind (the counts of its summary).",
      samples: Object.entries(run.counts).map(([kind, value]) => ({ labels: { kind }, value })),
    },
  );

  // One HELP per kind of metric, not per name: the gateway merges every group's families and logs
  // "inconsistent help strings ... This is bad" when two pushes of one family disagree.
  const sources = new Map(families.map((f) => [f.name, f.name]));
  const addJobFamily = (source: string, name: string, help: string, value: number) => {
    const clash = sources.get(name);
    if (clash !== undefined) throw new EtlError("failed", `job metric "${source}" maps to ${name}, which "${clash}" already produces; rename one of them`);
    sources.set(name, source);
    families.push({ name, help, samples: [{ value }] });
  };
  for (const [source, value] of Object.entries(run.metrics).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (typeof value === "number") {
      const name = `etl_${jobMetricBase(source, "counter")}`;
      if (RESERVED_SUFFIX.test(name)) throw new EtlError("failed", `job metric "${source}" maps to ${name}: a gauge's name may not end in _total, _count, _sum or _bucket (Prometheus keeps them for counters, summaries and histograms); rename it`);
      addJobFamily(source, name, "A counter of the job's own, as its last run left it.", value);
    } else if ("count" in value) {
      const base = `etl_${jobMetricBase(source, "timing")}`;
      addJobFamily(source, `${base}_operations`, "Operations the job's last run timed under this name.", value.count);
      addJobFamily(source, `${base}_duration_seconds`, "Time the job's last run spent in all the operations timed under this name, in seconds.", value.totalMs / 1000);
      addJobFamily(source, `${base}_max_duration_seconds`, "The longest operation the job's last run timed under this name, in seconds.", value.maxMs / 1000);
    }
    // A breakdown (per agency...) travels in the summary and the ledger; the job pushes it as labelled gauges if it wants it.
  }

  const gaugeFamilies = new Map<string, Family>();
  for (const gauge of run.gauges ?? []) {
    let family = gaugeFamilies.get(gauge.name);
    if (!family) {
      if (sources.has(gauge.name)) throw new EtlError("failed", `gauge ${gauge.name} is a family the run already produces; rename it`);
      family = { name: gauge.name, help: gauge.help, samples: [] };
      gaugeFamilies.set(gauge.name, family);
      families.push(family);
    }
    family.samples.push({ labels: gauge.labels, value: gauge.value });
  }

  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} gauge`);
    for (const { labels, value } of family.samples) lines.push(`${family.name}${renderLabels(labels)} ${formatValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * A metric name of the job's as the part of a family name after `etl_`: camelCase split into
 * snake_case, anything outside [a-z0-9_] (colons included: Prometheus keeps them for recording
 * rules) turned into `_`. A timing loses a trailing `_ms`, since it is exported in seconds.
 */
function jobMetricBase(name: string, kind: "counter" | "timing"): string {
  let base = name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_|_$/g, "");
  if (kind === "timing") base = base.replace(/_ms$/, "");
  if (!base) throw new EtlError("failed", `job metric "${name}" has no letters or digits to name a Prometheus metric after`);
  return base;
}

function renderLabels(labels: Record<string, string> | undefined): string {
  if (!labels) return "";
  return `{${Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * POSTs `body` to `<url>/metrics/job/<job>[/<label>/<value>...][/shard/<shard>]` within `timeoutMs` (5 s by default).
 * Throws an EtlError naming the URL, without its credentials: "transient" when the gateway could
 * not be reached in time or answered 5xx or 429, "failed" for any other non-2xx answer, with the
 * status and the start of the gateway's answer in the message.
 */
export async function pushMetrics(options: PushOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? PUSH_TIMEOUT_MS;
  const grouping: Array<[string, string]> = [["job", options.job]];
  grouping.push(...Object.entries(options.grouping ?? {}));
  if (options.shard !== undefined) grouping.push(["shard", options.shard]);
  const { url, authorization } = pushUrl(options.url, grouping);
  const headers: Record<string, string> = { "content-type": CONTENT_TYPE };
  if (authorization) headers.authorization = authorization;

  let status: number;
  let answer: string;
  try {
    const response = await (options.fetch ?? fetch)(url, { method: "POST", headers, body: options.body, signal: AbortSignal.timeout(timeoutMs) });
    status = response.status;
    answer = `${response.status} ${response.statusText}`.trim();
    const text = await response.text();
    if (response.ok) return;
    if (text.trim()) answer += `: ${text.trim().slice(0, ERROR_BODY_CHARS)}`;
  } catch (error) {
    const timedOut = (error as Error)?.name === "TimeoutError";
    const cause = timedOut ? `timed out after ${timeoutMs} ms` : `failed: ${describeFailure(error)}`;
    throw new EtlError("transient", `pushing metrics to ${url} ${cause}`, { cause: error });
  }
  throw new EtlError(status >= 500 || status === 429 ? "transient" : "failed", `pushing metrics to ${url}: the pushgateway answered ${answer}`);
}

/** The error's message, and its code (ECONNREFUSED, ...) when the message does not say it already. */
function describeFailure(error: unknown): string {
  const message = errorMessage(error);
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * The push URL without credentials (safe to print) and the credentials as a Basic authorization
 * header: sent explicitly rather than left in the URL, which the WHATWG fetch refuses.
 *
 * A grouping label value goes into the path as is when it is plainly safe there, else base64url
 * encoded under `<name>@base64` (the Pushgateway's README, "URL"): the only way to carry a `/`
 * (shard `0/4`) or an empty value, and one rule for everything else unusual.
 */
function pushUrl(base: string, grouping: Array<[string, string]>): { url: string; authorization?: string } {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    // The value is not repeated: it may hold a password.
    throw new EtlError("config", "the pushgateway URL is not an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new EtlError("config", "the pushgateway URL is not an absolute http(s) URL");
  const authorization = url.username || url.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
    : undefined;
  url.username = "";
  url.password = "";
  url.search = "";
  url.hash = "";
  const path = grouping.map(([name, value]) => (/^[\w.~-]+$/.test(value) && !/^\.+$/.test(value) ? `${name}/${value}` : `${name}@base64/${Buffer.from(value).toString("base64url") || "="}`));
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/metrics/${path.join("/")}`;
  return { url: url.toString(), authorization };
}
