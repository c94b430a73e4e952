/**
 * core/db/duckdb.ts from source, against the real DuckDB: the settings every job gets, spilling
 * under a small memory limit, and the refusals. tests/scripts/build/build.test.ts runs it compiled.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDuckDB, type DuckDB } from "../../../core/db/duckdb";
import { ConfigError } from "../../../core/errors";
import { runCommand } from "../../harness/fixtures";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "etl-duckdb-test-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(options: Parameters<typeof openDuckDB>[0]): Promise<DuckDB> {
  const duckdb = await openDuckDB(options);
  cleanups.push(() => duckdb.close());
  return duckdb;
}

async function rows(duckdb: DuckDB, sql: string): Promise<Array<Record<string, unknown>>> {
  return (await duckdb.connection.runAndReadAll(sql)).getRowObjectsJson();
}

describe("openDuckDB", () => {
  test("applies the platform's settings: no extension autoload or autoinstall, absolute temp directory, memory limit, threads", async () => {
    const tempDirectory = join(scratchDir(), "spill");
    const duckdb = await open({ tempDirectory, memoryLimit: "64MB", threads: 2 });
    expect(existsSync(tempDirectory)).toBe(true);
    const [settings] = await rows(
      duckdb,
      `select current_setting('autoload_known_extensions') as autoload, current_setting('autoinstall_known_extensions') as autoinstall,
              current_setting('temp_directory') as temp, current_setting('memory_limit') as memory, current_setting('threads') as threads,
              current_setting('preserve_insertion_order') as ordered`,
    );
    expect(settings).toEqual({ autoload: false, autoinstall: false, temp: tempDirectory, memory: "61.0 MiB", threads: "2", ordered: false });
    // The default limit, 512 MB.
    const [defaults] = await rows(await open({ tempDirectory }), "select current_setting('memory_limit') as memory");
    expect(defaults).toEqual({ memory: "488.2 MiB" });
  });

  test("a query that needs an extension that is not built in fails at once instead of downloading it", async () => {
    const duckdb = await open({ tempDirectory: scratchDir() });
    const started = performance.now();
    await expect(rows(duckdb, "select * from read_parquet('s3://bucket/x.parquet')")).rejects.toThrow(/requires the extension httpfs/);
    expect(performance.now() - started).toBeLessThan(1_000);
    // Parquet and JSON are built in.
    expect(await rows(duckdb, "select extension_name as name from duckdb_extensions() where loaded and extension_name in ('parquet', 'json') order by 1")).toEqual([
      { name: "json" },
      { name: "parquet" },
    ]);
  });

  test("with a 64MB memory limit, an ORDER BY over 3 million rows (116 MB sorted) spills to the temp directory and completes", async () => {
    const tempDirectory = scratchDir();
    const duckdb = await open({ tempDirectory, memoryLimit: "64MB", threads: 2 });
    // Without a temp directory the same statement fails: "Out of Memory Error: could not allocate
    // block". DuckDB deletes its spill files when the query ends: watch them appear.
    const spilled = new Set<string>();
    const watcher = watch(tempDirectory, (_event, name) => name && spilled.add(name));
    try {
      await duckdb.connection.run("create table sorted as select md5(i::varchar) as s from range(3000000) t(i) order by s");
    } finally {
      watcher.close();
    }
    expect([...spilled].some((name) => name.startsWith("duckdb_temp_storage"))).toBe(true);
    expect(await rows(duckdb, "select count(*) as n from sorted")).toEqual([{ n: "3000000" }]);
  }, 60_000);

  test("refuses a relative temp directory, and threads that are not a whole number above 0, before creating anything", async () => {
    const relative = `etl-duckdb-relative-${process.pid}`;
    const refused = openDuckDB({ tempDirectory: relative });
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(`DuckDB's temp directory must be an absolute path (got "${relative}")`);
    expect(existsSync(relative)).toBe(false);
    await expect(openDuckDB({ tempDirectory: scratchDir(), threads: 0 })).rejects.toThrow("DuckDB's threads must be a whole number above 0 (got 0)");
  });

  test("the probe job writes 100k rows as zstd Parquet and reads them back", async () => {
    const output = scratchDir();
    const run = await runCommand(["tests/fixtures/jobs/duckdb_probe.ts"], ["--output", `file://${output}`], { DATABASE_URL: "" });
    expect(run.stderr).toBe("");
    expect(run.summary).toMatchObject({ status: "succeeded", counts: { written: 100_000, read: 100_000, distinct: 100_000 } });
    const duckdb = await open({ tempDirectory: scratchDir() });
    const file = join(output, "probe.parquet");
    expect(await rows(duckdb, `select distinct compression from parquet_metadata('${file}')`)).toEqual([{ compression: "ZSTD" }]);
    expect(await rows(duckdb, `select count(*) as n, max(id) as top from read_parquet('${file}')`)).toEqual([{ n: "100000", top: "99999" }]);
  });
});
