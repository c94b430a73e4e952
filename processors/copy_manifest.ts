import { createReadStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSink } from "bun";
import type { ObjectStore } from "../core/object_store";
import type { CopyOutcome } from "./attachment_copier";

export const MANIFEST_HEADER = ["attachment_id", "file_name", "source_key", "destination_key", "size_bytes", "etag", "status"] as const;

/**
 * The run's manifest CSV, one row per attachment in id order. Rows go to a local temp file as
 * they come, so memory stays flat however many attachments an agency has; `publish` uploads the
 * finished file once, so the destination never holds half a manifest.
 */
export class CopyManifest {
  private readonly sink: FileSink;
  rows = 0;

  private constructor(private readonly tempPath: string) {
    this.sink = Bun.file(tempPath).writer();
    this.sink.write(MANIFEST_HEADER.join(",") + "\n");
  }

  static create(): CopyManifest {
    return new CopyManifest(join(tmpdir(), `etl-manifest-${process.pid}-${crypto.randomUUID()}.csv`));
  }

  addRows(outcomes: readonly CopyOutcome[]): void {
    for (const o of outcomes) {
      const row = [o.attachment.id, o.attachment.fileName, o.sourceKey, o.destinationKey, o.sizeBytes ?? "", o.etag ?? "", o.status];
      this.sink.write(row.map(csvField).join(",") + "\n");
      this.rows++;
    }
  }

  async publish(store: ObjectStore, key: string): Promise<void> {
    await this.sink.end();
    const { size } = await stat(this.tempPath);
    await store.write(key, createReadStream(this.tempPath), { size, contentType: "text/csv" });
    await this.discard();
  }

  async discard(): Promise<void> {
    await Promise.resolve(this.sink.end()).catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }
}

/** RFC 4180: quote a field holding a comma, quote, CR or LF, doubling inner quotes. */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
