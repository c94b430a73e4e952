import { closeSync, createReadStream, fstatSync, openSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSink } from "bun";
import type { ObjectStore } from "../../../core/storage/object_store";
import { csvField } from "../../data_pipeline/get_s3_files/copy_manifest";
import type { Discrepancy } from "./merge";

const REPORT_HEADER = ["status", "destination_key", "attachment_id", "expected_size", "actual_size"] as const;

// Keys of each kind named in the log event: enough to start looking, bounded for a log line.
const SAMPLE_KEYS = 20;

/**
 * The discrepancies of one check: the first SAMPLE_KEYS of each kind for the log, and, when a
 * report is asked for, every one of them in a CSV written to a temp file as they come (memory
 * stays flat for a million missing objects) and uploaded once complete.
 */
export class CompletenessReport {
  readonly samples: Record<Discrepancy["kind"], Discrepancy[]> = { missing: [], size_mismatch: [], unexpected: [] };
  private readonly file: { fd: number; sink: FileSink } | undefined;
  rows = 0;

  constructor(options: { csv: boolean }) {
    if (!options.csv) return;
    // Unlinked once open: only this process reaches it, and the kernel frees it when the process ends, SIGKILL included.
    const path = join(tmpdir(), `etl-completeness-${crypto.randomUUID()}.csv`);
    const fd = openSync(path, "w+", 0o600);
    unlinkSync(path);
    this.file = { fd, sink: Bun.file(fd).writer() };
    this.file.sink.write(REPORT_HEADER.join(",") + "\n");
  }

  add(d: Discrepancy): void {
    const sample = this.samples[d.kind];
    if (sample.length < SAMPLE_KEYS) sample.push(d);
    if (!this.file) return;
    const row = [d.kind, d.key, "attachmentId" in d ? d.attachmentId : "", "expectedSize" in d ? (d.expectedSize ?? "") : "", "actualSize" in d ? d.actualSize : ""];
    this.file.sink.write(row.map(csvField).join(",") + "\n");
    this.rows++;
  }

  async publish(store: ObjectStore, key: string): Promise<void> {
    const { fd, sink } = this.file!;
    await sink.flush();
    const { size } = fstatSync(fd);
    await store.write(key, createReadStream("", { fd, start: 0, autoClose: false }), { size, contentType: "text/csv" });
  }

  close(): void {
    if (this.file) closeSync(this.file.fd);
  }
}
