/**
 * unzip_files run on a lake of either kind (harness/lakes.ts), and what its tests look at there
 * that differs by kind: staging left behind (a directory, or objects and multipart uploads), an
 * entry being written (a temp file, or a multipart upload), a large object's size.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { runCommand, type CliResult } from "./fixtures";
import type { Lake } from "./lakes";
import { writeStreamedZip } from "./zip_builder";

export const DAY = "2026-11-01";
export const DESTINATION = `bronze/service_requests/dt=${DAY}/`;

/** Runs the job with `argv` as they are, against the test database `databaseUrl`. */
export function runUnzip(databaseUrl: string, argv: string[], env: Record<string, string | undefined> = {}, program?: string[]): Promise<CliResult> {
  return runCommand(["jobs/unzip_files.ts"], argv, { DATABASE_URL: databaseUrl, ...env }, program);
}

/** The arguments that point the job at `lake`, its inbox and DESTINATION. */
export function lakeArgs(lake: Lake): string[] {
  return ["--bucket", lake.arg, "--destination", "bronze/service_requests/dt={date}/", "--date", DAY];
}

/** Keys under `prefix`, relative to it, sorted. */
export async function filesUnder(lake: Lake, prefix = ""): Promise<string[]> {
  return (await lake.keys(prefix)).map((key) => key.slice(prefix.length));
}

export async function reasonOf(lake: Lake, key: string): Promise<Record<string, unknown> & { rule: string; detail: string }> {
  return JSON.parse(await lake.readText(`quarantine/unzip_files/${DAY}/${key}.reason.json`));
}

/** Whether nothing is left of staging: no directory on disk; no object and no upload in progress on S3. */
export async function stagingGone(lake: Lake): Promise<boolean> {
  if (lake.dir) return !existsSync(join(lake.dir, "_staging"));
  return (await lake.keys("_staging/")).length === 0 && (await lake.uploads("_staging/")).length === 0;
}

/** Whether an entry named `name` is being written to staging: its temp file on disk, its multipart upload on S3. */
export async function stagingWrites(lake: Lake, name: string): Promise<boolean> {
  const keys = lake.dir ? await lake.keys("_staging/") : await lake.uploads("_staging/");
  return keys.some((key) => key.includes(name));
}

/** Puts a zip streamed by writeStreamedZip at `key`: in place on disk, through a temp file to S3. */
export async function putStreamedZip(lake: Lake, key: string, entries: ReadonlyArray<{ name: string; source: () => Readable }>): Promise<number> {
  if (lake.dir) {
    const path = join(lake.dir, key);
    mkdirSync(dirname(path), { recursive: true });
    await writeStreamedZip(path, entries);
    return statSync(path).size;
  }
  const path = join(tmpdir(), `etl-streamed-${crypto.randomUUID()}.zip`);
  try {
    await writeStreamedZip(path, entries);
    const bytes = readFileSync(path);
    await lake.write(key, bytes);
    return bytes.length;
  } finally {
    rmSync(path, { force: true });
  }
}

/** An object's size, without reading it (FileStore.head would hash the whole file). */
export async function sizeOf(lake: Lake, key: string): Promise<number | undefined> {
  if (lake.dir) return existsSync(join(lake.dir, key)) ? statSync(join(lake.dir, key)).size : undefined;
  return (await (await lake.store()).head(key))?.size;
}
