import type { PlatformConfig } from "../config";
import { ConfigError } from "../errors";
import type { Database, Sql } from "../db/db";
import type { Counts } from "./job";
import { acquireLease, type Lease, type LeaseHolder } from "../ledger/lease";
import type { Logger } from "../log";
import type { Migration } from "../db/migrate";
import { Metrics } from "../metrics/metrics";
import type { Progress } from "./progress";
import type { Location, ObjectStore } from "../storage/object_store";
import { ObjectStores } from "../storage/object_stores";

/** What a job's run function receives besides its arguments. */
export interface JobContext {
  job: string;
  runId: string;
  /** Bound to job and runId. */
  log: Logger;
  metrics: Metrics;
  /** Items done of a total, and bytes: a live line on a terminal, job.progress events otherwise. */
  progress: Progress;
  /**
   * What the run has done so far, filled as it goes: the summary of a run that is interrupted or
   * fails reports these, so it still says what was done.
   */
  counts: Counts;
  /** Aborted on SIGINT/SIGTERM: stop starting work, let in-flight work finish. */
  signal: AbortSignal;
  /** `--dry-run`: read and compare, write nothing. */
  dryRun: boolean;
  /** The slot a scheduled run stands for (core/runtime/logical_date.ts); a job's default partition. */
  logicalDate: Date | undefined;
  /** `--force`: the run works even though its logical date already succeeded. */
  force: boolean;
  env: Record<string, string | undefined>;
  /** The database, connected (and migrated, unless dry run) on first use; closed by the runner. */
  db(): Promise<Sql>;
  /** The platform's migrations, the ones db() applies: the migrations/ glob from source, the generated list in a compiled binary. */
  migrations(): Promise<Migration[]>;
  objectStore(location: Location): Promise<ObjectStore>;
  /**
   * Takes the lease `name` for this run (core/ledger/lease.ts), or returns the live run holding it.
   * The lease's signal aborts when it is lost: stop starting work then.
   */
  lease(name: string): Promise<Lease | { heldBy: LeaseHolder }>;
}

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
  force: boolean;
  env: Record<string, string | undefined>;
  config: PlatformConfig;
  migrations?: () => Promise<Migration[]>;
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
      if (applied.length) init.log.info("applied migrations", { migrations: applied });
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
    force: init.force,
    env: init.env,
    db: async () => (await (database ??= connect())).sql,
    migrations: async () => (init.migrations ? init.migrations() : (await import("../db/migrate")).loadMigrations()),
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
