import type { Sql } from "../core/db/db";

export interface Agency {
  id: string;
  name: string;
  isActive: boolean;
}

export class AgencyRepository {
  constructor(private readonly sql: Sql) {}

  async findAgency(id: number): Promise<Agency | undefined> {
    const [row] = await this.sql<Agency[]>`
      select id::text as id, name, is_active as "isActive"
      from agency
      where id = ${id}`;
    return row;
  }

  /** The agencies of these ids that exist (enrichment lookups). */
  async findAgencies(ids: readonly string[]): Promise<Agency[]> {
    if (ids.length === 0) return [];
    return this.sql<Agency[]>`
      select id::text as id, name, is_active as "isActive"
      from agency
      where id = any(${ids as string[]}::bigint[])`;
  }
}
