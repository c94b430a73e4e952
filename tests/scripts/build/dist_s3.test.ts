/**
 * Every job of `etl list`, run from the compiled dist/etl against S3 (moto) buckets, as
 * production runs them: the real chains where the data flows (ingest_api -> bronze_to_silver ->
 * profile_dataset; an encrypted zip in the inbox -> decrypt_files -> unzip_files ->
 * bronze_to_silver; get_s3_files -> its completeness check), each step's exit code and what it
 * landed in S3 checked. The jobs' own tests run from source on both lake kinds; this one catches
 * what only the bundle gets wrong (a dynamic import it lost, a path that exists only in source).
 * The last test fails when a job is added to the registry and not here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { makeRecords, startApiServer, type ApiServer } from "../../harness/api_server";
import { BUILD_TIMEOUT_MS, buildDist } from "../../harness/dist";
import { createTestDatabase, parseCsv, runCommand, seedAttachments, type CliResult, type TestDatabase } from "../../harness/fixtures";
import { createLake, type Lake } from "../../harness/lakes";

describe("every job from dist/etl against S3", () => {
  let etl: string;
  let db: TestDatabase;
  let api: ApiServer;
  /** The lake (bronze, silver, inbox), the attachments' source and archive, the DAG bucket. */
  let lake: Lake, source: Lake, archive: Lake, dagBucket: Lake;
  let work: string;
  let privateKey: string, publicKey: string;
  const ran = new Set<string>();

  beforeAll(async () => {
    const [dist, database, ...lakes] = await Promise.all([buildDist(), createTestDatabase(), createLake("s3"), createLake("s3"), createLake("s3"), createLake("s3")]);
    etl = join(dist, "etl");
    db = database;
    [lake, source, archive, dagBucket] = lakes as [Lake, Lake, Lake, Lake];
    api = startApiServer({ records: makeRecords(120) });
    work = mkdtempSync(join(tmpdir(), "etl-dist-s3-"));
    const { generateKey } = await import("openpgp");
    ({ privateKey, publicKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "dist" }], format: "armored" }));
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "att/one.pdf", size: 3 }, { id: 2, agencyId: 10, key: "att/two words.txt", size: 5 }]);
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    api?.stop();
    await db?.drop();
    await Promise.all([lake, source, archive, dagBucket].map((l) => l?.dispose()));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** `etl run <job> ...argv` from the binary; its stderr must stay empty (no stack trace, no warning of Bun's). */
  async function job(name: string, argv: string[], env: Record<string, string> = {}): Promise<CliResult> {
    ran.add(name);
    const result = await runCommand([], ["run", name, ...argv], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "", ...env }, [etl]);
    expect({ job: name, stderr: result.stderr }).toEqual({ job: name, stderr: "" });
    return result;
  }
  const gunzipLines = (bytes: Uint8Array<ArrayBuffer>) => new TextDecoder().decode(Bun.gunzipSync(bytes)).split("\n").filter(Boolean);

  test("ingest_api -> bronze_to_silver -> profile_dataset: API records land in bronze, become a silver partition, and are profiled", async () => {
    const ingest = await job("ingest_api", ["--dataset", "service_requests", "--bucket", lake.arg, "--logical-date", "2026-11-02", "--records-per-file", "50"], { SERVICE_API_URL: api.url, SERVICE_API_TOKEN: api.token });
    expect(ingest.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { records: 120, files: 3 } });
    const bronze = await lake.keys("bronze/service_requests/dt=2026-11-02/");
    expect(bronze).toHaveLength(3);
    expect((await Promise.all(bronze.map(async (k) => gunzipLines(await lake.read(k))))).flat()).toHaveLength(120);

    const silver = await job("bronze_to_silver", ["--dataset", "service_requests", "--bucket", lake.arg, "--date", "2026-11-02"]);
    expect(silver.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { rowsIn: 120, rowsOut: 120, rejected: 0 } });
    const manifest = JSON.parse(await lake.readText("silver/service_requests/dt=2026-11-02/_manifest.json"));
    expect(manifest).toMatchObject({ dataset: "service_requests", partition: "2026-11-02", rows: { out: 120 } });
    for (const file of manifest.files as Array<{ key: string }>) expect(await lake.keys(file.key)).toEqual([file.key]);

    const profile = await job("profile_dataset", ["--dataset", "service_requests", "--bucket", lake.arg, "--date", "2026-11-02"]);
    expect(profile.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { rows: 120, failed: 0 } });
    expect(JSON.parse(await lake.readText("silver/service_requests/dt=2026-11-02/_profile/profile.json"))).toMatchObject({ rows: 120, source: { store: lake.url } });
    expect(await lake.keys("silver/service_requests/dt=2026-11-02/_profile/profile.html")).toHaveLength(1);
  });

  test("backfill runs bronze_to_silver's days as children of the binary: the built day is unchanged, the new one is built", async () => {
    await lake.write("bronze/service_requests/dt=2026-11-03/late.ndjson", JSON.stringify(makeRecords(1, Date.parse("2026-11-03T08:00:00Z"), 500)[0]) + "\n");
    const run = await job("backfill", ["--job", "bronze_to_silver", "--from", "2026-11-02", "--to", "2026-11-03", "--", "--dataset", "service_requests", "--bucket", lake.arg]);
    const summary = run.events.find((e) => e.event === "job.finished" && e.job === "backfill");
    expect(summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { planned: 2, succeeded: 2, failed: 0 } });
    expect(JSON.parse(await lake.readText("silver/service_requests/dt=2026-11-03/_manifest.json"))).toMatchObject({ rows: { out: 1 } });
  });

  test("an encrypted zip in the inbox -> decrypt_files -> unzip_files -> bronze_to_silver", async () => {
    const csv = "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at\nP-1,acme,10,12.50,EUR,2026-11-20,,2026-11-20T08:00:00Z\nP-2,acme,10,7.25,USD,2026-11-20,,2026-11-20T09:00:00Z\n";
    const zip = new (await import("yazl")).ZipFile();
    zip.addBuffer(Buffer.from(csv), "acme.csv");
    zip.end();
    const { encryptForRecipient } = await import("../../../processors/file_processing/decrypt/encrypt");
    const encrypted = await new Response(Readable.toWeb(await encryptForRecipient(zip.outputStream as never, publicKey)) as ReadableStream).bytes();
    await lake.write("inbox/partner_payments/d.zip.pgp", encrypted);
    const env = { ETL_PGP_PRIVATE_KEY: privateKey };

    const decrypt = await job("decrypt_files", ["--bucket", lake.arg], env);
    expect(decrypt.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { decrypted: 1, quarantined: 0 } });
    expect(await lake.keys("decrypted/partner_payments/")).toEqual(["decrypted/partner_payments/d.zip"]);

    const unzip = await job("unzip_files", ["--bucket", lake.arg, "--prefix", "decrypted/partner_payments/", "--destination", "bronze/partner_payments/dt={date}/", "--date", "2026-11-20"]);
    expect(unzip.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { unzipped: 1, extracted: 1 } });
    const extracted = (await lake.keys("bronze/partner_payments/dt=2026-11-20/")).filter((k) => k.endsWith(".csv"));
    expect(extracted).toHaveLength(1);
    expect(await lake.readText(extracted[0]!)).toBe(csv);

    const silver = await job("bronze_to_silver", ["--dataset", "partner_payments", "--bucket", lake.arg, "--date", "2026-11-20"]);
    expect(silver.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { rowsIn: 2, rowsOut: 2 } });
    expect(await lake.keys("silver/partner_payments/dt=2026-11-20/_manifest.json")).toHaveLength(1);
  });

  test("get_s3_files copies the agency's attachments; the completeness check finds them all and writes its report to S3", async () => {
    await source.write("att/one.pdf", "pdf");
    await source.write("att/two words.txt", "words");
    const copy = await job("get_s3_files", ["--agency-id", "10", "--source-bucket", source.arg, "--destination-bucket", archive.arg]);
    expect(copy.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: 2 } });
    expect(await archive.keys()).toEqual(["agency_id=10/_manifest.csv", "agency_id=10/att/one.pdf", "agency_id=10/att/two words.txt"]);
    expect(parseCsv(await archive.readText("agency_id=10/_manifest.csv")).map((r) => r.status)).toEqual(["copied", "copied"]);

    const check = await job("freshness_monitor", ["--agency-id", "10", "--destination-bucket", archive.arg, "--report-to", lake.arg]);
    expect(check.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { expected: 2, present: 2, missing: 0, unexpected: 0 } });
    const report = await lake.keys("completeness/agency_id=10/");
    expect(report).toEqual([`completeness/agency_id=10/${check.summary!.runId}.csv`]);
  });

  test("freshness_monitor over the declared sources, their buckets mapped onto these: all fresh, dbt's sources.json in S3", async () => {
    const run = await job("freshness_monitor", [`--bucket-map=etl-lake=${lake.arg},etl-attachments-archive=${archive.arg}`, "--sources-json", lake.arg]);
    expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { failed: 0, runtimeError: 0 } });
    const artefact = JSON.parse(await lake.readText("target/sources.json"));
    expect(artefact.results.length).toBe((run.summary!.counts as { sources: number }).sources);
  });

  test("s3_metrics counts the lake's objects per prefix; db_metrics and schedule_audit read the database", async () => {
    const keys = await lake.keys();
    const metrics = await job("s3_metrics", ["--bucket", lake.arg, "--depth", "1"]);
    expect(metrics.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { objects: keys.length } });
    const groups = metrics.events.find((e) => e.event === "s3_metrics.groups")!.groups as Array<{ prefix: string; objects: number }>;
    expect(groups.find((g) => g.prefix === "bronze/")!.objects).toBe(keys.filter((k) => k.startsWith("bronze/")).length);

    expect((await job("db_metrics", [])).summary).toMatchObject({ status: "succeeded", exitCode: 0 });
    // get_s3_files ran once, at no slot of its schedule: its nightly slots are missed (exit 3).
    const audit = await job("schedule_audit", ["--job", "get_s3_files", "--since", "2d"]);
    expect(audit.summary).toMatchObject({ status: "partial", exitCode: 3, counts: { schedules: 1 } });
  });

  test("sync_dags mirrors the DAG package that publish-dags put in the S3 DAG bucket", async () => {
    const out = join(work, "dags");
    // Airflow's DAG folder exists; the package's subfolder is the job's to make.
    const airflow = join(work, "airflow");
    mkdirSync(airflow);
    expect((await runCommand([], ["dags", "--package", "etl", "--out", out], {}, [etl])).exitCode).toBe(0);
    const publish = await runCommand([], ["publish-dags", "--dag-bucket", dagBucket.arg, "--env", "prod", "--package", "etl", "--dir", out], {}, [etl]);
    expect(publish.summary).toMatchObject({ status: "succeeded", exitCode: 0 });
    const sync = await job("sync_dags", ["--dag-bucket", dagBucket.arg, "--env", "prod", "--package", "etl", "--dag-folder", airflow]);
    const files = readdirSync(out).sort();
    expect(sync.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { added: files.length } });
    expect(readdirSync(join(airflow, "etl")).sort()).toEqual(files);
    for (const file of files) expect(readFileSync(join(airflow, "etl", file), "utf8")).toBe(readFileSync(join(out, file), "utf8"));
  });

  test("every job `etl list` names was run above", async () => {
    const listed = JSON.parse((await runCommand([], ["list", "--json"], {}, [etl])).stdout).map((j: { name: string }) => j.name);
    expect([...ran].sort()).toEqual([...listed].sort());
  });
});
