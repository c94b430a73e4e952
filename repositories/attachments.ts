import type { Sql } from "../core/db/db";
import { retry } from "../core/http/retry";

export interface Attachment {
  /** bigint, kept as text so ids above 2^53 survive. */
  id: string;
  s3Key: string;
  fileName: string;
  contentType: string | null;
  sizeBytes: number | null;
}

/** What a listing knew of one object: null when the side was listed and the key was not there. */
export interface ListedInfo {
  size: number;
  /** Unknown (null) for local files, whose MD5 is only computed when needed. */
  etag: string | null;
}

export interface AttachmentWithListings extends Attachment {
  /** Undefined when the source was not listed. */
  listedSource?: ListedInfo | null;
  /** Undefined when the destination was not listed. */
  listedDestination?: ListedInfo | null;
}

export interface ListAttachmentsOptions {
  batchSize: number;
  /** Only ids with id % count = index. */
  shard?: { index: number; count: number };
  /** Joins the run's object listings (etl_object_listings); destination keys are prefix + s3_key. */
  listings?: { runId: string; source: boolean; destination: boolean; destinationPrefix: string };
  /** Only these attachment ids (a replay of dead letters). */
  ids?: readonly string[];
  /** Stops retrying a page read. */
  signal?: AbortSignal;
}

export interface AttachmentSummary {
  count: number;
  /** Attachments whose size_bytes is unknown, or not below `trustedSize`: their size must be asked. */
  unsized: number;
  /** First and last key in byte order (S3's listing order): their common prefix is every key's. */
  firstKey: string | null;
  lastKey: string | null;
}

export class AttachmentRepository {
  constructor(private readonly sql: Sql) {}

  async summarizeAttachments(agencyId: number, shard = { index: 0, count: 1 }, trustedSize = Number.MAX_SAFE_INTEGER): Promise<AttachmentSummary> {
    const [row] = await this.sql<AttachmentSummary[]>`
      select count(*)::int as count,
             (count(*) filter (where size_bytes is null or size_bytes >= ${trustedSize}))::int as unsized,
             min(s3_key collate "C") as "firstKey",
             max(s3_key collate "C") as "lastKey"
      from attachment
      where agency_id = ${agencyId}
        and deleted_at is null
        and id % ${shard.count} = ${shard.index}`;
    return row!;
  }

  /**
   * The agency's attachments that are not soft-deleted, in id order, one page at a time. Keyset
   * pagination (id > last id seen) keeps every page one index range scan and memory flat, where
   * OFFSET would rescan all earlier rows and skip or repeat rows that change between pages.
   * A page read that fails on a lost connection is retried on a new one: the run goes on.
   */
  async *listAttachmentsForAgency(agencyId: number, options: ListAttachmentsOptions): AsyncGenerator<AttachmentWithListings[]> {
    const shard = options.shard ?? { index: 0, count: 1 };
    const listings = options.listings;
    const sql = this.sql;
    let afterId = "0";
    // Qualified as a.id: a bare `id` in ORDER BY would name the text alias below and sort "1000"
    // before "923".
    for (;;) {
      const rows = await retry(() => sql`
        select a.id::text as id,
               a.s3_key as "s3Key",
               a.file_name as "fileName",
               a.content_type as "contentType",
               a.size_bytes::float8 as "sizeBytes"
               ${listings ? sql`, s.size::float8 as "sourceSize", s.etag as "sourceEtag", d.size::float8 as "destinationSize", d.etag as "destinationEtag"` : sql``}
        from attachment a
        ${listings ? sql`
          left join etl_object_listings s on s.run_id = ${listings.runId}::uuid and s.side = 's' and s.key = a.s3_key
          left join etl_object_listings d on d.run_id = ${listings.runId}::uuid and d.side = 'd' and d.key = ${listings.destinationPrefix} || a.s3_key` : sql``}
        where a.agency_id = ${agencyId}
          and a.deleted_at is null
          and a.id > ${afterId}::bigint
          and a.id % ${shard.count} = ${shard.index}
          ${options.ids ? sql`and a.id = any(${options.ids as string[]}::bigint[])` : sql``}
        order by a.id
        limit ${options.batchSize}`, { signal: options.signal });
      if (rows.length === 0) return;
      yield rows.map((row) => withListings(row, listings));
      if (rows.length < options.batchSize) return;
      afterId = rows[rows.length - 1]!.id;
    }
  }
}

function withListings(row: Record<string, any>, listings: ListAttachmentsOptions["listings"]): AttachmentWithListings {
  const attachment: AttachmentWithListings = {
    id: row.id,
    s3Key: row.s3Key,
    fileName: row.fileName,
    contentType: row.contentType,
    sizeBytes: row.sizeBytes,
  };
  if (listings?.source) attachment.listedSource = row.sourceSize === null ? null : { size: row.sourceSize, etag: row.sourceEtag };
  if (listings?.destination) attachment.listedDestination = row.destinationSize === null ? null : { size: row.destinationSize, etag: row.destinationEtag };
  return attachment;
}
