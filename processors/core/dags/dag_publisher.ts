/**
 * Publishes a DAG package folder (written by `etl dags`) to `<env>/<package>/` in a bucket:
 * DAG files first, then stale keys under that prefix removed, metadata.json last, so a reader
 * that sees the new metadata.json finds every file it names.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../../../core/errors";
import type { Counts } from "../../../core/runtime/job";
import type { Logger } from "../../../core/log";
import { writeBytes, type ObjectStore } from "../../../core/storage/object_store";
import { METADATA_FILE, parseMetadata } from "./dag_package";

/**
 * Reads the folder as name to content, metadata.json last. Refuses a folder that is not exactly
 * the package: metadata.json for another package, a listed DAG missing, or a DAG not listed.
 */
export async function readPackageFolder(dir: string, packageName: string): Promise<Map<string, Buffer>> {
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new UsageError(`${dir} is not a folder; write the package with \`etl dags --package ${packageName} --out ${dir}\``);
  }
  const metadataPath = join(dir, METADATA_FILE);
  const metadataText = await readFile(metadataPath, "utf8").catch(() => undefined);
  if (metadataText === undefined) throw new UsageError(`${metadataPath} is missing; write the package with \`etl dags\``);
  let metadata;
  try {
    metadata = parseMetadata(metadataText, metadataPath);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (metadata.package !== packageName) {
    throw new UsageError(`${metadataPath} is package "${metadata.package}", not "${packageName}": refusing to publish it under another package's prefix`);
  }
  const present = new Set((await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name));
  const missing = metadata.files.filter((f) => !present.has(f));
  if (missing.length) throw new UsageError(`${dir} lacks ${missing.join(", ")}, which ${METADATA_FILE} lists`);
  const unlisted = [...present].filter((f) => f.endsWith(".py") && !metadata.files.includes(f)).sort();
  if (unlisted.length) throw new UsageError(`${dir} holds ${unlisted.join(", ")}, which ${METADATA_FILE} does not list; regenerate the folder with \`etl dags\``);

  const files = new Map<string, Buffer>();
  for (const file of [...metadata.files].sort()) files.set(file, await readFile(join(dir, file)));
  files.set(METADATA_FILE, Buffer.from(metadataText));
  return files;
}

export interface PublishOptions {
  store: ObjectStore;
  /** `<env>/<package>/`, from packagePrefix(). Nothing outside it is written or removed. */
  prefix: string;
  /** Name to content, metadata.json last (as readPackageFolder returns it). */
  files: Map<string, Buffer>;
  dryRun: boolean;
  log: Logger;
}

export async function publishPackage({ store, prefix, files, dryRun, log }: PublishOptions): Promise<Counts> {
  const counts = { uploaded: 0, unchanged: 0, removed: 0 };
  const put = async (name: string, body: Buffer) => {
    const key = `${prefix}${name}`;
    if ((await store.head(key))?.etag === md5(body)) {
      counts.unchanged++;
      return;
    }
    if (!dryRun) {
      await writeBytes(store, key, body, name.endsWith(".py") ? "text/x-python" : "application/json");
    }
    counts.uploaded++;
    log.info(dryRun ? "would upload" : "uploaded", { url: `${store.url}/${key}`, bytes: body.length });
  };

  const metadata = files.get(METADATA_FILE);
  if (!metadata) throw new Error(`a DAG package needs ${METADATA_FILE}`);
  for (const [name, body] of files) if (name !== METADATA_FILE) await put(name, body);

  const stale: string[] = [];
  for await (const { key } of store.list(prefix)) if (!files.has(key.slice(prefix.length))) stale.push(key);
  for (const key of stale) {
    if (!dryRun) await store.delete(key);
    counts.removed++;
    log.info(dryRun ? "would remove" : "removed", { url: `${store.url}/${key}` });
  }

  await put(METADATA_FILE, metadata);
  return counts;
}

function md5(body: Buffer): string {
  return new Bun.CryptoHasher("md5").update(body).digest("hex");
}
