import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { main } from "../../../core/cli/dispatcher";
import { discoverJobs } from "../../../core/runtime/registry";
import { createTestDatabase, runCommand, runEtl, type TestDatabase } from "../../harness/fixtures";

/**
 * `etl runs` over a ledger written by hand (adversarial rows: long names, long multi-line errors,
 * many counts, wide characters) and by real runs of the probe job. One database for the file.
 */
let db: TestDatabase;
const registry = { jobs: discoverJobs() };

beforeAll(async () => {
  db = await createTestDatabase();
  expect((await runEtl(["migrate"], { DATABASE_URL: db.url })).exitCode).toBe(0);
});
afterAll(async () => {
  await db.drop();
});

/** The dispatcher in this process, as a terminal (`tty`) or a pipe would see it. */
async function etl(argv: string[], options: { env?: Record<string, string>; tty?: boolean } = {}) {
  let stdout = "";
  let stderr = "";
  const exitCode = await main(argv, registry, {
    env: { DATABASE_URL: db.url, ...options.env },
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
    stdoutIsTTY: options.tty ?? false,
  });
  return { exitCode, stdout, stderr };
}

interface Row {
  runId?: string;
  job: string;
  status: string;
  schedule?: string | null;
  shard?: string | null;
  counts?: Record<string, number>;
  error?: string | null;
  reason?: string | null;
  dryRun?: boolean;
  startedSecondsAgo: number;
  durationMs: number;
}

async function insertRun(row: Row): Promise<string> {
  const runId = row.runId ?? crypto.randomUUID();
  const counts = row.counts ?? {};
  await db.sql`
    insert into etl_job_runs (run_id, job, lane, status, exit_code, schedule, shard, args_hash, dry_run, counts, count_order, error, reason, host, version,
                              started_at, heartbeat_at, finished_at)
    values (${runId}::uuid, ${row.job}, 'core', ${row.status}, ${row.status === "running" ? null : 0}, ${row.schedule ?? null}, ${row.shard ?? null}, 'h',
            ${row.dryRun ?? false}, ${db.sql.json(counts)}, ${Object.keys(counts)}::text[], ${row.error ?? null}, ${row.reason ?? null}, 'host-1', 'test',
            now() - ${row.startedSecondsAgo} * interval '1 second',
            now() - ${row.startedSecondsAgo} * interval '1 second' + ${row.durationMs} * interval '1 millisecond',
            ${row.status === "running" ? null : db.sql`now() - ${row.startedSecondsAgo} * interval '1 second' + ${row.durationMs} * interval '1 millisecond'`})`;
  return runId;
}

const width = (line: string) => Bun.stringWidth(line);

describe("etl runs", () => {
  test("counts come back in the order the run reported them, not jsonb's", async () => {
    const run = await runCommand(["tests/fixtures/jobs/probe.ts"], ["--outcome", "quarantined"], { DATABASE_URL: db.url });
    expect(run.exitCode).toBe(3);
    const runId = String(run.summary!.runId);
    // The probe reports { done, quarantined, failed }; jsonb keeps keys by length, then bytes.
    const [raw] = await db.sql`select counts::text as counts from etl_job_runs where run_id = ${runId}::uuid`;
    expect(Object.keys(JSON.parse(raw!.counts))).toEqual(["done", "failed", "quarantined"]);
    const json = await etl(["runs", "--job", "probe", "-o", "json"]);
    expect(json.exitCode).toBe(0);
    const [listed] = JSON.parse(json.stdout);
    expect(listed.runId).toBe(runId);
    expect(Object.keys(listed.counts)).toEqual(["done", "quarantined", "failed"]);
    expect(Object.keys(listed.counts)).toEqual(Object.keys(run.summary!.counts as object));
    const table = await etl(["runs", "--job", "probe"]);
    expect(table.stdout).toMatch(new RegExp(`^${runId.slice(0, 8)}  probe +partial .* done=1 quarantined=1 failed=0`, "m"));
    const shown = await etl(["runs", "show", runId.slice(0, 8)]);
    expect(shown.stdout).toMatch(/^counts +done=1 quarantined=1 failed=0$/m);
  });

  test("every line fits 120 columns with adversarial rows; -o wide has every field whole; -o json is the ledger's rows", async () => {
    const longJob = `a_job_whose_name_goes_on_and_on_${"x".repeat(40)}`;
    const longError = `connect ECONNREFUSED 10.0.12.7:5432\n\tat the database of ${"etl-prod-db.internal.example.com/".repeat(6)} 数据库拒绝连接 (after 5 attempts)`;
    const manyCounts = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`count_number_${i}`, 1_000_000 * i + 7]));
    const ids = [
      await insertRun({ job: longJob, status: "failed", schedule: `a_schedule_${"y".repeat(50)}`, counts: manyCounts, error: longError, startedSecondsAgo: 4000, durationMs: 31_400 }),
      await insertRun({ job: "get_s3_files", status: "partial", schedule: "default", shard: "11/16", counts: { copied: 12_840, skipped: 310_552, failed: 3 }, startedSecondsAgo: 300, durationMs: 252_000 }),
      await insertRun({ job: "schedule_audit", status: "succeeded", schedule: "default", counts: manyCounts, startedSecondsAgo: 90, durationMs: 195 }),
      await insertRun({ job: "bronze_to_silver", status: "skipped", schedule: "service_requests", reason: `run ${crypto.randomUUID()} already succeeded ${"for this slot ".repeat(10)}`, startedSecondsAgo: 7200, durationMs: 48 }),
      await insertRun({ job: "ingest_api", status: "succeeded", dryRun: true, startedSecondsAgo: 2 * 86_400, durationMs: 4200 }),
    ];
    const table = await etl(["runs"]);
    expect(table.exitCode).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(ids.length);
    expect(lines[0]).toMatch(/^RUN +JOB +SCHEDULE +STATUS +AGE +DURATION +COUNTS +REASON$/);
    for (const line of lines) expect({ line, width: width(line) <= 120 }).toEqual({ line, width: true });
    const rowOf = (id: string) => lines.find((l) => l.startsWith(id.slice(0, 8)))!;
    // Everything long: COUNTS and REASON at their minimums (16, 12), then JOB and SCHEDULE cut alike.
    expect(rowOf(ids[0]!)).toMatch(/^\S{8}  a_job_whose_name_goes_\S*…  a_schedule_y+…  failed +66m +31s  count_number_0=…  connect ECO…$/);
    expect(rowOf(ids[1]!)).toMatch(/ get_s3_files\[11\/16\] +default +partial +5m +4m12s  copied=13k skipped=311k faile…$/);
    // No reason: its counts run on over the empty REASON, to the line's end.
    expect(rowOf(ids[2]!)).toMatch(/ 195ms  count_number_0=7 count_number…$/);
    expect(width(rowOf(ids[2]!))).toBe(120);
    expect(rowOf(ids[3]!)).toMatch(/ skipped +120m +48ms  - +run \S+…$/);
    expect(rowOf(ids[4]!)).toMatch(/ ingest_api +- +succeeded +2d +4\.2s  - +dry run$/);

    // Without the longest rows, the others have room: a 195 ms run is 195ms, not 0.0s.
    const recent = (await etl(["runs", "--since", "1h"])).stdout.trimEnd().split("\n");
    for (const line of recent) expect(width(line)).toBeLessThanOrEqual(120);
    const recentRow = (id: string) => recent.find((l) => l.startsWith(id.slice(0, 8)))!;
    // Every run here is of its job's default schedule, or none: no SCHEDULE column.
    expect(recent[0]).toMatch(/^RUN +JOB +STATUS +AGE +DURATION +COUNTS$/);
    expect(recentRow(ids[1]!)).toMatch(/^\S{8}  get_s3_files\[11\/16\] +partial +5m +4m12s  copied=13k skipped=311k failed=3$/);
    expect(recentRow(ids[2]!)).toMatch(/ schedule_audit +succeeded +90s +195ms  count_number_0=7 count_number_1=1M count_number_2=2M .*…$/);
    expect(width(recentRow(ids[2]!))).toBe(120);

    // COLUMNS moves the limit: nothing is cut at 400.
    const roomy = await etl(["runs"], { env: { COLUMNS: "400" } });
    for (const line of roomy.stdout.trimEnd().split("\n")) expect(width(line)).toBeLessThanOrEqual(400);
    expect(roomy.stdout).toContain(longJob);

    const wide = await etl(["runs", "-o", "wide"]);
    expect(wide.exitCode).toBe(0);
    for (const id of ids) expect(wide.stdout).toContain(id);
    expect(wide.stdout).toContain(longJob);
    expect(wide.stdout).toContain(longError.replace(/\s+/g, " "));
    expect(wide.stdout).toContain(Object.entries(manyCounts).map(([k, v]) => `${k}=${v}`).join(" "));
    expect(wide.stdout).not.toContain("…");
    expect(wide.stdout.split("\n")[0]).toMatch(/^RUN ID +JOB +SCHEDULE +LOGICAL DATE +SHARD +STATUS +EXIT +STARTED +AGE +DURATION +HOST +COUNTS +REASON$/);

    const json = await etl(["runs", "--limit", "5", "-o", "json"]);
    const listed = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    const ledger = await db.sql`
      select run_id::text as "runId", job, status, schedule, shard, counts, error, reason, dry_run as "dryRun", started_at as "startedAt"
      from etl_job_runs order by started_at desc, run_id limit 5`;
    expect(listed.map((r) => r.runId)).toEqual(ledger.map((r) => r.runId));
    for (const [i, row] of ledger.entries()) expect(listed[i]).toMatchObject({ ...row, startedAt: row.startedAt.toISOString() });
    expect(Object.keys(listed[0]!)).toEqual([
      "runId", "job", "lane", "status", "exitCode", "logicalDate", "schedule", "shard", "args", "forced", "dryRun",
      "counts", "metrics", "error", "reason", "host", "version", "startedAt", "heartbeatAt", "finishedAt",
    ]);
    // --json, as before -o, is the same.
    expect((await etl(["runs", "--limit", "5", "--json"])).stdout).toBe(json.stdout);
  });

  test("runs show takes a unique prefix of a run id; an ambiguous or unknown one is exit 2 saying which", async () => {
    const a = await insertRun({ runId: "c0ffee00-1111-4000-8000-000000000001", job: "get_s3_files", status: "succeeded", startedSecondsAgo: 60, durationMs: 1000 });
    const b = await insertRun({ runId: "c0ffee00-2222-4000-8000-000000000002", job: "backfill", status: "failed", error: "boom", startedSecondsAgo: 30, durationMs: 1000 });
    for (const prefix of ["c0ffee00-1", "c0ffee001", "C0FFEE00-1111", a]) {
      const shown = await etl(["runs", "show", prefix]);
      expect({ prefix, exitCode: shown.exitCode }).toEqual({ prefix, exitCode: 0 });
      expect(shown.stdout).toMatch(new RegExp(`^run id +${a}$`, "m"));
    }
    const json = await etl(["runs", "show", "c0ffee002", "-o", "json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ runId: b, job: "backfill", status: "failed", error: "boom" });

    const ambiguous = await etl(["runs", "show", "c0ffee"]);
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.stdout).toBe("");
    expect(ambiguous.stderr).toContain('etl runs show: run id prefix "c0ffee" is ambiguous');
    expect(ambiguous.stderr).toMatch(new RegExp(`^  ${a}  get_s3_files  succeeded  started 60s ago$`, "m"));
    expect(ambiguous.stderr).toMatch(new RegExp(`^  ${b}  backfill  failed  started 30s ago$`, "m"));

    const cases: Array<[string[], string]> = [
      [["runs", "show", "deadbeef"], 'etl runs show: no run in the ledger has an id starting with "deadbeef"\n'],
      [["runs", "show", "c0f"], 'etl runs show: "c0f" is not a run id or a prefix of one (4 to 32 hex digits, as etl runs prints them)\n'],
      [["runs", "show", "not-a-run"], 'etl runs show: "not-a-run" is not a run id or a prefix of one (4 to 32 hex digits, as etl runs prints them)\n'],
      [["runs", "show"], "etl runs show: give one run id, or a prefix of one\n"],
      [["runs", "-o", "yaml"], 'etl runs: -o must be one of wide, json (got "yaml")\n'],
      [["runs", "--json", "-o", "wide"], "etl runs: --json and -o wide ask for two outputs; give one\n"],
      [["runs", "--status", "faild"], 'etl runs: --status must be one of running, succeeded, partial, failed, interrupted, skipped, lost (got "faild"; did you mean "failed"?)\n'],
    ];
    for (const [argv, message] of cases) {
      const run = await etl(argv);
      expect({ argv, exitCode: run.exitCode, stderr: run.stderr.split("\nusage:")[0] + (run.stderr.includes("\nusage:") ? "\n" : "") }).toEqual({ argv, exitCode: 2, stderr: message });
    }
  });

  test("an unknown --job is exit 2 naming the closest job and the known ones; a job the ledger knows is listed", async () => {
    const unknown = await etl(["runs", "--job", "get_s3_file"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toBe(`etl runs: unknown job "get_s3_file" (did you mean "get_s3_files"?); known jobs: ${registry.jobs.map((j) => j.name).sort().join(", ")}\n`);
    const far = await etl(["runs", "--job", "zzz"]);
    expect(far.exitCode).toBe(2);
    expect(far.stderr).toStartWith('etl runs: unknown job "zzz"; known jobs: backfill, ');
    // migrate and the probe are no registry's jobs, but the ledger has their runs.
    for (const job of ["migrate", "probe"]) {
      const listed = await etl(["runs", "--job", job]);
      expect({ job, exitCode: listed.exitCode }).toEqual({ job, exitCode: 0 });
      expect(listed.stdout).toMatch(new RegExp(`^\\S{8}  ${job} `, "m"));
    }
    // A known job without runs: no runs match.
    expect((await etl(["runs", "--job", "sync_dags"])).stdout).toBe("no runs match\n");
  });

  test("STATUS is coloured on a terminal only, and never with NO_COLOR; help exits 0", async () => {
    const tty = await etl(["runs", "--status", "failed"], { tty: true });
    expect(tty.stdout).toContain("\u001b[31mfailed\u001b[0m");
    expect((await etl(["runs", "--status", "failed"], { tty: true, env: { NO_COLOR: "1" } })).stdout).not.toContain("\u001b[");
    // A pipe, as a real process sees it.
    const piped = await runEtl(["runs", "--status", "failed"], { DATABASE_URL: db.url });
    expect(piped.exitCode).toBe(0);
    expect(piped.stdout).toMatch(/^\S{8}  .* failed /m);
    expect(piped.stdout).not.toContain("\u001b[");
    const help = await etl(["runs", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("-o wide");
    expect(help.stdout).toContain("unique prefix");
  });
});
