import { closeSync, createReadStream, fstatSync, openSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSink } from "bun";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { CopyOutcome } from "./attachment_copier";

export const MANIFEST_HEADER = ["attachment_id", "file_name", "source_key", "destination_key", "size_bytes", "etag", "status"] as const;

/**
 * The run's manifest CSV, one row per attachment in id order. Rows go to a local temp file as
 * they come, so memory stays flat however many attachments an agency has; `publish` uploads the
 * finished file once, so the destination never holds half a manifest.
 */
export class CopyManifest {
  private readonly sink: FileSink;
  private closed = false;
  rows = 0;

  private constructor(private readonly fd: number) {
    this.sink = Bun.file(fd).writer();
    this.sink.write(MANIFEST_HEADER.join(",") + "\n");
  }

  /**
   * The temp file is unlinked as soon as it is open: only this process can reach it, and the
   * kernel frees it when the process ends, SIGKILL included (a named temp file was left in /tmp
   * by every killed run).
   */
  static create(): CopyManifest {
    const path = join(tmpdir(), `etl-manifest-${crypto.randomUUID()}.csv`);
    const fd = openSync(path, "w+", 0o600);
    unlinkSync(path);
    return new CopyManifest(fd);
  }

  addRow(o: CopyOutcome): void {
    const row = [o.attachment.id, o.attachment.fileName, o.sourceKey, o.destinationKey, o.sizeBytes ?? "", o.etag ?? "", o.status];
    this.sink.write(row.map(csvField).join(",") + "\n");
    this.rows++;
  }

  async publish(store: ObjectStore, key: string): Promise<void> {
    await this.sink.flush();
    const { size } = fstatSync(this.fd);
    await store.write(key, createReadStream("", { fd: this.fd, start: 0, autoClose: false }), { size, contentType: "text/csv" });
  }

  discard(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** RFC 4180: quote a field holding a comma, quote, CR or LF, doubling inner quotes. */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
