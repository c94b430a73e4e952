/**
 * `etl report` end to end: a ledger written by the ledger's own repository (runs backdated to
 * their slots in SQL, as the audit's tests do), dead letters and a quarantined file written by
 * the DLQ's and the quarantine's code, completeness and freshness by the real freshness_monitor;
 * then the page, from `bun scripts/etl.ts report`, opened in Debian's chromium. The grid's cells
 * must say what the real schedule_audit job says of the same ledger, the freshness what
 * freshness_monitor measured, the counts what the database and the lake hold.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../../core/cli/dispatcher";
import { loadMigrations, migrate } from "../../../core/db/migrate";
import { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import { JobRunRepository, type FinishedStatus } from "../../../core/ledger/job_runs";
import { LOST_AFTER_MS, argsHash } from "../../../core/ledger/ledger";
import { createLogger } from "../../../core/log";
import { expectedSlots } from "../../../core/runtime/cron";
import { discoverJobs } from "../../../core/runtime/registry";
import { FileStore } from "../../../core/storage/file_store";
import { listQuarantined, Quarantine } from "../../../processors/file_processing/quarantine/quarantine";
import { COMMANDS } from "../../../scripts/etl";
import { startBrowser, testOutputDir, type BrowserSession, type OpenedPage } from "../../harness/browser";
import { createTestDatabase, runCommand, runEtl, seedAttachments, type TestDatabase } from "../../harness/fixtures";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const INGEST_ARGS = { dataset: "service_requests", bucket: "etl-lake" };

let db: TestDatabase;
let browser: BrowserSession;
const dir = mkdtempSync(join(tmpdir(), "etl-report-"));
const lake = join(dir, "lake");
const archive = join(dir, "archive");
const bucketMap = `etl-lake=file:${lake},etl-attachments-archive=file:${archive}`;

beforeAll(async () => {
  mkdirSync(lake);
  mkdirSync(archive);
  [db, browser] = await Promise.all([createTestDatabase(), startBrowser()]);
  await migrate(db.sql, await loadMigrations());
});
afterAll(async () => {
  await browser?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let runNumber = 0;

/**
 * A run of ingest_api's hourly schedule for `slot`, recorded by the ledger's repository as the
 * runner records one, then moved back to when it ran: started `startedAfter` minutes after its
 * slot, for `ranFor` minutes. Without `status` it is still running, its heartbeat live.
 */
async function recordRun(slot: number, o: { status?: FinishedStatus; startedAfter: number; ranFor?: number }): Promise<string> {
  const runId = `00000000-0000-4000-8000-${String(++runNumber).padStart(12, "0")}`;
  const runs = new JobRunRepository(db.sql);
  const row = { runId, job: "ingest_api", lane: "data_pipeline", logicalDate: new Date(slot), schedule: "default", shard: undefined, args: INGEST_ARGS, argsHash: argsHash(INGEST_ARGS), forced: false, dryRun: false, host: "test", version: "0.0.0" };
  await runs.start(row, { lostAfterMs: LOST_AFTER_MS, skipReason: () => "already succeeded" });
  const started = new Date(slot + o.startedAfter * MINUTE);
  if (!o.status) {
    await db.sql`update etl_job_runs set started_at = ${started} where run_id = ${runId}::uuid`;
    return runId;
  }
  await runs.finish(runId, { status: o.status, exitCode: o.status === "succeeded" ? 0 : 1, counts: { records: 10 }, metrics: {}, ...(o.status === "failed" && { error: "the API answered 500" }) });
  const finished = new Date(started.getTime() + (o.ranFor ?? 2) * MINUTE);
  await db.sql`update etl_job_runs set started_at = ${started}, heartbeat_at = ${finished}, finished_at = ${finished} where run_id = ${runId}::uuid`;
  return runId;
}

interface Cell {
  schedule: string;
  shard: string;
  slot: string;
  kind: string;
  title: string;
  href: string | null;
}

const readCells = (page: OpenedPage) =>
  page.evaluate(
    `[...document.querySelectorAll(".cell")].map((e) => ({ schedule: e.dataset.schedule, shard: e.dataset.shard, slot: e.dataset.slot, kind: e.dataset.kind, title: e.title, href: e.getAttribute("href") }))`,
  ) as Promise<Cell[]>;

describe("etl report", () => {
  test("the status page: every schedule's slots as schedule_audit judges them, freshness, completeness, dead letters and quarantine; in chromium with no console error and no request", async () => {
    // The grace puts the line between judged and not yet due far from any slot of the hourly :15
    // schedule, so the seconds between the page and the audit cannot move a slot across it.
    const now = Date.now();
    const sinceSlot = (((now - 15 * MINUTE) % HOUR) + HOUR) % HOUR;
    const grace = Math.abs(sinceSlot - 30 * MINUTE) < 3 * MINUTE ? "10m" : "30m";
    const graceMs = Number(grace.slice(0, -1)) * MINUTE;
    const judged = expectedSlots("15 * * * *", "UTC", now - 6 * HOUR, now - graceMs);
    const [onTimeSlot, lateSlot, failedSlot, missedSlot, runningSlot] = judged.slice(-5) as [number, number, number, number, number];
    const onTime = await recordRun(onTimeSlot, { status: "succeeded", startedAfter: 1 });
    const late = await recordRun(lateSlot, { status: "succeeded", startedAfter: 40, ranFor: 3 });
    const failed = await recordRun(failedSlot, { status: "failed", startedAfter: 1 });
    const running = await recordRun(runningSlot, { startedAfter: 2 });

    // Dead letters as the jobs record them: three of ingest_api's failed run, one resolved since;
    // one of a get_s3_files run the ledger does not hold; and the quarantined file's own.
    const ingestLetters = new DeadLetterRepository(db.sql, "ingest_api", failed);
    await ingestLetters.recordDeadLetters(["record-7", "record-8", "record-9"].map((itemKey) => ({ itemKey, error: "invalid created_at", payload: { id: itemKey } })));
    await ingestLetters.resolveDeadLetters(["record-9"]);
    await new DeadLetterRepository(db.sql, "get_s3_files", "00000000-0000-4000-8000-00000000bbbb").recordDeadLetters([{ itemKey: "attachment:41", error: "NoSuchKey", payload: { attachmentId: 41 } }]);
    const store = new FileStore(lake);
    mkdirSync(join(lake, "inbox"));
    writeFileSync(join(lake, "inbox", "delivery.zip"), "PK not really a zip");
    const quarantineRun = "00000000-0000-4000-8000-00000000aaaa";
    await new Quarantine({ store, job: "unzip_files", runId: quarantineRun, date: new Date(now).toISOString().slice(0, 10), deadLetters: new DeadLetterRepository(db.sql, "unzip_files", quarantineRun), log: createLogger({ format: "json", level: "error", write: () => {} }) })
      .quarantine("inbox/delivery.zip", { rule: "path_traversal", detail: "entry ../../etc/passwd leaves the destination" });

    // The monitors, run for real: a completeness check that finds one attachment missing, and the sources.
    await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a/one.txt" }]);
    const monitor = (argv: string[]) => runCommand(["jobs/freshness_monitor.ts"], argv, { DATABASE_URL: db.url });
    const completeness = await monitor(["--all-agencies", "--destination-bucket", `file:${archive}`]);
    expect(completeness.summary).toMatchObject({ status: "partial", counts: { expected: 1, present: 0, missing: 1 } });
    const freshness = await monitor(["--bucket-map", bucketMap]);
    const measured = freshness.events.find((e) => e.event === "freshness.result")!.results as Array<{ name: string; status: string }>;

    const output = join(dir, "status.html");
    const report = await runEtl(["report", "--output", output, "--days", "2", "--grace", grace, "--bucket-map", bucketMap], { DATABASE_URL: db.url });
    expect(report.stderr).toBe("");
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toBe(`${output}\n`);
    const html = readFileSync(output, "utf8");
    // Self-contained: no script, and nothing that names another host.
    expect(html).not.toContain("<script");
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);

    // What schedule_audit says of the same ledger, over a window that holds every slot the page judged.
    const audit = await runCommand(["jobs/schedule_audit.ts"], ["--job", "ingest_api", "--since", "2d", "--grace", grace], { DATABASE_URL: db.url });
    expect(audit.summary).toMatchObject({ status: "partial", counts: { onTime: 1, late: 1, failedSlots: 1, missed: 1, running: 1 } });

    const page = await browser.open(output);
    try {
      expect(page.consoleErrors).toEqual([]);
      expect(page.requests).toEqual([]);
      expect(page.failedOrExternalRequests).toEqual([]);
      const cells = await readCells(page);
      const ingest = cells.filter((c) => c.schedule === "ingest_api");
      const kindAt = (slot: number) => ingest.find((c) => c.slot === new Date(slot).toISOString())?.kind;
      expect([onTimeSlot, lateSlot, failedSlot, missedSlot, runningSlot].map(kindAt)).toEqual(["on_time", "late", "failed", "missed", "running"]);
      // Cell for cell, the audit's verdicts: its counts per kind, and its problem slots.
      const counted = (kind: string) => ingest.filter((c) => c.kind === kind).length;
      const counts = audit.summary!.counts as Record<string, number>;
      expect({ onTime: counted("on_time"), late: counted("late"), failedSlots: counted("failed"), missed: counted("missed"), running: counted("running"), healed: counted("healed"), lost: counted("lost"), doubled: counted("doubled") }).toEqual({
        onTime: counts.onTime!, late: counts.late!, failedSlots: counts.failedSlots!, missed: counts.missed!, running: counts.running!, healed: counts.healed!, lost: counts.lost!, doubled: counts.doubled!,
      });
      const auditProblems = audit.events.filter((e) => e.event === "schedule_audit.slot").map((e) => [e.slot, e.kind]);
      expect(ingest.filter((c) => ["late", "failed", "missed"].includes(c.kind)).map((c) => [c.slot, c.kind])).toEqual(auditProblems as Array<[string, string]>);
      // Before its first run the schedule was not deployed; after the grace line nothing is due yet.
      expect(ingest.filter((c) => new Date(c.slot).getTime() < onTimeSlot).every((c) => c.kind === "not_deployed")).toBe(true);
      expect(ingest.filter((c) => new Date(c.slot).getTime() > now - graceMs).every((c) => c.kind === "not_yet_due")).toBe(true);
      // A schedule that never ran misses every judged slot, as the audit says of one.
      const lakeMetrics = cells.filter((c) => c.schedule === "s3_metrics.etl_lake");
      expect(lakeMetrics.length).toBe(48);
      expect(lakeMetrics.map((c) => c.kind)).toEqual(lakeMetrics.map((c) => (new Date(c.slot).getTime() <= now - graceMs ? "missed" : "not_yet_due")));
      // Each shard of a sharded schedule is a row of its own.
      expect(new Set(cells.filter((c) => c.schedule === "get_s3_files").map((c) => c.shard))).toEqual(new Set(["0/4", "1/4", "2/4", "3/4"]));

      // The late cell names its run, its start and how long it ran, and links to its line below.
      const lateCell = ingest.find((c) => c.kind === "late")!;
      expect(lateCell.title).toContain("started 40m0s after the slot");
      expect(lateCell.title).toContain(`run ${late}: succeeded, started ${new Date(lateSlot + 40 * MINUTE).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z")}, ran 3m0s`);
      expect(await page.text(lateCell.href!)).toContain(`etl runs show ${late}`);
      const runningCell = ingest.find((c) => c.kind === "running")!;
      expect(runningCell.title).toContain(`run ${running}: running, started`);
      expect(await page.text(runningCell.href!)).toContain(`etl runs show ${running}`);
      expect(ingest.find((c) => c.kind === "on_time")!.title).toContain(`run ${onTime}: succeeded`);

      // Freshness: each source with the status freshness_monitor's run measured.
      const statuses = (await page.evaluate(`Object.fromEntries([...document.querySelectorAll("tr[data-source]")].map((r) => [r.dataset.source, r.dataset.status]))`)) as Record<string, string>;
      expect(statuses).toEqual(Object.fromEntries(measured.map((r) => [r.name, r.status])));
      expect(statuses.ingest_api_success).toBe("warn");
      // Completeness: the last check's counts, as the ledger has them.
      const ledgerCounts = (await new JobRunRepository(db.sql).findRun(String(completeness.summary!.runId)))!.counts;
      const figures = (await page.evaluate(`[...document.querySelectorAll("#completeness-figures tr.total td")].slice(1).map((td) => Number(td.textContent))`)) as number[];
      expect(figures).toEqual([ledgerCounts.expected!, ledgerCounts.present!, ledgerCounts.missing!, ledgerCounts.sizeMismatch!, ledgerCounts.unexpected!]);
      expect(await page.text("#completeness-status")).toBe("partial");

      // Dead letters: what the database holds open, per job, and the dataset of the run that failed them.
      const open = await db.sql<{ job: string; open: number }[]>`select job, count(*)::int as open from etl_dead_letters where resolved_at is null group by job order by job`;
      const byJob = (await page.evaluate(`[...document.querySelectorAll("#dead-letters tr[data-job]")].map((r) => ({ job: r.dataset.job, dataset: r.dataset.dataset, open: Number(r.dataset.open) }))`)) as Array<{ job: string; dataset: string; open: number }>;
      expect(byJob.map(({ job, open }) => ({ job, open })).sort((a, b) => a.job.localeCompare(b.job))).toEqual(open);
      expect(open.map((r) => r.open)).toEqual([1, 2, 1]);
      expect(byJob.find((r) => r.job === "ingest_api")!.dataset).toBe("service_requests");
      expect(Number(await page.text("#dead-letters-open"))).toBe(4);
      expect(await page.text("#dead-letters")).toContain("etl dlq replay ingest_api --item record-7");
      // Quarantine: what the lake holds.
      expect(Number(await page.text("#quarantined"))).toBe((await listQuarantined(store)).length);
      expect(await page.evaluate(`document.querySelector('#quarantine [data-bucket="etl-lake"]').dataset.quarantined`)).toBe("1");
      expect(await page.text("#quarantine")).toContain("path_traversal");

      expect(await page.evaluate(`document.querySelector("header .status").dataset.status`)).toBe("failing");
      await page.screenshot("etl-report");
      // The page itself beside its screenshot, to open by hand.
      copyFileSync(output, join(testOutputDir(), "etl-report.html"));
    } finally {
      await page.close();
    }
    // A page without scripts reads the same with JavaScript off.
    const still = await browser.open(output, { javaScript: false });
    try {
      expect(await still.text("#quarantined")).toBe("1");
      expect(still.consoleErrors).toEqual([]);
    } finally {
      await still.close();
    }
  });

  test("bad flags exit 2 naming the flag; no database and an unreachable one say so in one line", async () => {
    const etl = async (argv: string[], env: Record<string, string | undefined> = {}) => {
      let out = "";
      let err = "";
      const io = { env: { DATABASE_URL: db.url, ...env }, out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
      return { exitCode: await main(["report", ...argv], { jobs: discoverJobs(), commands: COMMANDS }, io), out, err };
    };
    for (const [argv, text] of [
      [["--days", "0"], "--days must be a whole number from 1 to 14"],
      [["--days", "x"], "--days must be a whole number"],
      [["--grace", "soon"], "--grace must be a duration"],
      [["--bogus"], "Unknown option '--bogus'"],
      [["extra"], 'unexpected argument "extra"'],
      [["--bucket-map", "etl-nowhere=file:/tmp"], "--bucket-map etl-nowhere: no declared bucket"],
      [["--bucket-map", "etl-lake"], "must be <bucket>=<bucket or file:dir>"],
      [["--output", join(dir, "missing", "r.html")], `--output: directory ${join(dir, "missing")} does not exist`],
      [["ETL_BUCKET_MAP=etl-nowhere=file:/tmp"], "ETL_BUCKET_MAP etl-nowhere: no declared bucket"],
    ] as const) {
      const variable = argv[0]?.startsWith("ETL_BUCKET_MAP=") ? argv[0].slice("ETL_BUCKET_MAP=".length) : undefined;
      const run = variable === undefined ? await etl([...argv]) : await etl([], { ETL_BUCKET_MAP: variable });
      expect({ argv, exitCode: run.exitCode, err: run.err.includes(text) ? text : run.err }).toEqual({ argv, exitCode: 2, err: text });
      expect(run.err.startsWith("etl report: ")).toBe(true);
    }
    const help = await etl(["--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.out).toStartWith("usage: etl report");

    const unset = await etl(["--output", join(dir, "r.html")], { DATABASE_URL: "" });
    expect(unset).toMatchObject({ exitCode: 2, err: "etl report: DATABASE_URL is not set; the run ledger and dead letters live in the platform's database\n" });
    const down = await etl(["--output", join(dir, "r.html")], { DATABASE_URL: "postgres://etl:s3cret-pw@127.0.0.1:9/etl" });
    expect(down.exitCode).toBe(75);
    expect(down.err).toBe("etl report: database 127.0.0.1:9/etl unreachable: connect ECONNREFUSED 127.0.0.1:9; a transient failure: try again\n");
  }, 30_000);
});
