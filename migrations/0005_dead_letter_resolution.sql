-- Dead letters with their history (DESIGN.md "Dead letters"): one open row per (job, item) whose
-- attempts and first/last failure grow with every run that fails it, and how it was resolved:
-- processed by a later run, replayed by `etl dlq replay`, or discarded with a reason.
alter table etl_dead_letters
  add column attempts integer not null default 1,
  add column first_failed_at timestamptz,
  add column last_failed_at timestamptz,
  add column last_run_id uuid,
  add column resolution text check (resolution in ('processed', 'replayed', 'discarded')),
  add column resolved_by_run_id uuid,
  add column resolution_reason text;

update etl_dead_letters
set first_failed_at = created_at, last_failed_at = created_at, last_run_id = run_id,
    resolution = case when resolved_at is not null then 'processed' end;

alter table etl_dead_letters
  alter column first_failed_at set not null,
  alter column first_failed_at set default now(),
  alter column last_failed_at set not null,
  alter column last_failed_at set default now(),
  alter column last_run_id set not null;

-- Merge the open rows an item already has (earlier versions added one per failing run).
with ranked as (
  select id, job, item_key,
         first_value(id) over w as keep_id,
         count(*) over (partition by job, item_key) as n,
         min(created_at) over (partition by job, item_key) as first_at
  from etl_dead_letters
  where resolved_at is null
  window w as (partition by job, item_key order by created_at desc, id desc)
)
update etl_dead_letters d
set attempts = r.n, first_failed_at = r.first_at
from ranked r
where d.id = r.id and r.id = r.keep_id;

delete from etl_dead_letters d
using (
  select id, first_value(id) over (partition by job, item_key order by created_at desc, id desc) as keep_id
  from etl_dead_letters where resolved_at is null
) r
where d.id = r.id and r.id <> r.keep_id;

drop index etl_dead_letters_open_idx;
create unique index etl_dead_letters_open_idx on etl_dead_letters (job, item_key) where resolved_at is null;
create index etl_dead_letters_last_failed_idx on etl_dead_letters (last_failed_at desc);
