/**
 * The rules a message can break. A refused message is quarantined under its rule
 * (processors/file_processing/quarantine/quarantine.ts) and nothing of its plaintext is published. Errors that are not the
 * message's fault (S3 or disk I/O) are never refusals: they fail the item and it is tried again.
 */
import { EtlError } from "../../../core/errors";

export type DecryptRule =
  /** Not an OpenPGP message at all: empty, garbage, a key or a detached signature. */
  | "malformed_message"
  /** An OpenPGP message without an encrypted data packet (signed or literal data only). */
  | "not_encrypted"
  /** None of our keys opens a session key: encrypted to someone else, or a key we lack. */
  | "decryption_failed"
  /** A Symmetrically Encrypted Data packet (tag 9): no MDC, so tampering cannot be detected. */
  | "no_integrity_protection"
  /** The MDC (SHA-1) or AEAD tag did not match, or the decrypted data is corrupt. */
  | "integrity_check_failed"
  /** The message ends before its packets do. */
  | "truncated"
  /** Decompresses (or decrypts) to more than --max-output-mib. */
  | "plaintext_too_large"
  /** --require-signature: the message carries no signature. */
  | "signature_required"
  /** --require-signature: a signature by a pinned key that does not verify. */
  | "signature_invalid"
  /** --require-signature: signed, but by no key pinned with --signer-fingerprint. */
  | "signer_not_pinned";

/** Why a message was refused; the job quarantines the input with `rule` and `detail`. */
export class DecryptRefusal extends EtlError {
  constructor(
    readonly rule: DecryptRule,
    readonly detail: string,
  ) {
    super("failed", `${rule}: ${detail}`);
    this.name = "DecryptRefusal";
  }
}

/** openpgp 6.3's messages, by what they mean (packet reader, armor, SEIPD, message grammar). */
const END_OF_DATA = /Unexpected end of packet|Misformed armored text/i;
const NOT_A_MESSAGE = /Error during parsing|not of type message|Unknown ASCII armor type|not allowed in this context/i;
// SEIPDv1's MDC; SEIPDv2's AEAD tag (openpgp's OCB and EAX: "tag mismatch"; GCM, in node:crypto: "unable to authenticate").
const INTEGRITY = /Modification detected|Authentication tag mismatch|unable to authenticate data/i;

/**
 * Names the rule an openpgp error breaks. `streaming` says the plaintext had started to flow:
 * from then on the ciphertext's integrity is in question (an MDC mismatch, or corrupt
 * compressed data, which openpgp reports before the MDC it checks at the end).
 */
export function refusalFor(error: unknown, streaming: boolean): DecryptRefusal {
  const message = (error instanceof Error ? error.message : String(error)).replace(/^Error decrypting message: /, "");
  if (END_OF_DATA.test(message)) return new DecryptRefusal("truncated", `the message ends before its last packet does (${message})`);
  if (INTEGRITY.test(message)) {
    return new DecryptRefusal("integrity_check_failed", `the integrity check failed: the ciphertext was modified or damaged (${message})`);
  }
  if (streaming) return new DecryptRefusal("integrity_check_failed", `the decrypted data is corrupt: the ciphertext was modified or damaged (${message})`);
  if (NOT_A_MESSAGE.test(message)) return new DecryptRefusal("malformed_message", `not an OpenPGP message (${message})`);
  return new DecryptRefusal("decryption_failed", `none of the configured private keys decrypts it (${message})`);
}
