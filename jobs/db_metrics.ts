import { arg } from "../core/runtime/args";
import { describeUrl } from "../core/config";
import { UsageError } from "../core/errors";
import { defineJob } from "../core/runtime/job";
import { measureDatabase } from "../processors/observability/db_metrics";
import { DbHealthRepository } from "../repositories/db_health";

export const JOB = defineJob({
  name: "db_metrics",
  description: "Database health as postgres_exporter gauges: size, tables' tuples and vacuums, sessions, locks, longest transaction, wraparound",
  lane: "observability",
  args: {
    schema: arg.text("application schemas whose tables are measured, comma-separated (the platform's etl_* tables always are)", {
      default: "public",
      placeholder: "<schema,...>",
      pattern: /^[A-Za-z_][\w$]*(,[A-Za-z_][\w$]*)*$/,
      patternHelp: "must be schema names separated by commas, e.g. public,app",
    }),
  },
  // Every five minutes: sessions, locks and transactions change by the minute.
  schedule: { cron: "*/5 * * * *", timeZone: "UTC", args: { schema: "public" }, maxDurationSeconds: 240 },
  // One group per database and schema list: measuring one must not erase another's gauges.
  metricsGroup: (args, config) => ({ database: describeUrl(config.databaseUrl ?? ""), schemas: args.schema }),
  example: "--schema public",
  async run(args, ctx) {
    const health = new DbHealthRepository(await ctx.db());
    const schemas = args.schema.split(",");
    const missing = await health.missingSchemas(schemas);
    if (missing.length) throw new UsageError(`--schema ${missing.join(",")}: no such schema in the database`);
    return measureDatabase({ ...ctx, health, schemas });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
