import { closeSync, createReadStream, openSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { FileSink } from "bun";
import { streamed } from "../../../core/storage/gc_pacer";

/**
 * A local temp file holding one message's plaintext while it is decrypted and checked. The
 * plaintext's size is known only at its end, and an S3 upload must announce it
 * (core/storage/s3_upload.ts), so nothing goes to the store before the integrity check and the
 * signature have passed: then the whole file is written to the final key at once.
 *
 * The file is unlinked as soon as it is open (as the copy manifest's): only this process can
 * reach the plaintext, and the kernel frees it when the process ends, SIGKILL included.
 */
export class PlaintextSpool {
  private readonly sink: FileSink;
  private closed = false;
  bytes = 0;

  private constructor(private readonly fd: number) {
    this.sink = Bun.file(fd).writer({ highWaterMark: 1024 * 1024 });
  }

  static open(): PlaintextSpool {
    const path = join(tmpdir(), `etl-decrypt-${crypto.randomUUID()}`);
    const fd = openSync(path, "w+", 0o600);
    unlinkSync(path);
    return new PlaintextSpool(fd);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.bytes += chunk.length;
    // openpgp makes fresh buffers for every chunk: with the pacer collecting them, as the stores'
    // copies do, a 500 MiB message peaked at 135-150 MiB, without it at 170-196 MiB, in the same time.
    streamed(chunk.length);
    await this.sink.write(chunk);
  }

  /** Flushes what was written; the plaintext is then readable with `reader`. */
  async finish(): Promise<void> {
    await this.sink.flush();
  }

  /** The plaintext from its first byte: each call is a new reader, so an upload can be retried. */
  reader(): Readable {
    return createReadStream("", { fd: this.fd, start: 0, autoClose: false, highWaterMark: 1024 * 1024 });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
