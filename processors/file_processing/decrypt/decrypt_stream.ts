import type { Readable } from "node:stream";
import type { PartialConfig } from "openpgp";
import type { Keyring } from "./keys";
import { DecryptRefusal, refusalFor } from "./refusals";
import { pinnedSigner } from "./signatures";

/**
 * openpgp holds the whole plaintext by default until the MDC at its end has been checked (a
 * 500 MiB message peaked at 1.21 GiB); streamed, memory stays flat (152 MiB for openpgp alone,
 * 139 MiB for the job). The plaintext that flows before the check is unauthenticated, so it only
 * ever goes to the spool, and a failed check ends the stream with an error instead of its end.
 */
const CONFIG: PartialConfig = { allowUnauthenticatedStream: true };

/**
 * openpgp's stream plumbing costs per chunk: a 500 MiB message took 3.6 s in the 64 KiB chunks
 * a file stream gives, 2.3 s in 1 MiB ones (4 MiB: 2.9 s), for 30 MiB more RSS.
 */
const CHUNK_BYTES = 1024 * 1024;

export interface DecryptOptions {
  keyring: Keyring;
  /** A larger plaintext is refused (plaintext_too_large). */
  maxOutputBytes: number;
  /** openpgp silent this long, while not waiting for the source, is taken as stalled (see ProgressWatch). */
  stallMs: number;
}

export interface DecryptedMessage {
  /** Plaintext bytes written. */
  bytes: number;
  /** With a signature required: the pinned fingerprint whose signature verified. */
  signer?: string;
}

/**
 * Decrypts the message in `source` (an object of `size` bytes, binary or armored) into `write`,
 * returning once the integrity check (MDC or AEAD) and, when the keyring pins signers, a pinned
 * signature have passed. A message that breaks a rule throws DecryptRefusal; an error reading
 * the source or writing the plaintext is thrown as it is, never taken for the message's fault.
 */
export async function decryptMessage(
  source: Readable,
  size: number,
  write: (chunk: Uint8Array) => Promise<void>,
  options: DecryptOptions,
): Promise<DecryptedMessage> {
  const openpgp = await import("openpgp");
  const watch = new ProgressWatch(options.stallMs);
  const ciphertext = new Ciphertext(source, size, watch);
  const refusal = (error: unknown, streaming: boolean) => ciphertext.failure ?? refusalFor(error, streaming);
  try {
    const stream = await ciphertext.open();
    let message;
    try {
      message = await watch.watch(
        ciphertext.armored
          ? openpgp.readMessage({ armoredMessage: stream.pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>), config: CONFIG })
          : openpgp.readMessage({ binaryMessage: stream, config: CONFIG }),
      );
    } catch (error) {
      throw error instanceof DecryptRefusal ? error : refusal(error, false);
    }
    // Refused before a byte is decrypted: openpgp would refuse it too, but only after the session key.
    const tags = Array.from(message.packets, (packet) => (packet.constructor as unknown as { tag: number }).tag);
    if (tags.includes(openpgp.enums.packet.symmetricallyEncryptedData)) {
      throw new DecryptRefusal("no_integrity_protection", "a Symmetrically Encrypted Data packet (tag 9) has no modification detection code, so tampering could not be detected");
    }
    if (!tags.some((tag) => tag === openpgp.enums.packet.symEncryptedIntegrityProtectedData || tag === openpgp.enums.packet.aeadEncryptedData)) {
      throw new DecryptRefusal("not_encrypted", "the message holds no encrypted data packet");
    }
    const { signers } = options.keyring;
    let result;
    try {
      result = await watch.watch(openpgp.decrypt({ message, decryptionKeys: options.keyring.decryptionKeys, verificationKeys: signers?.keys, format: "binary", config: CONFIG }));
    } catch (error) {
      throw error instanceof DecryptRefusal ? error : refusal(error, false);
    }
    const reader = (result.data as ReadableStream<Uint8Array>).getReader();
    let bytes = 0;
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await watch.watch(reader.read());
        } catch (error) {
          throw error instanceof DecryptRefusal ? error : refusal(error, true);
        }
        if (chunk.done) break;
        bytes += chunk.value.length;
        if (bytes > options.maxOutputBytes) {
          throw new DecryptRefusal("plaintext_too_large", `the plaintext exceeds ${options.maxOutputBytes} bytes (--max-output-mib)`);
        }
        await write(chunk.value);
      }
    } catch (error) {
      // Not awaited: a stalled pipeline may never acknowledge it.
      reader.cancel().catch(() => undefined);
      throw error;
    }
    return { bytes, signer: signers && (await pinnedSigner(result.signatures, signers)) };
  } finally {
    ciphertext.close();
  }
}

/**
 * The ciphertext as the web stream openpgp reads, in CHUNK_BYTES chunks. It remembers an error
 * of the source itself (a reset connection, a body shorter than the object), so that such an
 * error is reported as I/O and retried, never taken for a truncated message and quarantined.
 */
class Ciphertext {
  /** Set when the source failed: reading the object, not the message, went wrong. */
  failure: Error | undefined;
  armored = false;
  private received = 0;
  private readonly chunks: AsyncIterator<Uint8Array>;

  constructor(
    private readonly source: Readable,
    private readonly size: number,
    private readonly watch: ProgressWatch,
  ) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  /** The stream; refuses an empty object, and one that is neither packets (bit 7 set) nor armor. */
  async open(): Promise<ReadableStream<Uint8Array>> {
    const first = await this.nextChunk();
    if (!first) throw new DecryptRefusal("malformed_message", "the object is empty");
    this.armored = (first[0]! & 0x80) === 0;
    // A view of the chunk's bytes: a source may yield plain Uint8Arrays, which have no toString("latin1").
    const head = Buffer.from(first.buffer, first.byteOffset, Math.min(64, first.length)).toString("latin1");
    if (this.armored && !/^\s*-----BEGIN PGP /.test(head)) {
      throw new DecryptRefusal("malformed_message", "neither binary OpenPGP packets nor ASCII armor");
    }
    let pending: Uint8Array | undefined = first;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = pending ?? (await this.nextChunk());
          pending = undefined;
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
        cancel: () => this.close(),
      },
      { highWaterMark: 0 },
    );
  }

  close(): void {
    this.source.destroy();
  }

  /** Up to CHUNK_BYTES from the source, or undefined at its end; throws (and remembers) a source failure. */
  private async nextChunk(): Promise<Uint8Array | undefined> {
    const parts: Uint8Array[] = [];
    let length = 0;
    while (length < CHUNK_BYTES) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.watch.waitingForSource(this.chunks.next());
      } catch (error) {
        throw (this.failure = error as Error);
      }
      if (next.done) {
        if (this.received < this.size) throw (this.failure = new Error(`the object's body ended after ${this.received} of ${this.size} bytes`));
        break;
      }
      parts.push(next.value);
      length += next.value.length;
      this.received += next.value.length;
    }
    if (length === 0) return undefined;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, length);
  }
}

/**
 * openpgp 6.3 can stop without a verdict: when corrupt compressed data fails to inflate inside a
 * streamed message, the packet reader waits forever to hand the rest of the packet to the
 * decompressor that gave up (a 13 KB tampered message, read in one chunk, hung every time; read
 * in 2 KB chunks, it failed with "inflate failed"). A healthy decryption is never silent for
 * long: every chunk in or out is progress, and a 1 MiB chunk takes milliseconds. So openpgp
 * silent for `stallMs` while it is not waiting for the source (whose own timeouts apply) is
 * taken as that failure: the integrity of such a message cannot be established.
 */
class ProgressWatch {
  private lastProgress = performance.now();
  private sourceReads = 0;

  constructor(private readonly stallMs: number) {}

  /** A read of the source: time spent in it is never openpgp's. */
  async waitingForSource<T>(read: Promise<T>): Promise<T> {
    this.sourceReads++;
    try {
      return await read;
    } finally {
      this.sourceReads--;
      this.lastProgress = performance.now();
    }
  }

  /** `work` (openpgp's), or a refusal once openpgp has made no progress for stallMs. */
  async watch<T>(work: Promise<T>): Promise<T> {
    this.lastProgress = performance.now();
    let timer: ReturnType<typeof setInterval> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        if (this.sourceReads > 0 || performance.now() - this.lastProgress < this.stallMs) return;
        const seconds = Math.round(this.stallMs / 1000);
        reject(new DecryptRefusal("integrity_check_failed", `openpgp made no progress for ${seconds} s without a verdict, as it does on corrupt compressed data: the message's integrity cannot be established`));
      }, Math.min(1000, this.stallMs / 4));
    });
    try {
      return await Promise.race([work, stalled]);
    } finally {
      clearInterval(timer);
    }
  }
}
