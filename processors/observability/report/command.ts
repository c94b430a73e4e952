/**
 * `etl report`: writes the platform's status page (page.ts), one self-contained HTML file, and
 * prints its path. Reads DATABASE_URL as the other commands do, and the declared buckets (or
 * where --bucket-map, else ETL_BUCKET_MAP, reads them from). Exit 0 once the page is written, whatever it says; 2 for
 * a bad flag or variable; the database's and the stores' failures as the operator commands map them.
 */
import { rename, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { CliIo, DispatcherRegistry } from "../../../core/cli/io";
import { CommandUsageError, parseCommandArgs, runOperatorCommand } from "../../../core/cli/commands/operator";
import { describeUrl } from "../../../core/config";
import { durationMs } from "../../../core/duration";
import { EtlError } from "../../../core/errors";
import type { ScheduledJob } from "../../../core/runtime/contract";
import { loadJobs, schedulesOf } from "../../../core/runtime/registry";
import { parseBucketMap } from "../../../core/storage/bucket_map";
import type { Location } from "../../../core/storage/object_store";
import { ObjectStores } from "../../../core/storage/object_stores";
import { FRESHNESS_SOURCES } from "../freshness/sources";
import { quarantineBuckets } from "./backlog";
import { statusPage } from "./page";
import { buildStatusReport } from "./report";

const USAGE = "etl report [--output report.html] [--days 3] [--grace 10m] [--bucket-map <bucket>=<bucket or file:dir>,...]";
const HELP = `usage: ${USAGE}
writes the platform's status page, one self-contained HTML file, and prints its path:
  each schedule's slots of the last --days days (UTC) judged as schedule_audit judges them
  (--grace as its --grace), every freshness source measured now, the last completeness check,
  open dead letters and quarantined files, each with the command that shows or acts on it
--bucket-map reads a deployment's bucket from elsewhere, as freshness_monitor's does (default: ETL_BUCKET_MAP,
  which make demo writes to .etl/demo.env for ./etl: the demo's directories)
`;
// Each day is a strip of cells per schedule: a five-minute schedule draws 288 a day, and a
// fortnight of them (4,000 cells a row) is past what a page shows legibly.
const MAX_DAYS = 14;

export async function reportCommand(args: string[], registry: DispatcherRegistry, io: CliIo): Promise<number> {
  let flags: ReportFlags;
  let schedules: ScheduledJob[];
  let bucketMap: Map<string, Location>;
  try {
    const parsed = parseReportArgs(args);
    if (parsed === "help") {
      io.out(HELP);
      return 0;
    }
    flags = parsed;
    schedules = registry.schedules ? await registry.schedules() : schedulesOf(await loadJobs(registry.jobs));
    bucketMap = parseBucketMap(flags.bucketMap ?? io.env.ETL_BUCKET_MAP, deploymentBuckets(schedules), flags.bucketMap === undefined ? "ETL_BUCKET_MAP" : "--bucket-map");
    await requireDirectory(dirname(flags.output));
  } catch (error) {
    if (!(error instanceof EtlError && error.code === "usage")) throw error;
    io.err(`${error.message.startsWith("etl report") ? "" : "etl report: "}${error.message}\n`);
    return 2;
  }
  return runOperatorCommand("etl report", io, async (sql, config) => {
    const stores = new ObjectStores({ s3Endpoint: config.s3Endpoint, awsRegion: config.awsRegion, s3TimeoutMs: config.s3TimeoutMs });
    try {
      const report = await buildStatusReport({
        sql: sql!,
        database: config.databaseUrl!.startsWith("embedded:") ? config.databaseUrl! : describeUrl(config.databaseUrl!),
        schedules,
        sources: FRESHNESS_SOURCES,
        bucketMap,
        openLocation: (location) => stores.open(location),
        days: flags.days,
        graceMs: flags.graceMs,
        signal: new AbortController().signal,
      });
      // Written beside itself first: a reader (a browser refreshing it) never sees half a page.
      const partial = `${flags.output}.${process.pid}.partial`;
      await writeFile(partial, statusPage(report));
      await rename(partial, flags.output);
      io.out(`${flags.output}\n`);
      return 0;
    } finally {
      await stores.close();
    }
  });
}

interface ReportFlags {
  /** Absolute. */
  output: string;
  days: number;
  graceMs: number;
  bucketMap: string | undefined;
}

function parseReportArgs(args: string[]): ReportFlags | "help" {
  const { values, positionals } = parseCommandArgs(
    "etl report",
    args,
    { output: { type: "string", short: "o" }, days: { type: "string" }, grace: { type: "string" }, "bucket-map": { type: "string" }, help: { type: "boolean", short: "h" } },
    USAGE,
  );
  if (values.help) return "help";
  if (positionals.length) throw new CommandUsageError(`etl report: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const days = values.days === undefined ? 3 : Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) throw new CommandUsageError(`etl report: --days must be a whole number from 1 to ${MAX_DAYS} (got "${values.days}")`);
  const graceMs = durationMs(values.grace ?? "10m");
  if (graceMs === undefined || !/^\s*\d+[mhd]\s*$/.test(values.grace ?? "10m")) throw new CommandUsageError(`etl report: --grace must be a duration such as 10m, 2h or 1d (got "${values.grace}")`);
  const output = values.output?.trim() ?? "report.html";
  if (!output) throw new CommandUsageError("etl report: --output needs a file name");
  return { output: resolve(output), days, graceMs, bucketMap: values["bucket-map"] };
}

/**
 * The buckets a map may name: those the freshness sources declare and every bucket a schedule's
 * arguments name (ETL_BUCKET_MAP, as the demo writes it, maps get_s3_files's source bucket too).
 */
function deploymentBuckets(schedules: readonly ScheduledJob[]): string[] {
  const named = schedules.flatMap((s) => Object.entries(s.args).flatMap(([key, value]) => (/bucket$/i.test(key) && typeof value === "string" ? [value] : [])));
  return [...FRESHNESS_SOURCES.flatMap((s) => ("bucket" in s ? [s.bucket] : [])), ...quarantineBuckets(schedules), ...named];
}

async function requireDirectory(dir: string): Promise<void> {
  const found = await stat(dir).catch(() => undefined);
  if (!found?.isDirectory()) throw new CommandUsageError(`etl report: --output: directory ${dir} does not exist`);
}
