/**
 * Private scratch directories under $TMPDIR (staged inputs, DuckDB's spill files, the embedded
 * DuckDB library), named for the process that made them, `etl-<purpose>-<host>-<pid>.<start>-XXXXXX`,
 * so that a later process can tell one whose maker is gone. A run removes its own; a killed one
 * (SIGKILL, OOM) cannot, and the next run that makes one removes what dead processes left.
 *
 * <start> is the process's start time (clock ticks since boot, /proc/<pid>/stat), so that a pid
 * used again does not pass for the dead process: pid 1 of a restarted container, whose emptyDir
 * /tmp survives the restart, is another process with the same pid. <host> is the kernel's host
 * name, one per container: a process of another container sharing the directory (another pid
 * namespace) is not judged from this one, and its directories are left alone.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../log";

const NAME = /^etl-([a-z_]+)-(.+)-(\d+)\.(\d+)-[A-Za-z0-9]{6}$/;

/** A new directory for `purpose` (snake_case, e.g. "silver") under `dir` (default $TMPDIR), named for this process. */
export async function makeWorkDirectory(purpose: string, dir = tmpdir()): Promise<string> {
  return mkdtemp(join(dir, `etl-${purpose}-${hostname()}-${process.pid}.${startTime(process.pid) ?? 0}-`));
}

/**
 * Removes the work directories under `dir` (default $TMPDIR) made on this host by processes that
 * are gone; returns their names. Directories of live processes, of other hosts, and of any
 * other name are kept.
 */
export async function removeAbandonedWorkDirectories(dir = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const match = entry.isDirectory() ? NAME.exec(entry.name) : null;
    if (!match || match[2] !== hostname() || isRunning(Number(match[3]), match[4]!)) continue;
    await rm(join(dir, entry.name), { recursive: true, force: true });
    removed.push(entry.name);
  }
  return removed;
}

/** What a run does before making its own: removes those of dead processes, and logs which. */
export async function sweepAbandonedWorkDirectories(log: Logger, dir = tmpdir()): Promise<void> {
  const directories = await removeAbandonedWorkDirectories(dir);
  if (directories.length) log.info("removed the work directories of killed runs", { tmpdir: directories });
}

/** Whether the process `pid` that started at `start` (0: not known) still runs. */
function isRunning(pid: number, start: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  const current = startTime(pid);
  return start === "0" || current === undefined || String(current) === start;
}

/** Field 22 of /proc/<pid>/stat; undefined where there is no /proc (macOS). */
function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}
