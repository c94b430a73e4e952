import type { Sql } from "../core/db/db";
import { retry } from "../core/http/retry";

export interface AttachmentByKey {
  /** bigint, kept as text so ids above 2^53 survive. */
  id: string;
  s3Key: string;
  sizeBytes: number | null;
  /** Created at or before the `dueBefore` given: the attachment should be at the destination by now. */
  due: boolean;
}

/**
 * An agency's attachments in key order, for comparing with a destination listing (S3 lists in
 * UTF-8 byte order). `collate "C"` sorts UTF-8 text bytewise whatever the database's collation
 * (en_US.UTF-8 puts "a-b" after "a/c" and ignores case first).
 */
export class AttachmentListingRepository {
  constructor(private readonly sql: Sql) {}

  /** The index that makes each page of listAttachmentsByKey one range scan. */
  static readonly KEY_ORDER_INDEX = `create index concurrently attachment_agency_key_idx on attachment (agency_id, s3_key collate "C", id)`;

  /** Whether attachment has a full index led by (agency_id, s3_key collate "C"): without one, each page sorts the agency's rows. */
  async hasKeyOrderIndex(): Promise<boolean> {
    const [row] = await this.sql<{ found: boolean }[]>`
      select exists (
        select 1
        from pg_index i
        join pg_attribute agency on agency.attrelid = i.indrelid and agency.attname = 'agency_id'
        join pg_attribute k on k.attrelid = i.indrelid and k.attname = 's3_key'
        where i.indrelid = to_regclass('attachment') and i.indpred is null and i.indisvalid
          and i.indkey[0] = agency.attnum and i.indkey[1] = k.attnum
          and i.indcollation[1] = (select oid from pg_collation where collname = 'C' and collnamespace = 'pg_catalog'::regnamespace)
      ) as found`;
    return row!.found;
  }

  /**
   * The agency's attachments that are not soft-deleted, ordered by (s3_key in byte order, id), a
   * page at a time. Keyset pagination (rows after the last key and id seen) keeps memory flat and
   * never skips or repeats a row that changes between pages. With an index on
   * `attachment (agency_id, s3_key collate "C", id)` each page is one index range scan; without
   * one, each page sorts the agency's rows again (scripts/bench/completeness.ts measures both).
   * A page read that fails on a lost connection is retried on a new one.
   */
  async *listAttachmentsByKey(agencyId: number, options: { batchSize: number; dueBefore?: Date; signal?: AbortSignal }): AsyncGenerator<AttachmentByKey[]> {
    const sql = this.sql;
    const dueBefore = options.dueBefore ?? null;
    let after: { key: string; id: string } | undefined;
    // Qualified as a.id: a bare `id` in ORDER BY names the text alias and sorts "1000" before "923".
    for (;;) {
      const rows = await retry(() => sql<AttachmentByKey[]>`
        select a.id::text as id,
               a.s3_key as "s3Key",
               a.size_bytes::float8 as "sizeBytes",
               (${dueBefore}::timestamptz is null or a.created_at <= ${dueBefore}::timestamptz) as due
        from attachment a
        where a.agency_id = ${agencyId}
          and a.deleted_at is null
          ${after ? sql`and (a.s3_key collate "C", a.id) > (${after.key}, ${after.id}::bigint)` : sql``}
        order by a.s3_key collate "C", a.id
        limit ${options.batchSize}`, { signal: options.signal });
      if (rows.length === 0) return;
      yield rows;
      if (rows.length < options.batchSize) return;
      const last = rows[rows.length - 1]!;
      after = { key: last.s3Key, id: last.id };
    }
  }
}
