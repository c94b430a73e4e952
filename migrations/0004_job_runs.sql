-- The run ledger (DESIGN.md "The run ledger"): one row per run of any job, written at start and
-- finished exactly once. heartbeat_at moves while the run lives; a row left running with a stale
-- heartbeat belonged to a killed run and is marked lost by the next run of its job.
create table etl_job_runs (
  run_id uuid primary key,
  job text not null,
  lane text not null,
  status text not null check (status in ('running', 'succeeded', 'partial', 'failed', 'interrupted', 'skipped', 'lost')),
  exit_code integer,
  logical_date timestamptz,
  shard text,
  args jsonb not null default '{}',
  -- sha256 of the canonical args: with job, logical_date and shard, the key of an idempotent run.
  args_hash text not null,
  forced boolean not null default false,
  dry_run boolean not null default false,
  counts jsonb not null default '{}',
  metrics jsonb not null default '{}',
  error text,
  -- Why a run was skipped, or how a lost run was found.
  reason text,
  host text not null,
  version text not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  finished_at timestamptz
);

create index etl_job_runs_job_started_idx on etl_job_runs (job, started_at desc);
create index etl_job_runs_started_idx on etl_job_runs (started_at desc);
create index etl_job_runs_running_idx on etl_job_runs (job, heartbeat_at) where status = 'running';
-- At most one working run per key: the database, not a read-then-write, decides between two
-- runs started at once (the second one's insert waits for the first's transaction and fails).
create unique index etl_job_runs_one_working_idx on etl_job_runs (job, logical_date, coalesce(shard, ''), args_hash)
  where status = 'running' and logical_date is not null and not dry_run;
create index etl_job_runs_succeeded_key_idx on etl_job_runs (job, logical_date, coalesce(shard, ''), args_hash)
  where status = 'succeeded' and logical_date is not null;
