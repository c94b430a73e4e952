import type { Sql } from "../core/db/db";

export interface ProcessedFile {
  key: string;
  etag: string;
}

/** etl_processed_files (migrations/0008): the inputs one job has processed in one store, by key and ETag. */
export class ProcessedFileRepository {
  constructor(
    private readonly sql: Sql,
    private readonly job: string,
    private readonly storeUrl: string,
  ) {}

  /** The keys among `files` whose (key, ETag) this job already processed in this store. */
  async processed(files: readonly ProcessedFile[]): Promise<Set<string>> {
    if (files.length === 0) return new Set();
    const rows = await this.sql<{ key: string }[]>`
      select p.key from etl_processed_files p
      join unnest(${files.map((f) => f.key)}::text[], ${files.map((f) => f.etag)}::text[]) as t (key, etag)
        on p.key = t.key and p.etag = t.etag
      where p.job = ${this.job} and p.store_url = ${this.storeUrl}`;
    return new Set(rows.map((row) => row.key));
  }

  /** Records that `runId` processed (key, ETag); `output` is a small summary (manifest key, entries). */
  async markProcessed(file: ProcessedFile & { runId: string; output: Record<string, unknown> }): Promise<void> {
    await this.sql`
      insert into etl_processed_files (job, store_url, key, etag, run_id, output)
      values (${this.job}, ${this.storeUrl}, ${file.key}, ${file.etag}, ${file.runId}::uuid, ${this.sql.json(file.output as never)})
      on conflict (job, store_url, key, etag) do update
      set run_id = excluded.run_id, output = excluded.output, processed_at = now()`;
  }
}
