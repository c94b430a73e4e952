-- Exclusive work held by one run at a time (e.g. one agency to one destination). A lease lives in
-- a row, not in a connection, so a dropped connection does not hand the work to a second run: the
-- holder renews it while it works and stops when it cannot, and a lease nobody renews expires.
create table etl_leases (
  name text primary key,
  run_id uuid not null,
  job text not null,
  host text not null,
  acquired_at timestamptz not null,
  renewed_at timestamptz not null,
  renewals bigint not null default 0,
  expires_at timestamptz not null
);
