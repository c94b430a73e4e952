-- How far an incremental pull has come (ingest_api): the greatest cursor value among the records
-- it has landed in bronze, committed only after those records landed. Compare-and-set on
-- `value`, so a slow run cannot move the watermark back over a newer run's.
create table etl_watermarks (
  name text primary key,
  value text not null,
  run_id uuid not null,
  updated_at timestamptz not null default now()
);
