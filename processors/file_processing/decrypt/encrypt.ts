import { Readable } from "node:stream";

/**
 * Encrypts `plaintext` to the holder of `armoredPublicKey`, as a partner would: binary OpenPGP,
 * streamed, optionally signed (one-pass) with `signingKey` (an armored, unlocked private key).
 * openpgp picks the packet version from the recipient's key: a GnuPG 2.2 key announces no
 * SEIPDv2, so this is SEIPDv1 with an MDC, which gpg decrypts (tests/jobs/decrypt_files.test.ts).
 * The demo uses it to drop `inbox/*.zip.pgp`.
 */
export async function encryptForRecipient(
  plaintext: Readable | ReadableStream<Uint8Array>,
  armoredPublicKey: string,
  options: { signingKey?: string } = {},
): Promise<Readable> {
  const openpgp = await import("openpgp");
  const binary = plaintext instanceof Readable ? (Readable.toWeb(plaintext) as ReadableStream<Uint8Array>) : plaintext;
  const [message, encryptionKeys, signingKeys] = await Promise.all([
    openpgp.createMessage({ binary }),
    openpgp.readKey({ armoredKey: armoredPublicKey }),
    options.signingKey ? openpgp.readPrivateKey({ armoredKey: options.signingKey }) : undefined,
  ]);
  const encrypted = await openpgp.encrypt({ message, encryptionKeys, signingKeys, format: "binary" });
  return Readable.fromWeb(encrypted as ReadableStream<Uint8Array>);
}
