import type { DecryptMessageResult } from "openpgp";
import { errorMessage } from "../../../core/errors";
import type { PinnedSigners } from "./keys";
import { DecryptRefusal } from "./refusals";

/**
 * --require-signature: returns the fingerprint of the pinned key whose signature verifies, or
 * refuses the message. Call it once the plaintext has been read to its end: a one-pass
 * signature's packet comes after the data, and `verified` settles only then.
 */
export async function pinnedSigner(signatures: DecryptMessageResult["signatures"], signers: PinnedSigners): Promise<string> {
  if (signatures.length === 0) throw new DecryptRefusal("signature_required", "the message is not signed");
  const invalid: string[] = [];
  const unpinned: string[] = [];
  for (const signature of signatures) {
    const index = signers.keys.findIndex((key) => key.getKeys(signature.keyID).length > 0);
    if (index < 0) {
      unpinned.push(signature.keyID.toHex().toUpperCase());
      continue;
    }
    try {
      await signature.verified;
      return signers.fingerprints[index]!;
    } catch (error) {
      invalid.push(`${signers.fingerprints[index]}: ${errorMessage(error)}`);
    }
  }
  if (invalid.length) throw new DecryptRefusal("signature_invalid", `the signature does not verify (${invalid.join("; ")})`);
  throw new DecryptRefusal("signer_not_pinned", `signed by key ID ${unpinned.join(", ")}, which is not a pinned signer (${signers.fingerprints.join(", ")})`);
}
