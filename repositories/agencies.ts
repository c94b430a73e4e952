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

  /** The active agencies (agency.is_active), by id: the ones a scheduled get_s3_files copies. */
  async listActiveAgencies(): Promise<Agency[]> {
    return this.sql<Agency[]>`
      select id::text as id, name, is_active as "isActive"
      from agency
      where is_active
      order by id`;
  }

  /** The agency of each of these attachments (soft-deleted ones too), for a replay of an every-agency run. */
  async agenciesOfAttachments(ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.sql<{ id: string; agencyId: string }[]>`
      select id::text as id, agency_id::text as "agencyId" from attachment where id = any(${ids as string[]}::bigint[])`;
    return new Map(rows.map((r) => [r.id, r.agencyId]));
  }
}
