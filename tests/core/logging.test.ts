import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../core/config";
import { ConfigError } from "../../core/errors";
import { createLogger } from "../../core/log";
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
