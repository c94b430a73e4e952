-- Items a job could not process, kept for replay and inspection. A later run that processes the
-- same item marks its open rows resolved.
create table etl_dead_letters (
  id bigint generated always as identity primary key,
  job text not null,
  run_id uuid not null,
  item_key text not null,
  error text not null,
  payload jsonb not null default '{}',
  created_at timestamptz not null default now(),
  resolved_at timestamptz
);

create index etl_dead_letters_open_idx on etl_dead_letters (job, item_key) where resolved_at is null;
