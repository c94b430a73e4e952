/**
 * Object keys that are safe on every store. S3 takes any byte string as a key, but a `file:`
 * store turns keys into paths, where `..`, a leading `/` or a backslash walk out of the prefix
 * (`../agency_id=11/x` landed in another agency's folder before this check). A key is refused on
 * every pairing of stores, so a run behaves the same whatever the destination is.
 */
import { EtlError } from "../errors";

/** A key no store may use; the item fails with this message and nothing is read or written. */
export class UnsafeKeyError extends EtlError {
  constructor(readonly key: string, reason: string) {
    super("failed", `unsafe key ${JSON.stringify(key)}: ${reason}`);
    this.name = "UnsafeKeyError";
  }
}

/** What is wrong with `key` as a relative object key ("has a \"..\" segment"), or undefined. */
export function unsafeKeyReason(key: string): string | undefined {
  if (key === "") return "is empty";
  if (key.includes("\0")) return "contains a NUL byte";
  if (key.includes("\\")) return "contains a backslash";
  if (key.startsWith("/")) return "is absolute (starts with /)";
  if (/^[A-Za-z]:/.test(key)) return "starts with a drive letter";
  const segments = key.split("/");
  if (segments.includes("..")) return 'has a ".." segment';
  if (segments.includes(".")) return 'has a "." segment';
  // "a//b" and "dir/" are distinct S3 keys but collapse to another path, or to a directory, on disk.
  if (segments.includes("")) return "has an empty segment (// or a trailing /)";
  return undefined;
}

/**
 * What is wrong with `prefix` as a prefix of destination keys, or undefined. A prefix is empty
 * (the bucket's root) or safe relative segments ending in "/", so prefix + safe key stays in it.
 */
export function unsafePrefixReason(prefix: string): string | undefined {
  if (prefix === "") return undefined;
  return unsafeKeyReason(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix) ?? (prefix.endsWith("/") ? undefined : 'must end with "/"');
}
