import type { PlatformConfig } from "../config";
import { ConfigError } from "../errors";
import type { Database } from "../db/db";
import type { DataInterval, JobContext, Registry } from "./contract";
import { partitionDateOf } from "./data_interval";
import { acquireLease } from "../ledger/lease";
import type { Logger } from "../log";
import { Metrics } from "../metrics/metrics";
import type { Progress } from "./progress";
import { ObjectStores } from "../storage/object_stores";

export type { JobContext } from "./contract";

export interface RunResources {
  context: JobContext;
  /** Closes what the run opened; safe to call when nothing was. */
  close(): Promise<void>;
}

export function createRunResources(init: {
  job: string;
  runId: string;
  log: Logger;
  progress: Progress;
  signal: AbortSignal;
  dryRun: boolean;
  logicalDate: Date | undefined;
  dataInterval?: DataInterval;
  schedule?: string;
  force: boolean;
  env: Record<string, string | undefined>;
  config: PlatformConfig;
  registry?: Registry;
}): RunResources {
  const { config } = init;
  let database: Promise<Database> | undefined;
  let stores: ObjectStores | undefined;

  async function connect(): Promise<Database> {
    if (!config.databaseUrl) {
      throw new ConfigError("environment variable DATABASE_URL is not set (postgres://user:password@host:5432/db or embedded:<data dir>)");
    }
    const [{ openDatabase }, { migrate }] = await Promise.all([import("../db/db"), import("../db/migrate")]);
    const db = await openDatabase(config.databaseUrl, { applicationName: `etl:${init.job}`, signal: init.signal, statementTimeoutMs: config.databaseTimeoutMs });
    // A dry run writes nothing, the platform's own schema included.
    if (init.dryRun) return db;
    try {
      // Unguarded: twenty pods starting together wait their turn for the migration lock.
      const applied = await migrate(db.unguarded, await context.migrations());
      const span = applied.length > 1 ? `s ${applied[0]} to ${applied.at(-1)}` : ` ${applied[0]}`;
      if (applied.length) init.log.info("applied migrations", { migrations: applied }, { pretty: `applied ${applied.length} migration${span}` });
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  }

  const context: JobContext = {
    job: init.job,
    runId: init.runId,
    log: init.log,
    metrics: new Metrics(),
    progress: init.progress,
    counts: {},
    signal: init.signal,
    dryRun: init.dryRun,
    logicalDate: init.logicalDate,
    dataInterval: init.dataInterval,
    partitionDate: partitionDateOf(init.logicalDate, init.dataInterval),
    schedule: init.schedule,
    force: init.force,
    env: init.env,
    db: async () => (await (database ??= connect())).sql,
    migrations: async () => (init.registry?.migrations ? init.registry.migrations() : (await import("../db/migrate")).loadMigrations()),
    registry: init.registry,
    objectStore: (location) => {
      stores ??= new ObjectStores({ s3Endpoint: config.s3Endpoint, awsRegion: config.awsRegion, s3TimeoutMs: config.s3TimeoutMs, owner: init.runId, log: init.log, signal: init.signal });
      return stores.open(location);
    },
    lease: async (name) =>
      acquireLease(await context.db(), { name, runId: init.runId, job: init.job, ttlMs: config.leaseTtlMs, log: init.log, signal: init.signal }),
  };

  return {
    context,
    async close() {
      // A connect that failed was already reported by the run; there is nothing of it to close.
      const db = await database?.catch(() => undefined);
      await Promise.all([db?.close(), stores?.close()]);
    },
  };
}
