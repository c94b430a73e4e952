import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, opendir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ObjectNotFoundError, type ListedObject, type ObjectInfo, type ObjectStore } from "./object_store";

/** Marks a write in progress (see write); such files are not objects yet. */
const PARTIAL = ".etl-partial-";

/** A unique name beside `path` to write to before renaming over `path`. */
export function partialPath(path: string): string {
  return `${path}${PARTIAL}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Whether a file name is one partialPath() made: a write in progress or abandoned by a crash. */
export function isPartial(name: string): boolean {
  return name.includes(PARTIAL);
}

/** A local directory used as a bucket: keys are paths relative to `root`. */
export class FileStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    const stats = await stat(path).catch(() => undefined);
    if (!stats?.isFile()) return undefined;
    return { size: stats.size, etag: await md5OfFile(path), metadata: {} };
  }

  async read(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    const stats = await stat(path).catch(() => undefined);
    if (!stats?.isFile()) throw new ObjectNotFoundError(this.url, key);
    return createReadStream(path);
  }

  async exists(): Promise<boolean> {
    return (await stat(this.root).catch(() => undefined))?.isDirectory() ?? false;
  }

  async write(key: string, body: Readable): Promise<void> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    // Write beside the target and rename: a reader never sees half a file, and a crash leaves
    // only a temp file that the next run overwrites under another name.
    const temp = partialPath(path);
    try {
      await pipeline(body, createWriteStream(temp));
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    // Walk only the directory the prefix's complete segments name: "a/b/c" starts at a/b.
    const start = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const dir = start ? this.pathOf(start) : this.root;
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) return;
    yield* this.walk(dir, start ? `${start}/` : "", prefix);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  private async *walk(dir: string, keyPrefix: string, prefix: string): AsyncIterable<ListedObject> {
    for await (const entry of await opendir(dir)) {
      const key = `${keyPrefix}${entry.name}`;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) yield* this.walk(join(dir, entry.name), `${key}/`, prefix);
      } else if (entry.isFile() && key.startsWith(prefix) && !isPartial(entry.name)) {
        yield { key, size: (await stat(join(dir, entry.name))).size };
      }
    }
  }

  /** Maps a key to a path inside the root; a key that would escape it is refused. */
  private pathOf(key: string): string {
    const path = join(this.root, key);
    const rel = relative(this.root, path);
    if (key === "" || rel === "" || rel.startsWith(`..${sep}`) || rel === "..") {
      throw new Error(`key "${key}" does not name a file inside ${this.root}`);
    }
    return path;
  }
}

async function md5OfFile(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("md5");
  for await (const chunk of createReadStream(path)) hasher.update(chunk as Buffer);
  return hasher.digest("hex");
}
