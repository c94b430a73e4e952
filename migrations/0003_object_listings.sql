-- Scratch space of a run: the objects it listed at its source and destination, so the database
-- joins them to the rows the run works through, in the rows' order, with the process's memory flat
-- however many objects there are. Unlogged: nothing here needs to survive a crash. A run deletes
-- its rows at its end; rows of runs that hold no lease any more are removed by the next run.
create unlogged table etl_object_listings (
  run_id uuid not null,
  side char(1) not null check (side in ('s', 'd')),
  key text not null,
  size bigint not null,
  etag text,
  primary key (run_id, side, key)
);
