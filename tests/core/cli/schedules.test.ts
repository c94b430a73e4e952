import { describe, expect, test } from "bun:test";
import { main } from "../../../core/cli/dispatcher";
import { discoverJobs } from "../../../core/runtime/registry";
import { SCHEDULES } from "../../../jobs/schedules.generated";

async function etl(argv: string[], schedules?: boolean) {
  let out = "";
  let err = "";
  const io = { env: {}, out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
  const registry = { jobs: discoverJobs(), ...(schedules && { schedules: async () => SCHEDULES }) };
  return { exitCode: await main(argv, registry, io), out, err };
}

describe("etl schedules", () => {
  test("each schedule's slots with their data interval and the partitions they build", async () => {
    const run = await etl(["schedules", "--from", "2026-11-03T00:00:00Z", "--to", "2026-11-03T02:00:00Z", "--json"]);
    expect(run.exitCode).toBe(0);
    const rows = JSON.parse(run.out) as Array<Record<string, unknown>>;
    const of = (schedule: string) => rows.filter((r) => r.schedule === schedule);
    expect(of("bronze_to_silver.service_requests")).toEqual([
      { schedule: "bronze_to_silver.service_requests", cron: "30 1 * * *", timeZone: "UTC", logicalDate: "2026-11-03T01:30:00.000Z", local: "2026-11-03T01:30:00+00:00", intervalStart: "2026-11-02T01:30:00.000Z", partitions: ["2026-10-31", "2026-11-01", "2026-11-02"] },
    ]);
    expect(of("bronze_to_silver.partner_payments")).toHaveLength(1);
    // The 00:15 pull closes the day before; the 01:15 one is the new day's.
    expect(of("ingest_api").map((r) => [r.logicalDate, r.partitions])).toEqual([
      ["2026-11-03T00:15:00.000Z", ["2026-11-02"]],
      ["2026-11-03T01:15:00.000Z", ["2026-11-03"]],
    ]);
    expect(of("db_metrics")).toHaveLength(25);
    expect(of("db_metrics")[0]).toMatchObject({ partitions: null, intervalStart: "2026-11-02T23:55:00.000Z" });
    // A lane binary reads the generated list: the same answer.
    const fromList = await etl(["schedules", "--from", "2026-11-03T00:00:00Z", "--to", "2026-11-03T02:00:00Z", "--json"], true);
    expect(JSON.parse(fromList.out)).toEqual(rows);
  });

  test("the table names the slot, the schedule, the interval and the partition; --job picks a job or one schedule", async () => {
    const run = await etl(["schedules", "--from", "2026-11-03", "--to", "2026-11-03T23:59:00Z", "--job", "profile_dataset.partner_payments"]);
    expect(run.exitCode).toBe(0);
    expect(run.out.trim().split("\n")).toEqual([
      expect.stringMatching(/^slot \(logical date\)\s+schedule\s+data interval\s+builds$/),
      expect.stringMatching(/^2026-11-03T02:00:00Z\s+profile_dataset\.partner_payments\s+2026-11-02 02:00 \.\. 2026-11-03 02:00\s+dt=2026-11-02 \(and back to 2026-10-31\)$/),
    ]);
    const job = await etl(["schedules", "--from", "2026-11-03", "--to", "2026-11-03T23:59:00Z", "--job", "s3_metrics", "--json"]);
    expect(new Set(JSON.parse(job.out).map((r: { schedule: string }) => r.schedule))).toEqual(new Set(["s3_metrics.etl_lake", "s3_metrics.etl_attachments_archive"]));
  });

  test("bad input exits 2 naming it", async () => {
    for (const [argv, text] of [
      [["--from", "soon"], "--from must be a date"],
      [["--from", "2026-11-03", "--to", "2026-11-01"], "is before --from"],
      [["--from", "2026-01-01", "--to", "2026-03-01"], "at most 31 days"],
      [["--job", "nope"], "no such schedule"],
      [["--colour"], "--colour"],
    ] as const) {
      const run = await etl(["schedules", ...argv]);
      expect(run.exitCode, argv.join(" ")).toBe(2);
      expect(run.err).toContain(text);
    }
  });
});
