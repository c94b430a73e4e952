import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Writes generated files into `dir`, first removing the files there that `isGenerated` claims and
 * that are no longer generated (their job is gone); other files are left alone. Returns the names written.
 */
export async function writeGenerated(dir: string, files: Map<string, string>, isGenerated: (file: string) => boolean): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const stale of (await readdir(dir)).filter((f) => isGenerated(f) && !files.has(f))) await rm(join(dir, stale));
  for (const [file, content] of files) await writeFile(join(dir, file), content);
  return [...files.keys()];
}
