/**
 * DuckDB for the jobs that transform data. The 70 MB native library loads on the first
 * openDuckDB, never on import: `etl list` and the jobs that do not open DuckDB never pay for it.
 */
import { mkdir, rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { ConfigError, errorMessage } from "../errors";
import { makeWorkDirectory } from "../runtime/work_directory";

export interface DuckDBOptions {
  /** Where DuckDB spills what does not fit in memoryLimit: absolute, created when missing. */
  tempDirectory: string;
  /** Limit of DuckDB's buffer manager (default "512MB"); sorts, joins and aggregations above it spill. */
  memoryLimit?: string;
  /** Worker threads; DuckDB's default (the cores it sees) when absent. */
  threads?: number;
  /**
   * Most that spills to tempDirectory (e.g. "7GB"). DuckDB's default is 90% of the free disk it
   * sees, not a pod's emptyDir limit: past that the pod would be evicted instead of failing.
   */
  maxTempSize?: string;
}

export interface DuckDB {
  connection: DuckDBConnection;
  /** Closes the connection and the database; DuckDB deletes its spill files. */
  close(): void;
}

/** The name scripts/build/build.ts embeds the library under (`--asset`) in the binaries whose jobs use DuckDB. */
export const EMBEDDED_LIBRARY = "libduckdb.so";

/** An in-memory DuckDB that never downloads an extension and spills to `tempDirectory`. */
export async function openDuckDB(options: DuckDBOptions): Promise<DuckDB> {
  const { tempDirectory, memoryLimit = "512MB", threads, maxTempSize } = options;
  // Relative, DuckDB would resolve it against the working directory: "/" in the image, read-only.
  if (!isAbsolute(tempDirectory)) throw new ConfigError(`DuckDB's temp directory must be an absolute path (got "${tempDirectory}")`);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new ConfigError(`DuckDB's threads must be a whole number above 0 (got ${threads})`);
  const { DuckDBInstance } = await loadDuckDB();
  await mkdir(tempDirectory, { recursive: true });
  const instance = await DuckDBInstance.create(":memory:", {
    // Only the built-in extensions (parquet, json, icu): a query that needs another one, e.g.
    // httpfs for s3:// paths, fails at once instead of downloading code at run time.
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
    temp_directory: tempDirectory,
    memory_limit: memoryLimit,
    // Keeping insertion order makes a Parquet-to-Parquet COPY hold rows back to put them in
    // order: 4M rows filtered at 256MB peaked at 235-240 MB RSS with it, 140-160 MB and faster
    // without. Results that need an order say ORDER BY.
    preserve_insertion_order: "false",
    ...(threads ? { threads: String(threads) } : {}),
    ...(maxTempSize ? { max_temp_directory_size: maxTempSize } : {}),
  });
  try {
    const connection = await instance.connect();
    return {
      connection,
      close() {
        connection.closeSync();
        instance.closeSync();
      },
    };
  } catch (error) {
    instance.closeSync();
    throw error;
  }
}

type DuckDBApi = typeof import("@duckdb/node-api");

// One load per process: a native library cannot be loaded twice.
let loaded: Promise<DuckDBApi> | undefined;

function loadDuckDB(): Promise<DuckDBApi> {
  loaded ??= (async () => {
    try {
      await loadEmbeddedLibrary();
      return await import("@duckdb/node-api");
    } catch (error) {
      throw nativeLoadError(error);
    }
  })();
  return loaded;
}

/**
 * In a compiled binary, Bun writes the embedded duckdb.node to $TMPDIR when it is required and
 * loads it from there; its RUNPATH ($ORIGIN) then looks for libduckdb.so beside that copy, where
 * nothing is. So the binary carries libduckdb.so as an asset, and it is loaded first, from a
 * private directory: the dynamic linker then finds the library duckdb.node needs already loaded
 * (it matches libraries by soname). The file is removed once loaded (its mapping stays); writing
 * it takes about 60 ms, and a run killed in those leaves a work directory that the next run of
 * bronze_to_silver, profile_dataset or unzip_files removes (core/runtime/work_directory.ts). From source there is no asset: duckdb.node finds
 * libduckdb.so beside it in node_modules.
 */
async function loadEmbeddedLibrary(): Promise<void> {
  const library = Bun.embeddedFiles.find((file) => (file as Blob & { name?: string }).name === EMBEDDED_LIBRARY);
  if (!library) return;
  const dir = await makeWorkDirectory("duckdb");
  try {
    const path = join(dir, EMBEDDED_LIBRARY);
    await Bun.write(path, library);
    const { dlopen } = await import("bun:ffi");
    // Never closed: duckdb.node links against it for the life of the process.
    dlopen(path, { duckdb_library_version: { args: [], returns: "cstring" } });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// What each way of failing to load means, by the loader's message.
const LOAD_HINTS: Array<[RegExp, string]> = [
  [/libstdc\+\+|libgcc_s/, "DuckDB needs the C++ runtime, libstdc++.so.6 and libgcc_s.so.1: the image must be distroless cc, not base"],
  [
    /mkdtemp|EACCES|EROFS|ENOSPC|EPERM|permission denied|read-only|failed to map segment/i,
    "the native files are written to $TMPDIR (/tmp when unset) before they load: it must exist, be writable, have room for 70 MB and not be mounted noexec",
  ],
  [
    /libduckdb/,
    "from source, libduckdb.so comes with @duckdb/node-bindings-<platform>-<arch> (bun install); a compiled binary carries it when one of its jobs imports @duckdb/node-api (bun run build)",
  ],
];

/** A ConfigError (exit 2: retrying cannot help) that says what is missing. */
function nativeLoadError(error: unknown): ConfigError {
  const message = errorMessage(error);
  const hint = LOAD_HINTS.find(([pattern]) => pattern.test(message))?.[1];
  return new ConfigError(`DuckDB's native library did not load: ${message}${hint ? `. ${hint}` : ""}`, { cause: error });
}
