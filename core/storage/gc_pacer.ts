const MiB = 1024 * 1024;

/**
 * Every chunk a streamed copy moves is a fresh Buffer (64 KiB from a file, up to 512 KiB from an
 * HTTP response under Bun), dead once written on. JavaScriptCore let about 100 MiB of them pile
 * up before collecting, so a 2 GiB copy ran at 2-3x the memory it held live (S3 to file: 132 MiB
 * peak). A full collection per 32 MiB streamed, process-wide however many copies run, brought it
 * to 85 MiB. One costs 10-30 ms, so collections spend a budget that grows by a quarter of the time
 * elapsed: never more than a quarter of a core (4-7% measured), whatever the heap's size.
 */
const STRIDE = 32 * MiB;
let sinceCollection = 0;
let budgetMs = 0;
let last = performance.now();

/** Counts bytes a streamed copy has moved; collects garbage every STRIDE of them, within budget. */
export function streamed(bytes: number): void {
  sinceCollection += bytes;
  if (sinceCollection < STRIDE) return;
  const start = performance.now();
  budgetMs = Math.min(100, budgetMs + (start - last) / 4);
  last = start;
  if (budgetMs < 0) return;
  sinceCollection = 0;
  Bun.gc(true);
  budgetMs -= performance.now() - start;
}
