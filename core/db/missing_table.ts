/**
 * Whether a database error says a table does not exist (SQLSTATE 42P01): what a dry run meets in a
 * database it may not migrate, and what an operator command meets before `etl migrate`.
 */
export function isMissingTable(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === "42P01";
}

/** `read()`, or `absent` when a dry run finds the table missing: an unmigrated database holds none of it. */
export async function readUnlessMissing<T>(dryRun: boolean, read: () => Promise<T>, absent: T): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (dryRun && isMissingTable(error)) return absent;
    throw error;
  }
}
