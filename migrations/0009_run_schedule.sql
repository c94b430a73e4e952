-- The schedule a run belongs to (DESIGN.md "The job contract": a job may have several, each named):
-- the one whose fixed arguments the run has, recorded by the runner, so schedule_audit tells the
-- slots of bronze_to_silver's service_requests schedule from those of its partner_payments one.
-- Null for a run that matches no schedule (by hand, with other arguments); rows recorded before
-- this column are read as their job's default schedule.
alter table etl_job_runs add column schedule text;
create index etl_job_runs_schedule_slot_idx on etl_job_runs (job, schedule, logical_date);
