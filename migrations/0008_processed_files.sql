-- Inputs a job has processed (DESIGN.md "file_processing"): unzip_files and decrypt_files remember
-- each archive or message by its store, key and ETag, so a processed file is never processed twice
-- while a file replaced under the same key (a new ETag) is processed again.
create table etl_processed_files (
  job text not null,
  store_url text not null,
  key text not null,
  etag text not null,
  run_id uuid not null,
  output jsonb not null default '{}'::jsonb,
  processed_at timestamptz not null default now(),
  primary key (job, store_url, key, etag)
);

-- A quarantined file's dead letter is resolved as `released` when an operator puts the file back
-- for reprocessing (`etl quarantine release`); a run that fails it again opens a new one.
alter table etl_dead_letters drop constraint etl_dead_letters_resolution_check;
alter table etl_dead_letters add constraint etl_dead_letters_resolution_check
  check (resolution in ('processed', 'replayed', 'discarded', 'released'));
