-- The names of a run's counts in the order the run reported them ({ copied, skipped, failed }):
-- jsonb keeps an object's keys sorted by length, then bytes, so `counts` alone reads back as
-- { copied, failed, skipped }, and `etl runs` showed every job's counts in that order instead of
-- the job's. Null for rows recorded before this column: their counts are shown in jsonb's order.
alter table etl_job_runs add column count_order text[];
