import type { Sql } from "../core/db/db";

export interface CommittedPartition {
  dataset: string;
  /** YYYY-MM-DD */
  partitionDate: string;
  fingerprint: string;
  inputs: Array<{ key: string; size: number; etag: string }>;
  rowsIn: number;
  rowsOut: number;
  rowsRejected: number;
  runId: string;
  manifestKey: string;
  committedAt?: Date;
}

/** etl_partitions (migrations/0007): the committed state of each silver partition. */
export class PartitionRepository {
  constructor(private readonly sql: Sql) {}

  async findPartition(dataset: string, partitionDate: string): Promise<CommittedPartition | undefined> {
    const [row] = await this.sql<CommittedPartition[]>`
      select dataset, to_char(partition_date, 'YYYY-MM-DD') as "partitionDate", fingerprint, inputs,
             rows_in::float8 as "rowsIn", rows_out::float8 as "rowsOut", rows_rejected::float8 as "rowsRejected",
             run_id::text as "runId", manifest_key as "manifestKey", committed_at as "committedAt"
      from etl_partitions where dataset = ${dataset} and partition_date = ${partitionDate}::date`;
    return row;
  }

  /** Records the partition as committed by this run (after its manifest was written). */
  async commitPartition(p: CommittedPartition): Promise<void> {
    await this.sql`
      insert into etl_partitions (dataset, partition_date, fingerprint, inputs, rows_in, rows_out, rows_rejected, run_id, manifest_key)
      values (${p.dataset}, ${p.partitionDate}::date, ${p.fingerprint}, ${this.sql.json(p.inputs as never)}, ${p.rowsIn}, ${p.rowsOut},
              ${p.rowsRejected}, ${p.runId}::uuid, ${p.manifestKey})
      on conflict (dataset, partition_date) do update
      set fingerprint = excluded.fingerprint, inputs = excluded.inputs, rows_in = excluded.rows_in, rows_out = excluded.rows_out,
          rows_rejected = excluded.rows_rejected, run_id = excluded.run_id, manifest_key = excluded.manifest_key, committed_at = now()`;
  }
}
