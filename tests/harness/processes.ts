import type { Subprocess } from "bun";
export { freePort } from "../../core/db/embedded_postgres";

/** Polls `ready` until it resolves true or `timeoutMs` passes; fails early if the process died. */
export async function waitUntil(what: string, process: Subprocess, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.exitCode !== null) throw new Error(`${what} exited with ${process.exitCode} before it was ready`);
    if (await ready().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} was not ready after ${timeoutMs} ms`);
}

const children = new Set<Subprocess>();

/** Remembers a server process so it is killed when the test run ends, whatever way it ends. */
export function track<T extends Subprocess>(child: T): T {
  children.add(child);
  return child;
}

export function killTracked(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}

process.on("exit", killTracked);
