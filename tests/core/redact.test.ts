/**
 * Redaction replaces secrets where they stand as values and known secret values as whole words,
 * never inside other words, and leaves placeholders alone: AWS_SECRET_ACCESS_KEY=test (moto's and
 * LocalStack's usual value) once turned doctor's "latest" into "la[redacted]", and the hint
 * "postgres://user:password@host:5432/db" lost its placeholder.
 */
import { describe, expect, test } from "bun:test";
import { REDACTED, isPlaceholder, redactText, redactValue, secretsFromEnv } from "../../core/redact";
import { createTestDatabase, runEtl } from "../harness/fixtures";

const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

describe("text that is not a secret is left as it is", () => {
  test("a secret value inside another word: AWS_SECRET_ACCESS_KEY=test and doctor's migrations line", () => {
    const secrets = secretsFromEnv({ AWS_SECRET_ACCESS_KEY: "test" });
    for (const text of ["all 8 applied (latest 0008_processed_files)", "bucket test-lake: 3 objects", "contest attestation tests"]) {
      expect(redactText(text, secrets)).toBe(text);
    }
    // An 8-character secret is matched as a whole word, not inside one.
    const password = secretsFromEnv({ DATABASE_URL: "postgres://etl:hunter22@db/etl" });
    expect(redactText("xhunter22 hunter22x hunter22_db", password)).toBe("xhunter22 hunter22x hunter22_db");
  });

  test("a placeholder in a URL of a hint: postgres://user:password@host:5432/db", () => {
    const hint = "environment variable DATABASE_URL is not set (postgres://user:password@host:5432/db or embedded:<data dir>)";
    expect(redactText(hint, secretsFromEnv({}))).toBe(hint);
    expect(redactText("http://user:password@host:9091 and s3://<user>:<password>@x")).toBe("http://user:password@host:9091 and s3://<user>:<password>@x");
  });

  test("placeholders and ordinary names of fields and flags", () => {
    for (const value of ["test", "password", "PASSWORD", "[redacted]", "<password>", "${DB_PASSWORD}", "***", "xxxx", "changeme", ""]) expect(isPlaceholder(value)).toBe(true);
    for (const value of ["hunter22", AWS_SECRET, "s3cr3t-value"]) expect(isPlaceholder(value)).toBe(false);
    expect(redactText("passed=3 failed=0 bypassing=1")).toBe("passed=3 failed=0 bypassing=1");
    expect(redactValue({ passed: 3, status: "passed", keyPrefix: "a/" })).toEqual({ passed: 3, status: "passed", keyPrefix: "a/" });
  });

  test("redacting twice changes nothing more", () => {
    const secrets = secretsFromEnv({ AWS_SECRET_ACCESS_KEY: AWS_SECRET });
    const once = redactText(`postgres://etl:hunter22@db/etl PGPASSWORD=hunter22 Authorization: Bearer abc.def ${AWS_SECRET}`, secrets);
    expect(redactText(once, secrets)).toBe(once);
  });
});

describe("secrets are still redacted", () => {
  test("in URLs, this deployment's password even when it looks like a placeholder", () => {
    expect(redactText("connect postgres://etl:hunter22@db/etl failed")).toBe(`connect postgres://etl:${REDACTED}@db/etl failed`);
    expect(redactText("s3://k:p%40ss@h/x")).toBe(`s3://k:${REDACTED}@h/x`);
    const secrets = secretsFromEnv({ DATABASE_URL: "postgres://postgres:password@localhost/etl" });
    expect(redactText("connect postgres://postgres:password@localhost/etl failed", secrets)).toBe(`connect postgres://postgres:${REDACTED}@localhost/etl failed`);
  });

  test("after NAME= when the name says secret, whatever the value", () => {
    expect(redactText("env AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1")).toBe(`env AWS_SECRET_ACCESS_KEY=${REDACTED} AWS_REGION=us-east-1`);
    expect(redactText("PGPASSWORD='a b' psql")).toBe(`PGPASSWORD=${REDACTED} psql`);
    expect(redactText("GET /items?api_key=k1&page=2 --api-token=t2")).toBe(`GET /items?api_key=${REDACTED}&page=2 --api-token=${REDACTED}`);
  });

  test("in JSON text and in fields named like secrets", () => {
    expect(redactText('400 {"error":"bad","client_secret":"s \\" 1","token" : "abc"}')).toBe(`400 {"error":"bad","client_secret":"${REDACTED}","token" : "${REDACTED}"}`);
    expect(redactValue({ password: "test", nested: { apiKey: "k", pgpPassphrase: "p" }, n: 1 })).toEqual({ password: REDACTED, nested: { apiKey: REDACTED, pgpPassphrase: REDACTED }, n: 1 });
  });

  test("an Authorization header's credentials", () => {
    expect(redactText("request failed; Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x; retrying")).toBe(`request failed; Authorization: Bearer ${REDACTED}; retrying`);
    expect(redactText('headers {"authorization":"Basic dXNlcjpwYXNz"}')).toBe(`headers {"authorization":"${REDACTED}"}`);
    expect(redactText("proxy-authorization=abc123")).toBe(`proxy-authorization=${REDACTED}`);
  });

  test("a known secret value as a word of free text, and a long one even glued to other text", () => {
    const secrets = secretsFromEnv({ AWS_SECRET_ACCESS_KEY: AWS_SECRET, DATABASE_URL: "postgres://etl:p%40ss-word@db/etl", ETL_PGP_PASSPHRASE: "correct horse" });
    expect(redactText(`signing with ${AWS_SECRET}: denied`, secrets)).toBe(`signing with ${REDACTED}: denied`);
    expect(redactText(`x${AWS_SECRET}y`, secrets)).toBe(`x${REDACTED}y`);
    expect(redactText("password p@ss-word, escaped p%40ss-word, (hunter22)", secrets)).toBe(`password ${REDACTED}, escaped ${REDACTED}, (hunter22)`);
    expect(redactText("passphrase 'correct horse' refused", secrets)).toBe(`passphrase '${REDACTED}' refused`);
  });
});

describe("the reported cases, end to end", () => {
  test("etl doctor with AWS_SECRET_ACCESS_KEY=test names the latest migration", async () => {
    const db = await createTestDatabase();
    try {
      expect((await runEtl(["migrate"], { DATABASE_URL: db.url })).exitCode).toBe(0);
      const run = await runEtl(["doctor", "--json"], { DATABASE_URL: db.url, AWS_SECRET_ACCESS_KEY: "test", PUSHGATEWAY_URL: "" });
      const migrations = (JSON.parse(run.stdout) as Array<{ check: string; detail: string }>).find((c) => c.check === "migrations");
      expect(migrations?.detail).toMatch(/^all \d+ applied \(latest \d{4}_\w+\)$/);
      expect(run.stdout).not.toContain(REDACTED);
    } finally {
      await db.drop();
    }
  });

  test("a job run without DATABASE_URL shows the URL placeholder of its hint", async () => {
    const run = await runEtl(["db_metrics"], { DATABASE_URL: "" });
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toContain("(postgres://user:password@host:5432/db or embedded:<data dir>)");
  });
});
