/**
 * The real GnuPG (Debian's /usr/bin/gpg, 2.2) in a throwaway home directory: keys as partners
 * make them, messages as partners send them, and gpg's verdict on what we encrypt. Keys have no
 * passphrase unless asked, so nothing waits for a pinentry.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const GPG = "/usr/bin/gpg";

export interface GpgKey {
  uid: string;
  /** The primary key's fingerprint, upper-case hex, as --signer-fingerprint takes it. */
  fingerprint: string;
  publicKey: string;
  secretKey: string;
}

export interface EncryptOptions {
  /** Fingerprint of the recipient. */
  recipient: string;
  /** Fingerprint of the signer: signed and encrypted in one message (one-pass signature). */
  signer?: string;
  /** gpg's default is zlib for data that does not look compressed already. */
  compress?: "zlib" | "zip" | "none";
  armor?: boolean;
  /** --rfc2440: a Symmetrically Encrypted Data packet (tag 9) without MDC, which gpg 2.2 still writes. */
  withoutMdc?: boolean;
}

export interface GpgResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: string;
}

export class GnuPG {
  private constructor(readonly home: string) {}

  static create(): GnuPG {
    const home = mkdtempSync(join(tmpdir(), "etl-gnupg-"));
    // The agent protects an exported secret key with 65M S2K iterations by default: 2.7 s to
    // export a protected key (0.14 s with this), and 0.28 s for openpgp to unlock it in each run.
    writeFileSync(join(home, "gpg-agent.conf"), "s2k-count 65536\n");
    return new GnuPG(home);
  }

  /** Runs gpg in this home with `input` on stdin; throws when it fails, unless `allowFailure`. */
  async run(args: string[], input?: Uint8Array, allowFailure = false): Promise<GpgResult> {
    const child = Bun.spawn([GPG, "--homedir", this.home, "--batch", "--no-tty", "--pinentry-mode", "loopback", ...args], {
      stdin: input ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).bytes(), new Response(child.stderr).text(), child.exited]);
    if (exitCode !== 0 && !allowFailure) throw new Error(`gpg ${args.join(" ")} exited with ${exitCode}: ${stderr}`);
    return { exitCode, stdout, stderr };
  }

  /**
   * A new key: `ed25519` is GnuPG 2.2's "future-default" (EdDSA primary, cv25519 encryption
   * subkey); `rsa` is an RSA 2048 primary for signing with an RSA 2048 encryption subkey.
   */
  async generateKey(uid: string, options: { type?: "ed25519" | "rsa"; passphrase?: string } = {}): Promise<GpgKey> {
    const passphrase = ["--passphrase", options.passphrase ?? ""];
    if (options.type === "rsa") {
      await this.run([...passphrase, "--quick-gen-key", uid, "rsa2048", "sign,cert", "never"]);
    } else {
      await this.run([...passphrase, "--quick-gen-key", uid, "future-default", "default", "never"]);
    }
    const listing = new TextDecoder().decode((await this.run(["--with-colons", "--list-keys", `=${uid}`])).stdout);
    const fingerprint = /^fpr:+([0-9A-F]+):/m.exec(listing)![1]!;
    if (options.type === "rsa") await this.run([...passphrase, "--quick-add-key", fingerprint, "rsa2048", "encr", "never"]);
    const text = async (args: string[]) => new TextDecoder().decode((await this.run(args)).stdout);
    return {
      uid,
      fingerprint,
      publicKey: await text(["--armor", "--export", fingerprint]),
      secretKey: await text([...passphrase, "--armor", "--export-secret-keys", fingerprint]),
    };
  }

  async encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Uint8Array> {
    const args = ["--trust-model", "always", "--recipient", options.recipient];
    if (options.signer) args.push("--local-user", options.signer, "--sign");
    if (options.compress) args.push("--compress-algo", options.compress);
    if (options.armor) args.push("--armor");
    // gpg 2.2 refuses --disable-mdc with a 16-byte block cipher, but still writes an RFC 2440 message.
    if (options.withoutMdc) args.push("--rfc2440", "--cipher-algo", "AES256");
    return (await this.run([...args, "--encrypt"], plaintext)).stdout;
  }

  /** gpg --decrypt, as a partner or the benchmark runs it; a failure is returned, not thrown. */
  decrypt(ciphertext: Uint8Array): Promise<GpgResult> {
    return this.run(["--decrypt"], ciphertext, true);
  }

  /** Stops the home's gpg-agent and removes the home. */
  async close(): Promise<void> {
    await Bun.spawn(["gpgconf", "--homedir", this.home, "--kill", "all"], { stdout: "ignore", stderr: "ignore" }).exited;
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** `bytes` with the byte at `offset` (negative: from the end) flipped. */
export function flipByte(bytes: Uint8Array, offset: number): Uint8Array {
  const copy = bytes.slice();
  const at = offset < 0 ? copy.length + offset : offset;
  copy[at]! ^= 0x01;
  return copy;
}

/**
 * A message whose signature is by `signer` but does not verify: the signed literal data is
 * replaced by other bytes after signing, and the packets (one-pass signature, literal data,
 * signature) are encrypted to `recipientPublicKey` as they are. The MDC is valid, so only the
 * signature check can refuse it; gpg reports "BAD signature".
 */
export async function badlySignedMessage(plaintext: Uint8Array, signer: GpgKey, recipientPublicKey: string): Promise<Uint8Array> {
  const openpgp = await import("openpgp");
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: signer.secretKey });
  const signed = await openpgp.sign({ message: await openpgp.createMessage({ binary: plaintext }), signingKeys, format: "object" });
  const [forged] = (await openpgp.createMessage({ binary: flipByte(plaintext, 0) })).packets;
  const at = signed.packets.findIndex((packet) => packet instanceof openpgp.LiteralDataPacket);
  signed.packets[at] = forged!;
  const encryptionKeys = await openpgp.readKey({ armoredKey: recipientPublicKey });
  return openpgp.encrypt({ message: signed, encryptionKeys, format: "binary" });
}
