-- The committed state of each silver partition (DESIGN.md "data_pipeline"): which bronze inputs it
-- was built from (their fingerprint), its row counts and the run that built it. A rerun over the
-- same inputs does nothing; a changed input rebuilds that partition only.
create table etl_partitions (
  dataset text not null,
  partition_date date not null,
  fingerprint text not null,
  inputs jsonb not null,
  rows_in bigint not null,
  rows_out bigint not null,
  rows_rejected bigint not null,
  run_id uuid not null,
  manifest_key text not null,
  committed_at timestamptz not null default now(),
  primary key (dataset, partition_date)
);
