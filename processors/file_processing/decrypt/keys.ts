/**
 * Key material for decrypt_files, from the environment or from files (a mounted Kubernetes
 * Secret). Values are never logged or put in an error: messages name the variable only.
 * ETL_PGP_PRIVATE_KEY and ETL_PGP_PASSPHRASE are scrubbed from logs by core/redact.ts (their
 * names match PRIVATE_KEY and PASSPHRASE); what is read from a *_FILE is not in the environment,
 * so nothing here ever passes it to a logger.
 */
import { readFile } from "node:fs/promises";
import type { PrivateKey, PublicKey } from "openpgp";
import { ConfigError, errorMessage } from "../../../core/errors";

export const PRIVATE_KEY_ENV = "ETL_PGP_PRIVATE_KEY";
export const PASSPHRASE_ENV = "ETL_PGP_PASSPHRASE";
export const SIGNER_KEYS_ENV = "ETL_PGP_SIGNER_KEYS";

/** The signers a message must be signed by: their certificates, and the pinned fingerprints. */
export interface PinnedSigners {
  keys: PublicKey[];
  fingerprints: string[];
}

export interface Keyring {
  /** Every key we decrypt with (several during a rotation), unlocked. */
  decryptionKeys: PrivateKey[];
  /** With --require-signature only. */
  signers?: PinnedSigners;
}

type Env = Record<string, string | undefined>;

/**
 * Reads and unlocks the private keys, and with `pinnedFingerprints` the signers' public keys.
 * Anything missing or unusable is a ConfigError (exit 2) naming the variable.
 */
export async function loadKeyring(env: Env, pinnedFingerprints?: readonly string[]): Promise<Keyring> {
  const openpgp = await import("openpgp");
  const text = armored(await secretValue(env, PRIVATE_KEY_ENV, "an armored OpenPGP private key"));
  let keys: PrivateKey[];
  try {
    keys = (await Promise.all(armoredBlocks(text).map((armoredKeys) => openpgp.readPrivateKeys({ armoredKeys })))).flat();
  } catch (error) {
    throw new ConfigError(`${PRIVATE_KEY_ENV} does not hold an armored OpenPGP private key (${errorMessage(error)})`);
  }
  const decryptionKeys = await Promise.all(keys.map((key) => unlock(env, key)));
  if (!pinnedFingerprints) return { decryptionKeys };
  return { decryptionKeys, signers: await loadSigners(env, pinnedFingerprints) };
}

async function unlock(env: Env, key: PrivateKey): Promise<PrivateKey> {
  if (key.isDecrypted()) return key;
  const fingerprint = key.getFingerprint().toUpperCase();
  const passphrase = await optionalSecretValue(env, PASSPHRASE_ENV);
  if (passphrase === undefined) throw new ConfigError(`${PRIVATE_KEY_ENV} holds the passphrase-protected key ${fingerprint}: set ${PASSPHRASE_ENV} or ${PASSPHRASE_ENV}_FILE`);
  const openpgp = await import("openpgp");
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (error) {
    throw new ConfigError(`${PASSPHRASE_ENV} does not unlock the key ${fingerprint} in ${PRIVATE_KEY_ENV} (${errorMessage(error)})`);
  }
}

async function loadSigners(env: Env, pinnedFingerprints: readonly string[]): Promise<PinnedSigners> {
  const openpgp = await import("openpgp");
  const text = armored(await secretValue(env, SIGNER_KEYS_ENV, "the armored public keys of the partners whose signatures are accepted"));
  let certificates: PublicKey[];
  try {
    certificates = (await Promise.all(armoredBlocks(text).map((armoredKeys) => openpgp.readKeys({ armoredKeys })))).flat().map((key) => key.toPublic());
  } catch (error) {
    throw new ConfigError(`${SIGNER_KEYS_ENV} does not hold armored OpenPGP public keys (${errorMessage(error)})`);
  }
  const fingerprints = pinnedFingerprints.map((f) => f.toUpperCase());
  const known = new Map(certificates.map((key) => [key.getFingerprint().toUpperCase(), key]));
  const missing = fingerprints.filter((f) => !known.has(f));
  if (missing.length) {
    throw new ConfigError(
      `--signer-fingerprint ${missing.join(", ")}: no such primary key in ${SIGNER_KEYS_ENV} (it holds ${[...known.keys()].join(", ") || "none"})`,
    );
  }
  return { keys: fingerprints.map((f) => known.get(f)!), fingerprints };
}

/** `<name>` or the file `<name>_FILE` names: exactly one of them must be set. */
async function secretValue(env: Env, name: string, what: string): Promise<string> {
  const value = await optionalSecretValue(env, name);
  if (value === undefined) throw new ConfigError(`set ${name} (${what}) or ${name}_FILE (the path of a file holding it, e.g. a mounted Kubernetes Secret)`);
  return value;
}

async function optionalSecretValue(env: Env, name: string): Promise<string | undefined> {
  const inline = env[name];
  const path = env[`${name}_FILE`]?.trim();
  if (inline && path) throw new ConfigError(`set only one of ${name} and ${name}_FILE`);
  if (path) {
    try {
      // A Secret created from a file usually ends with a newline that is no part of the value.
      return (await readFile(path, "utf8")).replace(/\r?\n$/, "");
    } catch (error) {
      throw new ConfigError(`${name}_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)})`);
    }
  }
  return inline || undefined;
}

/**
 * The armored blocks in `text`: openpgp reads the first block only, and a Secret holding the
 * keys of a rotation (or several partners' keys) is usually their blocks one after another.
 */
function armoredBlocks(text: string): string[] {
  const blocks = text.match(/-----BEGIN PGP ([A-Z ]+)-----[^]*?-----END PGP \1-----/g);
  return blocks ?? [text];
}

/** An armored block pasted into a one-line variable arrives with literal "\n"s. */
function armored(value: string): string {
  return value.includes("\n") || !value.includes("\\n") ? value : value.replaceAll("\\n", "\n");
}
