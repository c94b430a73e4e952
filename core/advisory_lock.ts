import type { Sql } from "./db";

/**
 * Takes a session-level advisory lock named `name` on a connection reserved for the run, or
 * returns undefined when another session holds it. The lock dies with the connection, so a
 * killed pod never leaves it behind.
 */
export async function tryAdvisoryLock(sql: Sql, name: string): Promise<(() => Promise<void>) | undefined> {
  const connection = await sql.reserve();
  try {
    const [row] = await connection`select pg_try_advisory_lock(hashtextextended(${name}, 0)) as locked`;
    if (!row?.locked) {
      connection.release();
      return undefined;
    }
  } catch (error) {
    connection.release();
    throw error;
  }
  return async () => {
    try {
      await connection`select pg_advisory_unlock(hashtextextended(${name}, 0))`;
    } finally {
      connection.release();
    }
  };
}
