/**
 * Info-ZIP's own tools for the tests: the archives Debian's zip makes of a tree of files, the
 * names Debian's unzip lists, and a reader of a zip's central directory to check what they hold.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A file for `infoZip` to archive: its path, as a string (UTF-8) or as the bytes the filesystem gets. */
export interface TreeFile {
  path: string | Uint8Array;
  data: string;
}

/**
 * The archive Info-ZIP's zip (/usr/bin/zip, Debian's) makes of a tree of `files` with `zip -r`,
 * run under `env` (LC_ALL, for one). Paths are written as bytes: one that is not UTF-8 reaches the
 * filesystem, and zip, as it is.
 */
export function infoZip(files: readonly TreeFile[], env: Record<string, string> = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "etl-infozip-"));
  try {
    const tree = join(dir, "tree");
    for (const file of files) {
      const path = Buffer.concat([Buffer.from(`${tree}/`), Buffer.from(file.path)]);
      mkdirSync(path.subarray(0, path.lastIndexOf("/")), { recursive: true });
      writeFileSync(path, file.data);
    }
    const zip = Bun.spawnSync(["/usr/bin/zip", "-q", "-r", join(dir, "out.zip"), "."], { cwd: tree, env: { PATH: "/usr/bin:/bin", ...env }, stderr: "pipe" });
    if (zip.exitCode !== 0) throw new Error(`zip exited ${zip.exitCode}: ${zip.stderr.toString()}`);
    return readFileSync(join(dir, "out.zip"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The names Info-ZIP's unzip lists (`unzip -Z1`), one a line, as UTF-8. */
export function infoUnzipNames(archive: Uint8Array): string[] {
  const dir = mkdtempSync(join(tmpdir(), "etl-infounzip-"));
  try {
    writeFileSync(join(dir, "a.zip"), archive);
    const unzip = Bun.spawnSync(["/usr/bin/unzip", "-Z1", join(dir, "a.zip")], { env: { PATH: "/usr/bin:/bin", LC_ALL: "C.UTF-8" }, stderr: "pipe" });
    if (unzip.exitCode !== 0) throw new Error(`unzip -Z1 exited ${unzip.exitCode}: ${unzip.stderr.toString()}`);
    return unzip.stdout.toString().split("\n").filter((line) => line !== "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a test checks of a central directory record: who made it and how its name is marked. */
export interface CentralHeader {
  host: number;
  flags: number;
  rawName: Buffer;
  extraIds: number[];
}

/** The central directory of a small zip (no ZIP64, no comment), read field by field (APPNOTE 4.3.12). */
export function centralHeaders(zip: Buffer): CentralHeader[] {
  const end = zip.length - 22;
  if (zip.readUInt32LE(end) !== 0x06054b50) throw new Error("no end of central directory record where a zip without comment has it");
  const headers: CentralHeader[] = [];
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const extra = zip.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    const extraIds: number[] = [];
    for (let e = 0; e + 4 <= extra.length; e += 4 + extra.readUInt16LE(e + 2)) extraIds.push(extra.readUInt16LE(e));
    headers.push({ host: zip[at + 5]!, flags: zip.readUInt16LE(at + 8), rawName: zip.subarray(at + 46, at + 46 + nameLength), extraIds });
    at += 46 + nameLength + extraLength + zip.readUInt16LE(at + 32);
  }
  return headers;
}
