import { defineJob } from "../../runtime/job";
import { pendingMigrations } from "../../db/migrate";

/**
 * `etl migrate`: applies the platform's migrations (migrations/*.sql). Connecting through the
 * job context migrates (see core/runtime/context.ts), so running it as a job gives it the same config
 * validation, logs, summary event and exit codes as every job. `--dry-run` lists what is pending.
 */
export const MIGRATE_JOB = defineJob({
  name: "migrate",
  description: "Apply the platform's migrations to DATABASE_URL (idempotent)",
  lane: "core",
  args: {},
  async run(_args, ctx) {
    const sql = await ctx.db();
    const pending = await pendingMigrations(sql, await ctx.migrations());
    if (pending.length) ctx.log.info("pending migrations", { migrations: pending.map((m) => m.version) });
    return { pending: pending.length };
  },
});
