import type { Sql } from "../core/db/db";
import { ConfigError } from "../core/errors";
import type { ListedObject } from "../core/storage/object_store";

export type ListingSide = "source" | "destination";
const SIDE_CODE: Record<ListingSide, string> = { source: "s", destination: "d" };

/** etl_object_listings (migrations/0003): what one run listed at its source and destination. */
export class ObjectListingRepository {
  constructor(
    private readonly sql: Sql,
    private readonly runId: string,
  ) {}

  async addListedObjects(side: ListingSide, objects: readonly ListedObject[]): Promise<void> {
    if (objects.length === 0) return;
    await this.sql`
      insert into etl_object_listings (run_id, side, key, size, etag)
      select ${this.runId}::uuid, ${SIDE_CODE[side]}, key, size, etag
      from unnest(
        ${objects.map((o) => o.key)}::text[],
        ${objects.map((o) => o.size)}::bigint[],
        ${objects.map((o) => o.etag ?? null)}::text[]
      ) as t (key, size, etag)
      on conflict do nothing`;
  }

  /**
   * Refreshes the planner's statistics once a listing is in. Without them PostgreSQL joined the
   * pages to a freshly filled table with a nested loop over every row: 570 ms per 500-row page
   * for 2000 objects, growing with the square of the count; 15 ms after this.
   * Only the table's owner (or the database's, or a superuser; PostgreSQL 17: MAINTAIN) may, and
   * PostgreSQL skips it for anyone else with nothing but a warning: a rerun over 3000 attachments
   * took 26.4 s instead of 3.2 s, and one over 20,000 failed on the statement timeout instead of
   * taking 10 s. So a role that may not is a configuration error, naming the grant.
   */
  async analyzeListings(): Promise<void> {
    const [role] = await this.sql<{ may: boolean; role: string }[]>`
      select current_user as role,
             pg_has_role(c.relowner, 'USAGE')
             or pg_has_role((select datdba from pg_database where datname = current_database()), 'USAGE')
             or (select rolsuper from pg_roles where rolname = current_user)
             or case when current_setting('server_version_num')::int >= 170000 then has_table_privilege(c.oid, 'MAINTAIN') else false end as may
      from pg_class c
      where c.oid = 'etl_object_listings'::regclass`;
    if (!role?.may) {
      throw new ConfigError(
        `role "${role?.role}" may not ANALYZE etl_object_listings (only its owner may, or on PostgreSQL 17 a role granted MAINTAIN), and without fresh statistics each page of attachments joins the listings row by row: ` +
          `make the job's role own the table (README.md "Privileges")`,
      );
    }
    await this.sql`analyze etl_object_listings`;
  }

  /** Forgets this run's listing of one side, or of both. */
  async deleteListing(side?: ListingSide): Promise<void> {
    await this.sql`
      delete from etl_object_listings
      where run_id = ${this.runId}::uuid ${side ? this.sql`and side = ${SIDE_CODE[side]}` : this.sql``}`;
  }

  /** Removes what runs that hold no live lease left behind (killed before they could clean up). */
  async deleteAbandonedListings(): Promise<number> {
    const result = await this.sql`
      delete from etl_object_listings
      where run_id <> ${this.runId}::uuid
        and run_id not in (select run_id from etl_leases where expires_at > now())`;
    return result.count;
  }
}
