import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { basename } from "node:path";
import { migrationVersions } from "../../../core/db/migrate";
import { main } from "../../../core/cli/dispatcher";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { createBucket, createTestDatabase, listKeys, putObject, runCommand, runEtl, seedAttachments, signalWhenCopying, type TestDatabase } from "../../harness/fixtures";

describe("etl dispatcher", () => {
  test("every jobs/*.ts file but the generated schedules is a job whose JOB.name is its file name", async () => {
    const files = [...new Bun.Glob("jobs/*.ts").scanSync({ cwd: `${import.meta.dir}/../../..` })].filter((f) => !f.endsWith(".generated.ts")).map((f) => basename(f, ".ts")).sort();
    const entries = discoverJobs();
    expect(entries.map((e) => e.name)).toEqual(files);
    for (const entry of entries) expect((await entry.load()).name).toBe(entry.name);
  });

  test("etl list and etl list --json show every job with lane and description", async () => {
    const text = await runEtl(["list"]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^get_s3_files\s+data_pipeline\s+Copy an agency's attachments.*\[0 2 \* \* \* UTC, 4 shards\]$/m);
    expect(text.stdout).toMatch(/^sync_dags\s+core\s+Mirror a published Airflow DAG package[^[]*$/m);
    const json = await runEtl(["list", "--json"]);
    const jobs = JSON.parse(json.stdout) as Array<{ name: string; lane: string; schedules: unknown[] }>;
    expect(jobs.find((j) => j.name === "get_s3_files")).toMatchObject({
      lane: "data_pipeline",
      schedules: [{ name: "default", cron: "0 2 * * *", timeZone: "UTC", shards: 4, args: { allAgencies: true } }],
    });
    // A job of several schedules names them.
    expect(jobs.find((j) => j.name === "bronze_to_silver")!.schedules).toMatchObject([{ name: "service_requests" }, { name: "partner_payments" }]);
    expect(text.stdout).toMatch(/^bronze_to_silver\s.*\[30 1 \* \* \* UTC x2: service_requests, partner_payments\]$/m);
  });

  test("etl <job> --help and etl run <job> --help print the job's flags and exit 0", async () => {
    for (const argv of [["get_s3_files", "--help"], ["run", "get_s3_files", "--help"], ["run", "get_s3_files", "--", "--help"]]) {
      const run = await runEtl(argv);
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain("--agency-id <id>");
      expect(run.stdout).toContain("(default: 16)");
    }
  });

  test("unknown jobs, commands and options exit 2 with a message naming them", async () => {
    const unknownJob = await runEtl(["run", "no_such_job"]);
    expect(unknownJob.exitCode).toBe(2);
    expect(unknownJob.stderr).toContain(`unknown job "no_such_job"; known jobs: ${discoverJobs().map((e) => e.name).join(", ")}`);
    expect(unknownJob.stderr).toMatch(/known jobs: .*\bget_s3_files\b/);
    // Not a command and not a job: both are listed, and a likely typo is named.
    const typo = await runEtl(["lsit"]);
    expect(typo.exitCode).toBe(2);
    expect(typo.stderr.split("\n")[0]).toBe('etl: unknown command or job "lsit" (did you mean "list"?)');
    expect(typo.stderr).toMatch(/^commands: list, run, .*\bquarantine\b/m);
    expect(typo.stderr).toContain(`jobs: ${discoverJobs().map((e) => e.name).join(", ")}`);
    expect((await runEtl(["ingest_apj"])).stderr).toContain('(did you mean "ingest_api"?)');
    expect((await runEtl(["run", "get_s3_file"])).stderr).toContain('unknown job "get_s3_file" (did you mean "get_s3_files"?)');
    expect((await runEtl(["frobnicate"])).stderr.split("\n")[0]).toBe('etl: unknown command or job "frobnicate"');
    const unknownOption = await runEtl(["--bogus"]);
    expect(unknownOption.exitCode).toBe(2);
    expect(unknownOption.stderr).toContain("unknown option --bogus");
    expect((await runEtl([])).exitCode).toBe(2);
    expect((await runEtl(["list", "--yaml"])).exitCode).toBe(2);
    expect((await runEtl(["run"])).exitCode).toBe(2);
  });

  test("a lane's binary asked for a job of another lane names the binaries that have it (exit 2)", async () => {
    // What scripts/build/build.ts gives etl-observability: that lane's jobs, and every job's lane.
    const all = await loadJobs(discoverJobs());
    const registry = { jobs: discoverJobs().filter((e) => all.find((j) => j.name === e.name)!.lane === "observability"), catalog: all.map(({ name, lane }) => ({ name, lane })) };
    const says = "etl: get_s3_files is a data_pipeline job, which this binary (the observability lane's) does not carry: run it with etl-data_pipeline (image etl-data-pipeline) or etl, which carries every job\n";
    for (const [argv, env] of [[["get_s3_files", "--agency-id", "10"], {}], [["run", "get_s3_files"], {}], [["--agency-id", "10"], { ETL_DEFAULT_JOB: "get_s3_files" }]] as const) {
      let err = "";
      const exitCode = await main([...argv], registry, { env, out: () => {}, err: (text) => void (err += text) });
      expect({ argv, exitCode, err }).toEqual({ argv, exitCode: 2, err: says });
    }
    // A job no binary has is still unknown, with the likeliest name.
    let err = "";
    expect(await main(["run", "get_s3_file"], registry, { env: {}, out: () => {}, err: (text) => void (err += text) })).toBe(2);
    expect(err).toStartWith('etl: unknown job "get_s3_file"');
  });

  test("with ETL_DEFAULT_JOB, arguments starting with a flag run that job", async () => {
    const run = await runEtl(["--help"], { ETL_DEFAULT_JOB: "get_s3_files" });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain("--agency-id <id>");
    const invalid = await runEtl(["--agency-id", "x"], { ETL_DEFAULT_JOB: "get_s3_files" });
    expect(invalid.exitCode).toBe(2);
    expect(invalid.summary).toMatchObject({ job: "get_s3_files", exitCode: 2 });
  });
});

describe("etl run and etl migrate against real servers", () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  test("etl run <job> -- args and etl <job> args behave like bun run jobs/<job>.ts", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.txt" }]);
    await putObject(source, "a.txt", "A");
    const args = ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination];
    const first = await runEtl(["run", "get_s3_files", "--", ...args], { DATABASE_URL: db.url });
    const second = await runEtl(["get_s3_files", ...args], { DATABASE_URL: db.url });
    expect(first.summary).toMatchObject({ job: "get_s3_files", status: "succeeded", counts: { copied: 1 } });
    expect(second.summary).toMatchObject({ status: "succeeded", counts: { copied: 0, skipped: 1 } });
    expect(await listKeys(destination)).toEqual(["agency_id=10/_manifest.csv", "agency_id=10/a.txt"]);
    expect(first.events.every((e) => typeof e.time === "string" && typeof e.level === "string" && typeof e.msg === "string" && e.runId === first.summary?.runId)).toBe(true);
    expect(first.events.filter((e) => e.event === "job.finished")).toHaveLength(1);
  });

  test("etl migrate is idempotent, and 20 concurrent migrators apply each migration once", async () => {
    const runs = await Promise.all(Array.from({ length: 20 }, () => runEtl(["migrate"], { DATABASE_URL: db.url })));
    expect(runs.map((r) => r.exitCode)).toEqual(Array(20).fill(0));
    const applied = runs.flatMap((r) => r.events.filter((e) => e.msg === "applied migrations").flatMap((e) => e.migrations as string[]));
    const versions = migrationVersions();
    expect(versions.length).toBeGreaterThan(2);
    expect(applied).toEqual(versions);
    const rows = await db.sql`select version from etl_schema_migrations order by version`;
    expect(rows.map((r) => r.version)).toEqual(versions);
    const again = await runEtl(["migrate"], { DATABASE_URL: db.url });
    expect(again.summary).toMatchObject({ status: "succeeded", counts: { pending: 0 } });
  });

  test("etl migrate --dry-run lists pending migrations and applies none", async () => {
    const run = await runEtl(["migrate", "--dry-run"], { DATABASE_URL: db.url });
    expect(run.summary).toMatchObject({ status: "succeeded", counts: { pending: migrationVersions().length } });
    const [row] = await db.sql`select to_regclass('etl_schema_migrations') is null as absent`;
    expect(row!.absent).toBe(true);
  });

  test("SIGTERM drains in-flight copies, writes no partial manifest and exits 143", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    const attachments = Array.from({ length: 150 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `k/${i + 1}.txt` }));
    await seedAttachments(db.sql, [10], attachments);
    await Promise.all(attachments.map((a) => putObject(source, a.key, a.key)));
    const child = Bun.spawn(
      ["bun", "jobs/get_s3_files.ts", "--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination, "--batch-size", "10", "--concurrency", "2"],
      { cwd: `${import.meta.dir}/../../..`, env: { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json" }, stdout: "pipe" },
    );
    let output = "";
    const decoder = new TextDecoder();
    const reader = child.stdout.getReader();
    const signalled = signalWhenCopying(destination, () => child.kill("SIGTERM"));
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) output += decoder.decode(chunk.value);
    await signalled;
    expect(await child.exited).toBe(143);
    const events = output.trim().split("\n").map((l) => JSON.parse(l));
    const summary = events.find((e) => e.event === "job.finished");
    expect(summary).toMatchObject({ status: "interrupted", exitCode: 143 });
    // The summary of an interrupted run says what it did.
    expect((summary.counts as { copied: number }).copied).toBeGreaterThan(0);
    expect(events.filter((e) => e.event === "job.finished")).toHaveLength(1);
    const keys = await listKeys(destination);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.length).toBeLessThan(150);
    expect(keys).not.toContain("agency_id=10/_manifest.csv");
  });

  test("one Ctrl-C drains even when it arrives twice at once (bun run on a terminal forwards its copy); ledger and log agree", async () => {
    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    const attachments = Array.from({ length: 150 }, (_, i) => ({ id: 1000 + i, agencyId: 11, key: `c/${i + 1}.txt` }));
    await seedAttachments(db.sql, [11], attachments);
    await Promise.all(attachments.map((a) => putObject(source, a.key, a.key)));
    const child = Bun.spawn(
      ["bun", "jobs/get_s3_files.ts", "--agency-id", "11", "--source-bucket", source, "--destination-bucket", destination, "--batch-size", "10", "--concurrency", "2"],
      { cwd: `${import.meta.dir}/../../..`, env: { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json" }, stdout: "pipe" },
    );
    const signalled = signalWhenCopying(destination, () => {
      child.kill("SIGINT");
      child.kill("SIGINT");
    });
    const output = await new Response(child.stdout).text();
    await signalled;
    expect(await child.exited).toBe(130);
    const events = output.trim().split("\n").map((l) => JSON.parse(l));
    const summary = events.find((e) => e.event === "job.finished");
    expect(summary).toMatchObject({ status: "interrupted", exitCode: 130 });
    expect(String(summary.error ?? "")).not.toContain("forced exit");
    const [row] = await db.sql`select status, counts from etl_job_runs where run_id = ${summary.runId}`;
    expect(row).toMatchObject({ status: "interrupted", counts: summary.counts });
  });
});

describe("bun run from source", () => {
  test("importing a job file has no side effects: nothing printed, no connection", async () => {
    const run = await runCommand(["-e", 'const { JOB } = await import("./jobs/get_s3_files.ts"); console.log(JOB.name)'], [], { DATABASE_URL: "postgres://x:y@127.0.0.1:1/z" });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe("get_s3_files\n");
  });
});
