import type { Sql } from "../core/db";

export interface Attachment {
  /** bigint, kept as text so ids above 2^53 survive. */
  id: string;
  s3Key: string;
  fileName: string;
  contentType: string | null;
  sizeBytes: number | null;
}

export interface ListAttachmentsOptions {
  batchSize: number;
  /** Only ids with id % count = index. */
  shard?: { index: number; count: number };
}

export class AttachmentRepository {
  constructor(private readonly sql: Sql) {}

  /**
   * The agency's attachments that are not soft-deleted, in id order, one page at a time. Keyset
   * pagination (id > last id seen) keeps every page one index range scan and memory flat, where
   * OFFSET would rescan all earlier rows and skip or repeat rows that change between pages.
   */
  async *listAttachmentsForAgency(agencyId: number, options: ListAttachmentsOptions): AsyncGenerator<Attachment[]> {
    const shard = options.shard ?? { index: 0, count: 1 };
    let afterId = "0";
    // Qualified as attachment.id: a bare `id` in ORDER BY would name the text alias below and
    // sort "1000" before "923".
    for (;;) {
      const page = await this.sql<Attachment[]>`
        select id::text as id,
               s3_key as "s3Key",
               file_name as "fileName",
               content_type as "contentType",
               size_bytes::float8 as "sizeBytes"
        from attachment
        where agency_id = ${agencyId}
          and deleted_at is null
          and attachment.id > ${afterId}::bigint
          and attachment.id % ${shard.count} = ${shard.index}
        order by attachment.id
        limit ${options.batchSize}`;
      if (page.length === 0) return;
      yield page;
      if (page.length < options.batchSize) return;
      afterId = page[page.length - 1]!.id;
    }
  }
}
