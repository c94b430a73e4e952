/**
 * A lake of either kind a job accepts, an S3 bucket on the test server or a local directory, for
 * tests that run the same job on both (DESIGN: every job that reads or writes objects takes S3
 * and `file:` locations alike). Each lake is new: a bucket or a directory of its own.
 */
import { DeleteObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import type { ObjectStore } from "../../core/storage/object_store";
import { ObjectStores } from "../../core/storage/object_stores";
import { parseLocation } from "../../core/storage/object_store";
import { createBucket, getObjectBytes, listKeys, putObject, s3 } from "./fixtures";

export const LAKE_KINDS = ["s3", "file"] as const;
export type LakeKind = (typeof LAKE_KINDS)[number];

export interface Lake {
  kind: LakeKind;
  /** The job's argument: the bucket's name, or file:<dir>. */
  arg: string;
  /** s3://bucket or file://dir, as the stores name it in logs and errors. */
  url: string;
  /** The directory of a file: lake. */
  dir?: string;
  /** Keys under `prefix`, sorted: a bucket's objects, every file under a directory (a write's temp file, `*.etl-partial-*`, included). */
  keys(prefix?: string): Promise<string[]>;
  /** The keys of the multipart uploads under `prefix` that are neither completed nor aborted, sorted; a directory has none. */
  uploads(prefix?: string): Promise<string[]>;
  read(key: string): Promise<Buffer<ArrayBuffer>>;
  readText(key: string): Promise<string>;
  write(key: string, body: string | Uint8Array): Promise<void>;
  remove(key: string): Promise<void>;
  /** A path on this machine holding the object's bytes: the file itself, or a downloaded copy. */
  localCopy(key: string): Promise<string>;
  /** The store the jobs would open for it, for tests that run a processor in-process. */
  store(): Promise<ObjectStore>;
  /** Deletes the directory (and downloaded copies) and closes the store's client; a bucket is left: the server goes at the end of the run. */
  dispose(): Promise<void>;
}

export async function createLake(kind: LakeKind): Promise<Lake> {
  const stores = new ObjectStores({ s3Endpoint: process.env.S3_ENDPOINT, awsRegion: process.env.AWS_REGION ?? "us-east-1" });
  const scratch = mkdtempSync(join(tmpdir(), "etl-lake-"));
  const common = (arg: string) => ({
    arg,
    store: () => stores.open(parseLocation(arg)),
    readText: async (key: string) => (await lake.read(key)).toString("utf8"),
    dispose: async () => {
      rmSync(scratch, { recursive: true, force: true });
      await stores.close();
    },
  });
  let lake: Lake;
  if (kind === "s3") {
    const bucket = await createBucket();
    let copies = 0;
    lake = {
      kind,
      url: `s3://${bucket}`,
      ...common(bucket),
      keys: async (prefix = "") => (await listKeys(bucket)).filter((k) => k.startsWith(prefix)).sort(),
      async uploads(prefix = "") {
        const out = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
        return (out.Uploads ?? []).map((upload) => upload.Key!).sort();
      },
      read: async (key) => Buffer.from(await getObjectBytes(bucket, key)),
      write: (key, body) => putObject(bucket, key, body),
      remove: async (key) => void (await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
      async localCopy(key) {
        const path = join(scratch, `${copies++}-${key.slice(key.lastIndexOf("/") + 1)}`);
        writeFileSync(path, await getObjectBytes(bucket, key));
        return path;
      },
    };
    return lake;
  }
  const dir = join(scratch, "lake");
  mkdirSync(dir);
  lake = {
    kind,
    url: `file://${dir}`,
    dir,
    ...common(`file:${dir}`),
    keys: async (prefix = "") => filesUnder(dir).filter((k) => k.startsWith(prefix)),
    uploads: async () => [],
    read: async (key) => readFileSync(join(dir, key)),
    write: async (key, body) => {
      mkdirSync(dirname(join(dir, key)), { recursive: true });
      writeFileSync(join(dir, key), body);
    },
    remove: async (key) => rmSync(join(dir, key), { force: true }),
    localCopy: async (key) => join(dir, key),
  };
  return lake;
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}
