/** The part of a DuckDB connection the silver transform uses, and how it quotes into SQL. */
export interface DuckSql {
  run(sql: string): Promise<unknown>;
  runAndReadAll(sql: string): Promise<{ getRowObjects(): Array<Record<string, unknown>> }>;
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const quoteText = (text: string) => `'${text.replace(/'/g, "''")}'`;
