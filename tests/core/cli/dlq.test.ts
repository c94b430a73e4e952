import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { createBucket, createTestDatabase, listKeys, putObject, runEtl, runGetS3Files, s3, seedAttachments, type TestDatabase } from "../../harness/fixtures";

let db: TestDatabase;
let source: string;
let destination: string;

beforeEach(async () => {
  db = await createTestDatabase();
  [source, destination] = await Promise.all([createBucket(), createBucket()]);
});
afterEach(async () => {
  await db.drop();
});

const etl = (argv: string[]) => runEtl(argv, { DATABASE_URL: db.url });
const letters = () => db.sql`select item_key, attempts, resolution, resolution_reason, resolved_by_run_id::text as resolved_by, last_run_id::text as last_run from etl_dead_letters order by item_key`;

test("failed items become dead letters whose attempts grow; replay copies only them, discard closes them with a reason", async () => {
  await seedAttachments(db.sql, [10], [
    { id: 1, agencyId: 10, key: "a/present.txt" },
    { id: 2, agencyId: 10, key: "a/missing-1.txt" },
    { id: 3, agencyId: 10, key: "a/missing-2.txt" },
  ]);
  await putObject(source, "a/present.txt", "here");
  const argv = ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", destination];
  const first = await runGetS3Files(argv, { DATABASE_URL: db.url });
  expect(first.exitCode).toBe(3);
  const second = await runGetS3Files(argv, { DATABASE_URL: db.url });
  expect(second.exitCode).toBe(3);
  expect((await letters()).map((l) => [l.item_key, l.attempts, l.resolution, l.last_run])).toEqual([
    ["attachment:2", 2, null, second.summary!.runId],
    ["attachment:3", 2, null, second.summary!.runId],
  ]);

  const listed = await etl(["dlq", "list", "--job", "get_s3_files", "--json"]);
  expect(listed.exitCode).toBe(0);
  expect(JSON.parse(listed.stdout).map((r: { itemKey: string; attempts: number }) => [r.itemKey, r.attempts])).toEqual([["attachment:2", 2], ["attachment:3", 2]]);
  const table = await etl(["dlq", "list"]);
  // RUN is the first 8 characters of the run that failed it last, as etl runs prints it.
  expect(table.stdout).toMatch(new RegExp(`^get_s3_files +attachment:2 +2 +\\S+ +\\S+  ${String(second.summary!.runId).slice(0, 8)}  `, "m"));

  // Only the replayed item is copied: the present object, removed at the destination, stays gone.
  await putObject(source, "a/missing-1.txt", "late");
  await s3().send(new DeleteObjectCommand({ Bucket: destination, Key: "agency_id=10/a/present.txt" }));
  const replay = await etl(["dlq", "replay", "get_s3_files", "--item", "attachment:2"]);
  expect(replay.exitCode).toBe(0);
  expect(replay.summary).toMatchObject({ status: "succeeded", counts: { copied: 1, failed: 0 } });
  expect(await listKeys(destination)).toEqual(["agency_id=10/_manifest.csv", "agency_id=10/a/missing-1.txt"]);
  const replayRun = (await db.sql`select reason, args from etl_job_runs where run_id = ${String(replay.summary!.runId)}::uuid`)[0]!;
  expect(replayRun.reason).toContain("replay of 1 dead letter");
  expect(replayRun.args).toMatchObject({ agencyId: 10, sourceBucket: `s3://${source}` });
  let rows = await letters();
  expect(rows[0]).toMatchObject({ item_key: "attachment:2", resolution: "replayed", resolved_by: replay.summary!.runId });
  expect(rows[1]).toMatchObject({ item_key: "attachment:3", resolution: null, attempts: 2 });

  // Replaying everything open: the still-missing object fails again, one more attempt.
  const again = await etl(["dlq", "replay", "get_s3_files"]);
  expect(again.exitCode).toBe(3);
  expect((await letters())[1]).toMatchObject({ item_key: "attachment:3", attempts: 3, resolution: null });

  expect((await etl(["dlq", "discard", "get_s3_files", "--item", "attachment:3"])).exitCode).toBe(2);
  const discarded = await etl(["dlq", "discard", "get_s3_files", "--item", "attachment:3", "--reason", "the partner deleted the file"]);
  expect(discarded.exitCode).toBe(0);
  rows = await letters();
  expect(rows[1]).toMatchObject({ resolution: "discarded", resolution_reason: "the partner deleted the file" });
  expect((await etl(["dlq", "list"])).stdout).toBe("no open dead letters\n");
  expect((await etl(["dlq", "list", "--all"])).stdout).toMatch(/^get_s3_files +attachment:3 .* discarded: the partner/m);
  expect((await etl(["dlq", "list", "--all", "-o", "wide"])).stdout).toContain("discarded: the partner deleted the file");
});

test("dlq commands refuse what they cannot do, naming it, with exit 2", async () => {
  await etl(["migrate"]);
  const cases: Array<[string[], string]> = [
    [["dlq", "replay", "get_s3_files", "--item", "attachment:999"], 'no open dead letter for "attachment:999"'],
    [["dlq", "replay", "no_such_job"], 'unknown job "no_such_job"'],
    [["dlq", "replay", "get_s3_file"], 'etl dlq replay: unknown job "get_s3_file" (did you mean "get_s3_files"?); known jobs: '],
    [["dlq", "list", "--job", "get_s3_file"], 'etl dlq list: unknown job "get_s3_file" (did you mean "get_s3_files"?); known jobs: backfill, '],
    [["dlq", "list", "-o", "yaml"], 'etl dlq list: -o must be one of wide, json (got "yaml")'],
    [["dlq", "list", "--json", "-o", "wide"], "etl dlq list: --json and -o wide ask for two outputs; give one"],
    [["dlq", "discard", "get_s3_files", "--reason", "x"], "--item"],
    [["dlq", "list", "--bogus"], "--bogus"],
    [["dlq", "frobnicate"], 'unknown command "frobnicate"'],
  ];
  for (const [argv, message] of cases) {
    const run = await etl(argv);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(message);
  }
  expect((await etl(["dlq", "replay", "get_s3_files"])).stdout).toBe("no open dead letters of get_s3_files\n");
});

test("dlq list fits 120 columns with long jobs, keys and errors; -o wide has them whole; -o json is the table's rows", async () => {
  await etl(["migrate"]);
  const runId = crypto.randomUUID();
  const longJob = `a_job_of_a_very_long_name_${"j".repeat(40)}`;
  const longKey = `attachment:agency_id=1042/2026/11/03/${"scan-".repeat(20)}final.pdf`;
  const longError = `NoSuchKey: The specified key does not exist.\n\tsource s3://prod-attachments-source-us-east-1/${"deep/".repeat(20)} 文件不存在 (after 3 attempts)`;
  await db.sql`insert into etl_job_runs (run_id, job, lane, status, args_hash, host, version) values (${runId}::uuid, ${longJob}, 'core', 'partial', 'h', 'h', 't')`;
  await db.sql`
    insert into etl_dead_letters (job, run_id, last_run_id, item_key, error, attempts, first_failed_at, last_failed_at)
    values (${longJob}, ${runId}::uuid, ${runId}::uuid, ${longKey}, ${longError}, 7, now() - interval '3 days 4 hours', now() - interval '5 minutes'),
           ('get_s3_files', ${runId}::uuid, ${runId}::uuid, 'attachment:1', 'short', 1, now() - interval '90 seconds', now() - interval '90 seconds')`;
  const table = await etl(["dlq", "list"]);
  expect(table.exitCode).toBe(0);
  const lines = table.stdout.trimEnd().split("\n");
  expect(lines[0]).toMatch(/^JOB +ITEM +ATTEMPTS +AGE +LAST FAILED +RUN +ERROR$/);
  for (const line of lines) expect({ line, fits: Bun.stringWidth(line) <= 120 }).toEqual({ line, fits: true });
  expect(lines.find((l) => l.startsWith("a_job"))).toMatch(new RegExp(`^a_job_of_a_very_long_name_\\S*… +attachment:agency_id=\\S*… +7 +3d4h +5m  ${runId.slice(0, 8)}  NoSuchKey: \\S.*…$`));
  expect(lines.find((l) => l.startsWith("get_s3_files"))).toMatch(new RegExp(`^get_s3_files +attachment:1 +1 +90s +90s  ${runId.slice(0, 8)}  short$`));

  const wide = await etl(["dlq", "list", "-o", "wide"]);
  expect(wide.stdout).toContain(longJob);
  expect(wide.stdout).toContain(longKey);
  expect(wide.stdout).toContain(longError.replace(/\s+/g, " "));
  expect(wide.stdout).toContain(runId);
  expect(wide.stdout).not.toContain("…");

  const json = JSON.parse((await etl(["dlq", "list", "-o", "json"])).stdout) as Array<Record<string, unknown>>;
  expect(json.map((r) => [r.job, r.itemKey, r.attempts, r.error, r.lastRunId])).toEqual([
    [longJob, longKey, 7, longError, runId],
    ["get_s3_files", "attachment:1", 1, "short", runId],
  ]);
  // A job only the ledger knows (this binary does not carry it) is no unknown job.
  expect((await etl(["dlq", "list", "--job", longJob, "-o", "json"])).exitCode).toBe(0);
  expect((await etl(["dlq", "--help"])).stdout).toContain("-o wide");
});
