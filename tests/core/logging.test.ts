import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../core/config";
import { ConfigError } from "../../core/errors";
import { createLogger } from "../../core/log";
import { formatDuration } from "../../core/duration";
import { arg } from "../../core/runtime/args";
import { defineJob } from "../../core/runtime/job";
import { formatBytes } from "../../core/bytes";
import { formatRunSummary } from "../../core/runtime/run_summary_text";
import { locationUrl } from "../../core/storage/object_store";

const stripColours = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");
import { parseLocation } from "../../core/storage/object_store";
import { REDACTED, redactText, redactValue, secretsFromEnv } from "../../core/redact";
import { csvField } from "../../processors/data_pipeline/get_s3_files/copy_manifest";

describe("redaction", () => {
  const env = { AWS_SECRET_ACCESS_KEY: "aws-secret-value", DATABASE_URL: "postgres://etl:p%40ss-word@db:5432/etl" };
  const secrets = secretsFromEnv(env);

  test("scrubs URL passwords, known secret values and secret-named fields", () => {
    expect(redactText("connect postgres://etl:hunter22@db/etl failed")).toBe(`connect postgres://etl:${REDACTED}@db/etl failed`);
    expect(redactText("key aws-secret-value leaked", secrets)).toBe(`key ${REDACTED} leaked`);
    expect(redactText("password p@ss-word in text", secrets)).toBe(`password ${REDACTED} in text`);
    expect(redactValue({ token: "abc", nested: { apiKey: "k", note: "aws-secret-value" }, n: 1 }, secrets)).toEqual({
      token: REDACTED,
      nested: { apiKey: REDACTED, note: REDACTED },
      n: 1,
    });
  });

  test("values of secret-named variables are secrets, except a *_FILE variable's, which is the path of a mounted Secret", () => {
    const found = secretsFromEnv({ ETL_PGP_PASSPHRASE: "correct horse", ETL_PGP_PRIVATE_KEY_FILE: "/var/run/secrets/pgp/key.asc", SERVICE_API_TOKEN: "true" });
    expect(found).toEqual(["correct horse"]);
  });
});

describe("logger", () => {
  test("JSON lines carry time, level, msg and bound fields; levels below LOG_LEVEL are dropped", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", level: "info", write: (l) => lines.push(l), secrets: ["s3cr3t-value"] }).child({ job: "j", runId: "r" });
    log.debug("hidden");
    log.info("same", { n: 1 });
    log.info("same", { n: 1 });
    log.warn("with secret s3cr3t-value", { error: new Error("boom") });
    const events = lines.map((l) => JSON.parse(l));
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ level: "info", msg: "same", job: "j", runId: "r", n: 1 });
    expect(typeof events[0].time).toBe("string");
    expect(events[2]).toMatchObject({ level: "warn", error: { name: "Error", message: "boom" } });
    expect(lines.join("")).not.toContain("s3cr3t-value");
  });
});

describe("pretty lines", () => {
  const pretty = () => {
    const lines: string[] = [];
    const log = createLogger({ format: "pretty", level: "info", write: (l) => void lines.push(stripColours(l).slice(13)) }).child({ job: "j", runId: "0123456789ab" });
    return { log, lines };
  };

  test("leave out the event name and fields without a value; never print =undefined", () => {
    const { log, lines } = pretty();
    log.info("listed the stores", { event: "x.listed", attachments: 3, sourcePrefix: "docs/", sourceObjects: undefined, nested: { a: 1 } });
    expect(lines).toEqual(['INFO  [j 01234567] listed the stores attachments=3 sourcePrefix=docs/ nested={"a":1}\n']);
  });

  test("a line's own pretty text stands for its message and fields; pretty: false lines are for JSON only", () => {
    const { log, lines } = pretty();
    log.warn("freshness source", { event: "freshness.source", name: "s", status: "warn" }, { pretty: "s warn: last loaded 3h ago" });
    log.info("freshness", { event: "freshness.result", results: [{ name: "s" }] }, { pretty: false });
    expect(lines).toEqual(["WARN  [j 01234567] s warn: last loaded 3h ago\n"]);
    const json: string[] = [];
    const log2 = createLogger({ format: "json", level: "info", write: (l) => void json.push(l) });
    log2.warn("freshness source", { name: "s" }, { pretty: "s warn" });
    log2.info("freshness", { results: [] }, { pretty: false });
    expect(json.map((l) => JSON.parse(l).msg)).toEqual(["freshness source", "freshness"]);
    expect(log2.format).toBe("json");
  });
});

describe("the run summary on a terminal", () => {
  const view = { job: "get_s3_files", runId: "4f0c5e1a-0000-4000-8000-000000000000", recorded: true, started: true, durationMs: 5_630 } as const;

  test("status, counts in the job's order, bytes and rate in units, outputs, the run and how to show it", () => {
    const text = stripColours(formatRunSummary({ ...view, status: "succeeded", exitCode: 0, counts: { copied: 20_000, skipped: 0, failed: 0 }, bytes: 69_990_000, outputs: ["s3://archive/agency_id=10/"] }));
    expect(text).toBe(
      [
        "✔ get_s3_files succeeded in 5.6s",
        "  copied 20,000 · skipped 0 · failed 0",
        "  transferred 66.7 MiB at 11.9 MiB/s",
        "  outputs  s3://archive/agency_id=10/",
        "  run      4f0c5e1a-0000-4000-8000-000000000000  (etl runs show 4f0c5e1a)",
        "",
      ].join("\n"),
    );
  });

  test("a failed run says its exit code and error; an unrecorded one says so; a dry run wrote nothing", () => {
    const failed = stripColours(formatRunSummary({ ...view, status: "failed", exitCode: 75, counts: {}, error: "S3 ListObjectsV2 s3://a failed: the endpoint refused the connection", recorded: false }));
    expect(failed.split("\n")).toEqual([
      "✖ get_s3_files failed in 5.6s (exit 75, transient: a dependency was unavailable, a retry may succeed)",
      "  error    S3 ListObjectsV2 s3://a failed: the endpoint refused the connection",
      "  run      4f0c5e1a-0000-4000-8000-000000000000 (not recorded: no DATABASE_URL)",
      "",
    ]);
    const interrupted = stripColours(formatRunSummary({ ...view, status: "interrupted", exitCode: 130, counts: { neverDelivered: 1, failedSlots: 2 } }));
    expect(interrupted).toStartWith("✖ get_s3_files interrupted in 5.6s (exit 130, SIGINT)\n  never delivered 1 · failed slots 2\n");
    const dry = stripColours(formatRunSummary({ ...view, status: "succeeded", exitCode: 0, counts: {}, dryRun: true, outputs: ["s3://x/"] }));
    expect(dry).toContain("✔ get_s3_files succeeded (dry run) in 5.6s\n  outputs  none: a dry run writes nothing\n");
  });

  test("a long error wraps under itself within the terminal's width; a refused start is one error and its exit", () => {
    const error = "the S3 endpoint http://minio.storage.svc.cluster.local:9000 refused every connection for ninety seconds while listing";
    const lines = stripColours(formatRunSummary({ ...view, status: "failed", exitCode: 1, counts: {}, error }, 60)).split("\n");
    expect(lines.every((l) => l.length <= 59)).toBe(true);
    const run = lines.findIndex((l) => l.startsWith("  run "));
    expect(lines.slice(1, run).join(" ").replace(/ +/g, " ")).toBe(`  error ${error}`.replace(/ +/g, " "));
    expect(lines[2]).toStartWith(" ".repeat(11));
    const refused = stripColours(formatRunSummary({ ...view, status: "failed", exitCode: 2, counts: {}, error: "get_s3_files: --source-bucket and --destination-bucket are required", started: false, arguments: true, recorded: false }));
    expect(refused).toBe("✖ get_s3_files: --source-bucket and --destination-bucket are required\n  exit 2 · --help lists every flag\n");
    const misconfigured = stripColours(formatRunSummary({ ...view, status: "failed", exitCode: 2, counts: {}, error: "environment variable LOG_LEVEL must be one of debug, info, warn, error", started: false, recorded: false }));
    expect(misconfigured).toBe("✖ get_s3_files: environment variable LOG_LEVEL must be one of debug, info, warn, error\n  exit 2\n");
  });

  test("sizes and durations as a person reads them", () => {
    expect([0, 1023, 1536, 69_990_000, 5 * 1024 ** 3].map(formatBytes)).toEqual(["0 B", "1023 B", "1.5 KiB", "66.7 MiB", "5.0 GiB"]);
    expect([420, 5_630, 59_900, 190_000, 7_500_000].map(formatDuration)).toEqual(["420ms", "5.6s", "1m0s", "3m10s", "2h5m"]);
  });
});

describe("a run's output on a terminal and in JSON", () => {
  const job = defineJob({
    name: "summary_probe",
    description: "Test job: copies as it is told",
    lane: "core",
    args: { bucket: arg.location("where"), target: arg.location("to"), fail: arg.flag("throw midway") },
    outputs: (args) => [`${locationUrl(args.target)}/copies/`],
    async run(args, ctx) {
      ctx.log.info("listed the stores", { attachments: 3, sourceObjects: undefined });
      ctx.progress.advance(3, 3 * 1024 * 1024);
      if (args.fail) throw new Error("the copier broke");
      // The job's own order, not the alphabet's.
      return { copied: 3, skipped: 0, failed: 0 };
    },
  });
  const run = async (argv: string[], format: "pretty" | "json") => {
    const lines: string[] = [];
    const exitCode = await job.entrypoint(argv, { env: { LOG_FORMAT: format }, write: (l) => void lines.push(stripColours(l)), handleSignals: false });
    return { exitCode, text: lines.join(""), lines: lines.join("").split("\n").slice(0, -1) };
  };
  const argv = ["--bucket", "file:/tmp/in", "--target", "file:/tmp/out"];

  test("pretty: no argument dump, no =undefined, the summary last", async () => {
    const { exitCode, lines, text } = await run(argv, "pretty");
    expect(exitCode).toBe(0);
    expect(text).not.toContain("undefined");
    expect(lines.map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ""))).toEqual([
      expect.stringMatching(/^INFO  \[summary_probe [0-9a-f]{8}\] job started$/),
      expect.stringMatching(/^INFO  \[summary_probe [0-9a-f]{8}\] listed the stores attachments=3$/),
      expect.stringMatching(/^✔ summary_probe succeeded in (\d+ms|\d+\.\ds)$/),
      "  copied 3 · skipped 0 · failed 0",
      expect.stringMatching(/^  transferred 3\.0 MiB at [\d.]+ [KMG]iB\/s$/),
      "  outputs  file:///tmp/out/copies/",
      expect.stringMatching(/^  run      [0-9a-f-]{36} \(not recorded: no DATABASE_URL\)$/),
    ]);
  });

  test("pretty: a failure and a usage error are each said once", async () => {
    const failed = await run([...argv, "--fail"], "pretty");
    expect(failed.exitCode).toBe(1);
    expect(failed.text.split("the copier broke")).toHaveLength(2);
    expect(failed.lines.at(-2)).toBe("  error    the copier broke");
    const usage = await run(["--bucket", "file:/tmp/in"], "pretty");
    expect(usage.exitCode).toBe(2);
    expect(usage.lines).toEqual(["✖ summary_probe: --target is required", "  exit 2 · --help lists every flag"]);
    // A setting refused: on a terminal (no LOG_FORMAT to read), the error and its exit, no --help.
    const lines: string[] = [];
    expect(await job.entrypoint(argv, { env: { LOG_LEVEL: "loud" }, stdoutIsTTY: true, write: (l) => void lines.push(stripColours(l)), handleSignals: false })).toBe(2);
    expect(lines.join("")).toBe("✖ summary_probe: environment variable LOG_LEVEL must be debug, info, warn or error\n  exit 2\n");
  });

  test("JSON: the same events as before, job.finished last with the fields DESIGN.md names, in their order", async () => {
    const { exitCode, lines } = await run(argv, "json");
    expect(exitCode).toBe(0);
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.msg)).toEqual(["job started", "listed the stores", "job finished"]);
    expect(events[0]).toMatchObject({ event: "job.started", args: { bucket: "file:///tmp/in", target: "file:///tmp/out", fail: false }, dryRun: false });
    expect(Object.keys(events[2]!)).toEqual(["time", "level", "msg", "job", "runId", "event", "status", "exitCode", "durationMs", "counts", "metrics", "dryRun"]);
    expect(events[2]).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: 3, skipped: 0, failed: 0 } });
    expect(Object.keys(events[2]!.counts as object)).toEqual(["copied", "skipped", "failed"]);
    const usage = await run(["--bucket", "file:/tmp/in"], "json");
    expect(usage.lines.map((l) => JSON.parse(l).msg)).toEqual(["summary_probe: --target is required", "job finished"]);
  });
});

describe("config", () => {
  test("defaults: json when not a TTY, info, us-east-1", () => {
    expect(loadConfig({}, false)).toEqual({ logFormat: "json", logLevel: "info", databaseUrl: undefined, s3Endpoint: undefined, awsRegion: "us-east-1", leaseTtlMs: 30_000, s3TimeoutMs: 15_000, databaseTimeoutMs: 30_000, pushgatewayUrl: undefined, progressIntervalMs: 30_000 });
    expect(loadConfig({}, true).logFormat).toBe("pretty");
  });

  test("names the variable and never echoes its value", () => {
    try {
      loadConfig({ DATABASE_URL: "mysql://user:topsecret@h/db" }, false);
      throw new Error("accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toStartWith("environment variable DATABASE_URL must be");
      expect((error as Error).message).not.toContain("topsecret");
    }
  });
});

describe("locations", () => {
  test("parses buckets and directories", () => {
    expect(parseLocation("my-bucket")).toEqual({ kind: "s3", bucket: "my-bucket" });
    expect(parseLocation("s3://my.bucket/")).toEqual({ kind: "s3", bucket: "my.bucket" });
    expect(parseLocation("file:///data/in")).toEqual({ kind: "file", dir: "/data/in" });
    expect(parseLocation("file:rel/dir", "/work")).toEqual({ kind: "file", dir: "/work/rel/dir" });
    expect(() => parseLocation("UPPER")).toThrow();
    expect(() => parseLocation("file:")).toThrow();
  });
});

describe("csvField", () => {
  test("quotes only what needs quoting", () => {
    expect(csvField("plain key.txt")).toBe("plain key.txt");
    expect(csvField('a,"b"')).toBe('"a,""b"""');
    expect(csvField("line\nbreak")).toBe('"line\nbreak"');
    expect(csvField(12)).toBe("12");
  });
});
