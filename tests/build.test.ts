/**
 * End-to-end tests of the compiled binary: built once here with scripts/build.ts, then run like
 * production runs it, including as PID 1 of its own PID namespace in a root filesystem that holds
 * only the binary, its libraries and /proc (what the distroless image gives it), as uid 65532.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { migrationVersions } from "../core/migrate";
import { discoverJobs } from "../core/registry";
import { registrySource } from "../scripts/registry_source";
import { startPostgres } from "./harness/postgres_server";
import { ROOT, createBucket, createTestDatabase, listKeys, putObject, runCommand, seedAttachments, signalWhenCopying, type TestDatabase } from "./harness/fixtures";

const isRoot = process.getuid?.() === 0;

test("core/registry.generated.ts lists exactly what the jobs/ and migrations/ globs find (run `bun run build:registry`)", () => {
  expect(readFileSync(join(ROOT, "core/registry.generated.ts"), "utf8")).toBe(registrySource());
});

describe("compiled binary", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    const build = Bun.spawnSync(["bun", "scripts/build.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
    db = await createTestDatabase();
  }, 120_000);
  afterAll(async () => {
    await db?.drop();
  });

  const runBinary = (name: string, argv: string[], env?: Record<string, string | undefined>) => runCommand([], argv, env, [join(ROOT, "dist", name)]);

  test("dist/etl lists and runs get_s3_files end to end; the lane binary has only its lane", async () => {
    const names = async (binary: string) => JSON.parse((await runBinary(binary, ["list", "--json"])).stdout).map((j: { name: string }) => j.name);
    expect(await names("etl")).toEqual(discoverJobs().map((e) => e.name));
    expect(await names("etl-data_pipeline")).toEqual(["get_s3_files", "ingest_api"]);
    expect(await names("etl-core")).toEqual(["sync_dags"]);
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
    let rootfs: string;
    beforeAll(() => {
      rootfs = mkdtempSync(join(tmpdir(), "etl-rootfs-"));
      copyFileSync(join(ROOT, "dist/etl"), join(rootfs, "etl"));
      Bun.spawnSync(["chmod", "755", rootfs, join(rootfs, "etl")]);
      const ldd = Bun.spawnSync(["ldd", join(ROOT, "dist/etl")]).stdout.toString();
      for (const lib of ldd.matchAll(/(\/\S+)/g)) {
        const path = lib[1]!;
        mkdirSync(join(rootfs, dirname(path)), { recursive: true });
        copyFileSync(path, join(rootfs, path));
      }
      mkdirSync(join(rootfs, "proc"));
      mkdirSync(join(rootfs, "tmp"), { mode: 0o1777 });
      Bun.spawnSync(["chmod", "1777", join(rootfs, "tmp")]);
    });
    afterAll(() => rmSync(rootfs, { recursive: true, force: true }));

    const jailed = (argv: string[]) => ["unshare", "--pid", "--fork", `--mount-proc=${rootfs}/proc`, "chroot", "--userspec=65532:65532", rootfs, "/etl", ...argv];

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
