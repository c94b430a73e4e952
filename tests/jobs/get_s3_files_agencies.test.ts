import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createTestDatabase, parseCsv, runCommand, runEtl, runGetS3Files, seedAttachments, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";

let db: TestDatabase;
let source: Lake;
let destination: Lake;

afterEach(async () => {
  await db.drop();
  await Promise.all([source?.dispose(), destination?.dispose()]);
});

// Agency 10 is big, 11 small, 12 inactive: ids 1..13 spread over both active ones.
const ATTACHMENTS = [
  ...Array.from({ length: 9 }, (_, i) => ({ id: i + 1, agencyId: 10, key: `a10/f${i + 1}.txt` })),
  ...[10, 11, 12].map((id) => ({ id, agencyId: 11, key: `a11/f${id}.txt` })),
  { id: 13, agencyId: 12, key: "a12/f13.txt" },
];

for (const kind of LAKE_KINDS) {
  describe(`get_s3_files --all-agencies, ${kind} to ${kind}`, () => {
    beforeEach(async () => {
      db = await createTestDatabase();
      [source, destination] = await Promise.all([createLake(kind), createLake(kind)]);
      await seedAttachments(db.sql, [10, 11, 12], ATTACHMENTS);
      await db.sql`update agency set is_active = (id <> 12)`;
      for (const a of ATTACHMENTS) await source.write(a.key, `body ${a.id}`);
    });
    const run = (...extra: string[]) => runGetS3Files(["--all-agencies", "--source-bucket", source.arg, "--destination-bucket", destination.arg, ...extra], { DATABASE_URL: db.url });

    test("the pods of an Indexed Job share every active agency by id, each agency to its own prefix and manifest, counts per agency in the summary and the ledger", async () => {
      const pods = [];
      for (let i = 0; i < 4; i++) pods.push(await run("--shard", `${i}/4`));
      expect(pods.map((p) => p.exitCode)).toEqual([0, 0, 0, 0]);
      // id % 4: pod 0 has 4, 8, 12; pod 1 has 1, 5, 9; pod 2 has 2, 6, 10; pod 3 has 3, 7, 11: as even as the ids allow, whatever each agency's size.
      expect(pods.map((p) => (p.summary!.counts as Record<string, number>).copied)).toEqual([3, 3, 3, 3]);
      expect(pods[0]!.summary!.counts).toMatchObject({ agencies: 2, copied: 3, failed: 0 });
      expect(pods[0]!.summary!.metrics).toMatchObject({ byAgency: { parts: { "10": { copied: 2 }, "11": { copied: 1 } } } });
      const summary = pods[0]!.summary as { runId: string; counts: unknown; metrics: { byAgency: unknown } };
      const [ledger] = await db.sql`select counts, metrics from etl_job_runs where run_id = ${summary.runId}::uuid`;
      expect(ledger!.counts).toEqual(summary.counts);
      expect(ledger!.metrics.byAgency).toEqual(summary.metrics.byAgency);

      const keys = await destination.keys();
      expect(keys.filter((k) => !k.includes("_manifest"))).toEqual([
        ...Array.from({ length: 9 }, (_, i) => `agency_id=10/a10/f${i + 1}.txt`).sort(),
        ...[10, 11, 12].map((id) => `agency_id=11/a11/f${id}.txt`),
      ]);
      expect(keys.some((k) => k.startsWith("agency_id=12/"))).toBe(false);
      for (const agency of [10, 11]) for (let i = 0; i < 4; i++) expect(keys).toContain(`agency_id=${agency}/_manifest.${i}-of-4.csv`);
      const manifest = parseCsv((await destination.read("agency_id=11/_manifest.2-of-4.csv")).toString());
      expect(manifest.map((r) => r.attachment_id)).toEqual(["10"]);
    });

    test("a dead letter of one agency is replayed into that agency's prefix; the completeness check covers every active agency", async () => {
      await source.remove("a11/f11.txt");
      const first = await run();
      expect(first.exitCode).toBe(3);
      expect(first.summary!.metrics).toMatchObject({ byAgency: { parts: { "10": { copied: 9, failed: 0 }, "11": { copied: 2, failed: 1 } } } });
      const etl = (argv: string[]) => runEtl(argv, { DATABASE_URL: db.url });
      const completeness = () => runCommand(["jobs/freshness_monitor.ts"], ["--all-agencies", "--destination-bucket", destination.arg], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });
      const gap = await completeness();
      expect(gap.exitCode).toBe(3);
      expect(gap.summary!.counts).toMatchObject({ agencies: 2, expected: 12, present: 11, missing: 1 });
      expect(gap.summary!.metrics).toMatchObject({ byAgency: { parts: { "10": { missing: 0 }, "11": { missing: 1 } } } });

      await source.write("a11/f11.txt", "body 11");
      const replay = await etl(["dlq", "replay", "get_s3_files"]);
      expect(replay.exitCode).toBe(0);
      expect((await destination.read("agency_id=11/a11/f11.txt")).toString()).toBe("body 11");
      expect((await db.sql`select item_key from etl_dead_letters where resolved_at is null`).length).toBe(0);
      const whole = await completeness();
      expect(whole.exitCode).toBe(0);
      expect(whole.summary!.counts).toMatchObject({ agencies: 2, expected: 12, present: 12, missing: 0, failed: 0 });
    });

    test("--all-agencies and --agency-id together, or with --destination-prefix, are usage errors", async () => {
      for (const [extra, text] of [
        [["--agency-id", "10"], "give --agency-id N, or --all-agencies"],
        [["--destination-prefix", "x/"], "--destination-prefix applies to one agency"],
      ] as const) {
        const result = await run(...extra);
        expect(result.exitCode).toBe(2);
        expect(result.stdout).toContain(text);
      }
    });
  });
}
