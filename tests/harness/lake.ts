/**
 * A lake for one test, as an S3 bucket on the test server or a local directory: the jobs take
 * both (DESIGN.md "Object-store locations"), and the tests that read and write a lake run on each.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createBucket, getObjectBytes, listKeys, putObject } from "./fixtures";

export type LakeKind = "file" | "s3";
export const LAKE_KINDS: readonly LakeKind[] = ["file", "s3"];

export interface TestLake {
  kind: LakeKind;
  /** What a job's bucket argument is: the bucket's name, or file:<dir>. */
  location: string;
  put(key: string, body: string | Uint8Array): Promise<void>;
  read(key: string): Promise<Buffer>;
  /**
   * The keys under `prefix`, sorted: a bucket's objects, or every file under a directory, a
   * write's temp file (`*.etl-partial-*`) included.
   */
  keys(prefix?: string): Promise<string[]>;
  /** A path on this machine holding the object's bytes (the file itself, or a downloaded copy). */
  localCopy(key: string): Promise<string>;
  /** The local directory of a file: lake. */
  dir?: string;
  remove(): void;
}

/** A new, empty lake of `kind`: its own bucket or directory. */
export async function createLake(kind: LakeKind): Promise<TestLake> {
  const scratch = mkdtempSync(join(tmpdir(), "etl-lake-"));
  if (kind === "file") {
    const dir = join(scratch, "lake");
    mkdirSync(dir);
    return {
      kind,
      location: `file:${dir}`,
      dir,
      async put(key, body) {
        mkdirSync(dirname(join(dir, key)), { recursive: true });
        writeFileSync(join(dir, key), body);
      },
      read: async (key) => readFileSync(join(dir, key)),
      async keys(prefix = "") {
        if (!existsSync(dir)) return [];
        const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
        return files.map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).filter((k) => k.startsWith(prefix)).sort();
      },
      localCopy: async (key) => join(dir, key),
      remove: () => rmSync(scratch, { recursive: true, force: true }),
    };
  }
  const bucket = await createBucket();
  let copies = 0;
  return {
    kind,
    location: bucket,
    put: (key, body) => putObject(bucket, key, body),
    read: async (key) => Buffer.from(await getObjectBytes(bucket, key)),
    keys: async (prefix = "") => (await listKeys(bucket)).filter((k) => k.startsWith(prefix)).sort(),
    async localCopy(key) {
      const path = join(scratch, `${copies++}-${key.slice(key.lastIndexOf("/") + 1)}`);
      writeFileSync(path, await getObjectBytes(bucket, key));
      return path;
    },
    remove: () => rmSync(scratch, { recursive: true, force: true }),
  };
}
