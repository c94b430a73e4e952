/**
 * End-to-end tests of the compiled binary: built once here with scripts/build/build.ts, then run like
 * production runs it, including as PID 1 of its own PID namespace in a root filesystem that holds
 * only the binary, its libraries and /proc (what the distroless image gives it), as uid 65532.
 * A binary of the DuckDB probe job, compiled by the same function, runs there too.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { openDuckDB } from "../../../core/db/duckdb";
import { migrationVersions } from "../../../core/db/migrate";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { compile, duckdbLibrary, usesDuckDB } from "../../../scripts/build/build";
import { generatedSources } from "../../../scripts/build/registry_source";
import { BUILD_TIMEOUT_MS, buildDist } from "../../harness/dist";
import { startPostgres } from "../../harness/postgres_server";
import { ROOT, createBucket, createTestDatabase, getObjectText, listKeys, putObject, runCommand, seedAttachments, signalWhenCopying, type TestDatabase } from "../../harness/fixtures";

const isRoot = process.getuid?.() === 0;

test("each *.generated.ts lists exactly what its folder's glob finds: migrations, datasets, the jobs' schedules (run `bun run build:registry`)", async () => {
  const sources = await generatedSources();
  expect([...sources.keys()]).toEqual(["migrations/migrations.generated.ts", "processors/datasets/datasets.generated.ts", "jobs/schedules.generated.ts"]);
  for (const [path, source] of sources) expect(readFileSync(join(ROOT, path), "utf8")).toBe(source);
});

test("a binary carries DuckDB when one of its jobs imports @duckdb/node-api, through any file, statically or not", () => {
  expect(usesDuckDB(join(ROOT, "tests/fixtures/jobs/duckdb_probe.ts"))).toBe(true);
  expect(usesDuckDB(join(ROOT, "core/db/duckdb.ts"))).toBe(true);
  expect(usesDuckDB(join(ROOT, "jobs/get_s3_files.ts"))).toBe(false);
  expect(usesDuckDB(join(ROOT, "tests/fixtures/jobs/probe.ts"))).toBe(false);
});

/** The probe job writes this many rows; the tests read its Parquet file back from source. */
const PROBE_ROWS = 100_000;

/** What the probe's Parquet file holds, read by DuckDB from source: compression and rows. */
async function readProbeParquet(file: string): Promise<Array<Record<string, unknown>>> {
  const tempDirectory = mkdtempSync(join(tmpdir(), "etl-duckdb-check-"));
  const duckdb = await openDuckDB({ tempDirectory });
  try {
    const quoted = `'${file.replaceAll("'", "''")}'`;
    return (
      await duckdb.connection.runAndReadAll(
        `select (select string_agg(distinct compression, ',') from parquet_metadata(${quoted})) as compression, count(*) as rows, count(distinct id) as ids from read_parquet(${quoted})`,
      )
    ).getRowObjectsJson();
  } finally {
    duckdb.close();
    rmSync(tempDirectory, { recursive: true, force: true });
  }
}

describe("compiled binary", () => {
  let db: TestDatabase;
  let probeDir: string;
  let probeBinary: string;

  beforeAll(async () => {
    // The same build as tests/scripts/build/dist_s3.test.ts's when both run: one per test run.
    await buildDist();
    probeDir = mkdtempSync(join(tmpdir(), "etl-duckdb-probe-"));
    probeBinary = await compile("etl-duckdb-probe", [{ name: "duckdb_probe", file: join(ROOT, "tests/fixtures/jobs/duckdb_probe.ts") }], { outDir: probeDir });
    db = await createTestDatabase();
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await db?.drop();
    rmSync(probeDir, { recursive: true, force: true });
  });

  const runBinary = (name: string, argv: string[], env?: Record<string, string | undefined>) => runCommand([], argv, env, [join(ROOT, "dist", name)]);

  test("dist/etl lists and runs get_s3_files end to end; the lane binary has only its lane", async () => {
    const names = async (binary: string) => JSON.parse((await runBinary(binary, ["list", "--json"])).stdout).map((j: { name: string }) => j.name);
    expect(await names("etl")).toEqual(discoverJobs().map((e) => e.name));
    const jobs = await loadJobs(discoverJobs());
    const lane = (name: string) => jobs.filter((j) => j.lane === name).map((j) => j.name);
    expect(await names("etl-data_pipeline")).toEqual(lane("data_pipeline"));
    expect(lane("data_pipeline")).toContain("get_s3_files");
    expect(await names("etl-core")).toEqual(lane("core"));
    expect(await names("etl-file_processing")).toEqual(lane("file_processing"));
    expect(lane("file_processing")).toEqual(["decrypt_files", "profile_dataset", "unzip_files"]);
    expect(await names("etl-observability")).toEqual(lane("observability"));
    expect(lane("observability")).toEqual(["db_metrics", "freshness_monitor", "s3_metrics", "schedule_audit"]);
    // Asked for another lane's job, a lane binary names the binaries that have it.
    const lacking = await runBinary("etl-observability", ["get_s3_files", "--agency-id", "10"]);
    expect([lacking.exitCode, lacking.stderr]).toEqual([2, "etl: get_s3_files is a data_pipeline job, which this binary (the observability lane's) does not carry: run it with etl-data_pipeline (image etl-data-pipeline) or etl, which carries every job\n"]);
    // The deployment commands travel in the binary too.
    expect((await runBinary("etl", ["publish-dags", "--help"])).stdout).toContain("--dag-bucket <bucket|file:dir>");

    const [source, destination] = await Promise.all([createBucket(), createBucket()]);
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "bin/a b.txt" }]);
    await putObject(source, "bin/a b.txt", "from the binary");
    const run = await runBinary("etl", ["run", "get_s3_files", "--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination], { DATABASE_URL: db.url });
    expect(run.stderr).toBe("");
    expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { copied: 1 } });
    // The migrations travel inside the binary: the first connect applied them.
    expect(run.events.find((e) => e.msg === "applied migrations")?.migrations).toEqual(migrationVersions());
    expect(await listKeys(destination)).toEqual(["agency_id=10/_manifest.csv", "agency_id=10/bin/a b.txt"]);
    // The run is in the ledger, and the operator commands travel in the binary.
    const runs = JSON.parse((await runBinary("etl", ["runs", "--json"], { DATABASE_URL: db.url })).stdout);
    expect(runs[0]).toMatchObject({ runId: run.summary!.runId, job: "get_s3_files", status: "succeeded", exitCode: 0, counts: { copied: 1 } });
    expect((await runBinary("etl", ["dlq", "list"], { DATABASE_URL: db.url })).stdout).toBe("no open dead letters\n");
    // etl report too, over the schedules the binary carries: each of get_s3_files's four shards is a row of the page.
    const page = join(probeDir, "status.html");
    expect((await runBinary("etl", ["report", "--output", page, "--days", "1"], { DATABASE_URL: db.url })).stdout).toBe(`${page}\n`);
    expect(readFileSync(page, "utf8").match(/data-schedule="get_s3_files" data-shard="\d\/4"/g)?.length).toBeGreaterThanOrEqual(4);
    // etl migrate reads the same embedded list: nothing left to apply.
    expect((await runBinary("etl", ["migrate"], { DATABASE_URL: db.url })).summary).toMatchObject({ status: "succeeded", counts: { pending: 0 } });
    const fresh = await createTestDatabase();
    try {
      expect((await runBinary("etl", ["migrate", "--dry-run"], { DATABASE_URL: fresh.url })).summary).toMatchObject({ status: "succeeded", counts: { pending: migrationVersions().length } });
    } finally {
      await fresh.drop();
    }

    // Built for production: libraries that read NODE_ENV see "production", not "development".
    expect((await runBinary("etl", ["--version"])).stdout).toMatch(/^etl \d+\.\d+\.\d+ \(compiled, NODE_ENV=production\)\n$/);
    const usage = await runBinary("etl", ["get_s3_files", "--agency-id", "x"]);
    expect(usage.exitCode).toBe(2);
    const embedded = await runBinary("etl", ["get_s3_files", "--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination], { DATABASE_URL: "embedded:/tmp/nowhere" });
    expect(embedded.exitCode).toBe(2);
    expect(String(embedded.summary?.error)).toContain("not in a compiled binary");
  });

  test("a DuckDB job runs from the binary (zstd Parquet written and read back); `list` loads no DuckDB, and only its binaries carry the library", async () => {
    // $TMPDIR is where Bun extracts duckdb.node when it is required and where core/db/duckdb.ts
    // writes libduckdb.so: after `list`, it is still empty.
    const scratch = mkdtempSync(join(tmpdir(), "etl-duckdb-tmpdir-"));
    try {
      for (const binary of [probeBinary, join(ROOT, "dist/etl"), join(ROOT, "dist/etl-data_pipeline")]) {
        const list = await runCommand([], ["list"], { TMPDIR: scratch }, [binary]);
        expect(list.exitCode).toBe(0);
        expect(readdirSync(scratch)).toEqual([]);
      }
      expect((await runCommand([], ["list"], {}, [probeBinary])).stdout).toContain("duckdb_probe");

      const output = join(scratch, "out");
      mkdirSync(output);
      const run = await runCommand([], ["duckdb_probe", "--output", `file://${output}`], { TMPDIR: scratch, DATABASE_URL: "" }, [probeBinary]);
      expect(run.stderr).toBe("");
      expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { written: PROBE_ROWS, read: PROBE_ROWS, distinct: PROBE_ROWS } });
      expect(await readProbeParquet(join(output, "probe.parquet"))).toEqual([{ compression: "ZSTD", rows: String(PROBE_ROWS), ids: String(PROBE_ROWS) }]);
      // The run did load DuckDB (so the check after `list` can fail): Bun's copy of duckdb.node is
      // there; the copy of libduckdb.so and the probe's spill directory are gone.
      expect(readdirSync(scratch).filter((name) => name !== "out")).toEqual([expect.stringMatching(/^\.bun-\d+-[0-9a-f]+\.node$/)]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }

    // libduckdb.so is 70 MB: a binary carries it when one of its jobs uses DuckDB, and only then.
    const size = (file: string) => statSync(file).size;
    const withoutDuckDB = size(join(ROOT, "dist/etl-core"));
    expect(size(probeBinary) - withoutDuckDB).toBeGreaterThan(60e6);
    const jobs = await loadJobs(discoverJobs());
    for (const [binary, names] of [["etl", jobs.map((j) => j.name)], ["etl-data_pipeline", jobs.filter((j) => j.lane === "data_pipeline").map((j) => j.name)]] as const) {
      const carries = names.some((name) => usesDuckDB(join(ROOT, "jobs", `${name}.ts`)));
      expect({ binary, carries: size(join(ROOT, "dist", binary)) - withoutDuckDB > 60e6 }).toEqual({ binary, carries });
    }
    // The monitors use no DuckDB, schedule_audit included (its schedules module imports no job).
    expect(size(join(ROOT, "dist/etl-observability")) - withoutDuckDB).toBeLessThan(10e6);
  });

  test("a database that freezes mid-run (connections open, nothing answers) ends in exit 75 with the summary, not a hang", async () => {
    const server = await startPostgres();
    try {
      const sql = postgres(server.url, { max: 1, onnotice: () => {} });
      await sql.unsafe(await Bun.file(join(ROOT, "tests/fixtures/external_schema.sql")).text());
      const rows = Array.from({ length: 100 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `f/${i + 1}.txt` }));
      await seedAttachments(sql, [10], rows);
      await sql.end();
      const [source, destination] = await Promise.all([createBucket(), createBucket()]);
      await Promise.all(rows.map((r) => putObject(source, r.key, "x")));
      const env = { DATABASE_URL: server.url, DATABASE_TIMEOUT_SECONDS: "1", ETL_LEASE_TTL_SECONDS: "3" };
      const started = performance.now();
      const running = runBinary("etl", ["get_s3_files", "--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination, "--concurrency", "1", "--batch-size", "10"], env);
      await signalWhenCopying(destination, () => server.freeze(true));
      const run = await running;
      server.freeze(false);
      expect(run.exitCode).toBe(75);
      expect(run.summary).toMatchObject({ status: "failed", exitCode: 75 });
      expect((run.summary?.counts as { copied: number }).copied).toBeGreaterThan(0);
      // Lease given up after 1.5 s, then the dead-letter flush and the close, each bounded.
      expect(performance.now() - started).toBeLessThan(20_000);
    } finally {
      server.stop();
    }
  });

  describe.skipIf(!isRoot)("in a minimal root filesystem, as uid 65532 and PID 1 (needs root for chroot and unshare)", () => {
    /**
     * A root filesystem holding the binaries, the libraries `ldd` lists for `objects` (not
     * libduckdb.so itself: it travels in the binary), /proc and /tmp. With the DuckDB library among
     * `objects` it has what distroless cc has (libstdc++, libgcc_s); without, what base has.
     */
    const makeRootfs = (objects: string[]): string => {
      const dir = mkdtempSync(join(tmpdir(), "etl-rootfs-"));
      copyFileSync(join(ROOT, "dist/etl"), join(dir, "etl"));
      copyFileSync(join(ROOT, "dist/etl-file_processing"), join(dir, "etl-file-processing"));
      copyFileSync(join(ROOT, "dist/etl-observability"), join(dir, "etl-observability"));
      copyFileSync(probeBinary, join(dir, "etl-duckdb-probe"));
      Bun.spawnSync(["chmod", "755", dir, join(dir, "etl"), join(dir, "etl-file-processing"), join(dir, "etl-observability"), join(dir, "etl-duckdb-probe")]);
      for (const object of objects) {
        const ldd = Bun.spawnSync(["ldd", object]).stdout.toString();
        for (const lib of ldd.matchAll(/(\/\S+)/g)) {
          const path = lib[1]!;
          if (path === duckdbLibrary() || existsSync(join(dir, path))) continue;
          mkdirSync(join(dir, dirname(path)), { recursive: true });
          copyFileSync(path, join(dir, path));
        }
      }
      mkdirSync(join(dir, "proc"));
      mkdirSync(join(dir, "tmp"), { mode: 0o1777 });
      Bun.spawnSync(["chmod", "1777", join(dir, "tmp")]);
      mkdirSync(join(dir, "out"));
      chownSync(join(dir, "out"), 65532, 65532);
      return dir;
    };
    let rootfs: string;
    let bareRootfs: string;
    beforeAll(() => {
      const duckdbNode = Bun.resolveSync("./duckdb.node", dirname(duckdbLibrary()));
      rootfs = makeRootfs([join(ROOT, "dist/etl"), duckdbLibrary(), duckdbNode]);
      bareRootfs = makeRootfs([join(ROOT, "dist/etl")]);
    });
    afterAll(() => {
      for (const dir of [rootfs, bareRootfs]) rmSync(dir, { recursive: true, force: true });
    });

    const jailed = (argv: string[], { root = rootfs, binary = "/etl" } = {}) => ["unshare", "--pid", "--fork", `--mount-proc=${root}/proc`, "chroot", "--userspec=65532:65532", root, binary, ...argv];

    test("a DuckDB job writes and reads back its Parquet file", async () => {
      const run = await runCommand([], [], { DATABASE_URL: "", TMPDIR: "/tmp" }, jailed(["duckdb_probe", "--output", "file:///out"], { binary: "/etl-duckdb-probe" }));
      expect(run.stderr).toBe("");
      expect(run.summary).toMatchObject({ status: "succeeded", counts: { written: PROBE_ROWS, read: PROBE_ROWS } });
      expect(await readProbeParquet(join(rootfs, "out/probe.parquet"))).toEqual([{ compression: "ZSTD", rows: String(PROBE_ROWS), ids: String(PROBE_ROWS) }]);
      // Bun's copy of duckdb.node stays in /tmp; the copy of libduckdb.so and the spill directory do not.
      const left = readdirSync(join(rootfs, "tmp"));
      expect(left.some((name) => /^\.bun-65532-[0-9a-f]+\.node$/.test(name))).toBe(true);
      expect(left.filter((name) => name.startsWith("etl-"))).toEqual([]);
    });

    test("bronze_to_silver builds a silver partition from an S3 lake, against the real servers", async () => {
      const lake = await createBucket();
      await db.sql`insert into agency (id, name) values (10, 'Jail agency') on conflict do nothing`;
      const record = (id: number, title: string) => JSON.stringify({ id, agency_id: 10, title, status: "open", created_at: "2026-11-20T00:00:00Z", updated_at: `2026-11-20T0${id % 10}:00:00Z` });
      await putObject(lake, "bronze/service_requests/dt=2026-11-20/a.ndjson", [record(1, "a"), record(2, "b"), record(11, "c")].join("\n") + "\n");
      const run = await runCommand([], ["bronze_to_silver", "--dataset", "service_requests", "--bucket", lake, "--date", "2026-11-20"], { DATABASE_URL: db.url, TMPDIR: "/tmp" }, jailed([]));
      expect(run.stderr).toBe("");
      expect(run.summary).toMatchObject({ status: "succeeded", counts: { rowsIn: 3, rowsOut: 3, rejected: 0 } });
      const manifest = JSON.parse(await getObjectText(lake, "silver/service_requests/dt=2026-11-20/_manifest.json"));
      expect(manifest.files).toHaveLength(1);
      expect(manifest.columns.find((c: { name: string }) => c.name === "agency_name")).toEqual({ name: "agency_name", type: "VARCHAR" });
    });

    test("the partner path in the file_processing lane binary: an encrypted zip in an S3 inbox ends as a profiled silver partition", async () => {
      const lake = await createBucket();
      await db.sql`insert into agency (id, name) values (10, 'Jail agency') on conflict do nothing`;
      const { generateKey } = await import("openpgp");
      const { privateKey, publicKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "jail" }], format: "armored" });
      const csv = "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at\nP-1,acme,10,12.50,EUR,2026-11-20,,2026-11-20T08:00:00Z\nP-2,acme,10,7.25,USD,2026-11-20,,2026-11-20T09:00:00Z\n";
      const zip = new (await import("yazl")).ZipFile();
      zip.addBuffer(Buffer.from(csv), "acme.csv");
      zip.end();
      const { encryptForRecipient } = await import("../../../processors/file_processing/decrypt/encrypt");
      const chunks: Buffer[] = [];
      for await (const chunk of await encryptForRecipient(zip.outputStream as never, publicKey)) chunks.push(Buffer.from(chunk as Uint8Array));
      await putObject(lake, "inbox/partner_payments/d.zip.pgp", Buffer.concat(chunks));
      const env = { DATABASE_URL: db.url, TMPDIR: "/tmp", ETL_PGP_PRIVATE_KEY: privateKey };
      const lane = (argv: string[]) => runCommand([], argv, env, jailed([], { binary: "/etl-file-processing" }));
      const steps = [
        await lane(["decrypt_files", "--bucket", lake]),
        await lane(["unzip_files", "--bucket", lake, "--prefix", "decrypted/partner_payments/", "--destination", "bronze/partner_payments/dt={date}/", "--date", "2026-11-20"]),
        await runCommand([], ["bronze_to_silver", "--dataset", "partner_payments", "--bucket", lake, "--date", "2026-11-20"], env, jailed([])),
        await lane(["profile_dataset", "--dataset", "partner_payments", "--bucket", lake, "--date", "2026-11-20"]),
      ];
      for (const step of steps) expect(step.stderr).toBe("");
      expect(steps.map((s) => s.summary?.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
      expect(steps[0]!.summary!.counts).toMatchObject({ decrypted: 1, quarantined: 0 });
      expect(steps[1]!.summary!.counts).toMatchObject({ unzipped: 1, extracted: 1 });
      const profile = JSON.parse(await getObjectText(lake, "silver/partner_payments/dt=2026-11-20/_profile/profile.json"));
      expect(profile.rows).toBe(2);
      expect(await listKeys(lake)).toContain("silver/partner_payments/dt=2026-11-20/_profile/profile.html");
    });

    test("the observability lane binary measures what get_s3_files just did: bucket, completeness, database, schedule", async () => {
      const [source, destination] = await Promise.all([createBucket(), createBucket()]);
      await seedAttachments(db.sql, [40], [{ id: 40, agencyId: 40, key: "watch/a.txt" }, { id: 41, agencyId: 40, key: "watch/b.txt" }]);
      await Promise.all([putObject(source, "watch/a.txt", "a"), putObject(source, "watch/b.txt", "bb")]);
      const env = { DATABASE_URL: db.url, TMPDIR: "/tmp" };
      const copy = await runCommand([], ["get_s3_files", "--agency-id", "40", "--source-bucket", source, "--destination-bucket", destination], env, jailed([]));
      expect(copy.summary).toMatchObject({ status: "succeeded", counts: { copied: 2 } });

      // Bare root filesystem: the monitors carry no DuckDB, so distroless base would do.
      const monitor = (argv: string[]) => runCommand([], argv, env, jailed([], { root: bareRootfs, binary: "/etl-observability" }));
      const bucket = await monitor(["s3_metrics", "--bucket", destination, "--depth", "1"]);
      expect(bucket.stderr).toBe("");
      expect(bucket.summary).toMatchObject({ status: "succeeded", counts: { objects: 3, groups: 1 } });
      const complete = await monitor(["freshness_monitor", "--agency-id", "40", "--destination-bucket", destination]);
      expect(complete.summary).toMatchObject({ status: "succeeded", counts: { expected: 2, present: 2, missing: 0, unexpected: 0 } });
      const health = await monitor(["db_metrics"]);
      expect(health.summary).toMatchObject({ status: "succeeded", exitCode: 0 });
      // The binary carries every job's schedule: get_s3_files's four nightly shards, none run at their slot.
      const audit = await monitor(["schedule_audit", "--job", "get_s3_files", "--since", "2d"]);
      expect(audit.summary).toMatchObject({ status: "partial", exitCode: 3, counts: { schedules: 1 } });
      expect((audit.summary?.counts as { missed: number }).missed).toBeGreaterThanOrEqual(4);
      expect((await monitor(["bronze_to_silver", "--help"])).exitCode).toBe(2);
    });

    test("without the C++ runtime (an image on distroless base), a DuckDB job exits 2 saying what is missing", async () => {
      const run = await runCommand([], [], { DATABASE_URL: "", TMPDIR: "/tmp" }, jailed(["duckdb_probe", "--output", "file:///out"], { root: bareRootfs, binary: "/etl-duckdb-probe" }));
      expect(run.exitCode).toBe(2);
      expect(run.summary).toMatchObject({ status: "failed", exitCode: 2 });
      expect(String(run.summary?.error)).toContain("libstdc++.so.6: cannot open shared object file");
      expect(String(run.summary?.error)).toContain("the image must be distroless cc, not base");
    });

    test("runs a job against the real servers", async () => {
      const [source, destination] = await Promise.all([createBucket(), createBucket()]);
      await seedAttachments(db.sql, [20], [{ id: 20, agencyId: 20, key: "jail.txt" }]);
      await putObject(source, "jail.txt", "x");
      const run = await runCommand([], ["get_s3_files", "--agency-id", "20", "--source-bucket", source, "--destination-bucket", destination, "--logical-date", "2026-11-20"], { DATABASE_URL: db.url }, jailed([]));
      expect(run.stderr).toBe("");
      expect(run.summary).toMatchObject({ status: "succeeded", counts: { copied: 1 } });
      const [row] = await db.sql`select status, logical_date from etl_job_runs where run_id = ${String(run.summary!.runId)}::uuid`;
      expect(row).toEqual({ status: "succeeded", logical_date: new Date("2026-11-20T00:00:00Z") });
    });

    test("as PID 1, SIGTERM drains and exits 143", async () => {
      const [source, destination] = await Promise.all([createBucket(), createBucket()]);
      const attachments = Array.from({ length: 150 }, (_, i) => ({ id: 1000 + i, agencyId: 30, key: `t/${i}.txt` }));
      await seedAttachments(db.sql, [30], attachments);
      await Promise.all(attachments.map((a) => putObject(source, a.key, a.key)));
      const child = Bun.spawn(
        jailed(["get_s3_files", "--agency-id", "30", "--source-bucket", source, "--destination-bucket", destination, "--batch-size", "10", "--concurrency", "2"]),
        { env: { ...process.env, DATABASE_URL: db.url, LOG_FORMAT: "json" }, stdout: "pipe", stderr: "pipe" },
      );
      let output = "";
      const reader = child.stdout.getReader();
      const signalled = signalWhenCopying(destination, () => {
        // The job is the child of unshare, PID 1 in its namespace: signal it, not unshare.
        const pid = Bun.spawnSync(["pgrep", "-P", String(child.pid)]).stdout.toString().trim();
        process.kill(Number(pid), "SIGTERM");
      });
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) output += new TextDecoder().decode(chunk.value);
      await signalled;
      await child.exited;
      const summary = output.trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.event === "job.finished");
      expect(summary).toMatchObject({ status: "interrupted", exitCode: 143 });
      expect(child.exitCode).toBe(143);
    });
  });
});
