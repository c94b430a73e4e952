import type { Sql } from "../core/db/db";

export interface Watermark {
  value: string;
  runId: string;
  updatedAt: Date;
}

/** etl_watermarks (migrations/0006): named high-water marks of incremental pulls. */
export class WatermarkRepository {
  constructor(private readonly sql: Sql) {}

  async readWatermark(name: string): Promise<Watermark | undefined> {
    const [row] = await this.sql<Watermark[]>`
      select value, run_id::text as "runId", updated_at as "updatedAt" from etl_watermarks where name = ${name}`;
    return row;
  }

  /**
   * Moves the watermark forward to `value` (compared as timestamps), never back: a run that
   * started earlier and lands later cannot undo a newer run's progress. Returns the value kept.
   */
  async advanceWatermark(name: string, value: string, runId: string): Promise<string> {
    const [row] = await this.sql<{ value: string }[]>`
      insert into etl_watermarks as w (name, value, run_id) values (${name}, ${value}, ${runId}::uuid)
      on conflict (name) do update
        set value = excluded.value, run_id = excluded.run_id, updated_at = now()
        where w.value::timestamptz < excluded.value::timestamptz
      returning value`;
    return row?.value ?? (await this.readWatermark(name))!.value;
  }
}
