/**
 * The limits an extraction is held to. Every one is enforced on the bytes and entries actually
 * read while streaming (extract.ts); the sizes an archive declares are only used to refuse it
 * early, never trusted to stay under a limit.
 */
import * as v from "valibot";
import type { ArgSpec } from "../../../core/runtime/args";

export interface ExtractionLimits {
  /** Entries in the archive, nested archives' entries included. */
  maxEntries: number;
  /** Bytes inflated from the archive, nested archives' own bytes included. */
  maxTotalBytes: number;
  /** Bytes inflated from one entry. */
  maxEntryBytes: number;
  /** Inflated bytes per compressed byte of one entry, once it is past RATIO_GRACE_BYTES. */
  maxRatio: number;
  /** Levels of nested `.zip` entries extracted; one deeper is refused. */
  maxDepth: number;
}

/**
 * Entries that inflate to less than this are not held to the ratio: a small file of blanks
 * compresses far better than 100:1 and is harmless. Apache POI's GRACE_ENTRY_SIZE (100 KiB), the
 * floor its MIN_INFLATE_RATIO (0.01, i.e. 100:1) starts at.
 */
export const RATIO_GRACE_BYTES = 100 * 1024;

// SI units are powers of ten (as DuckDB and S3's console read them); IEC units powers of two.
const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** Bytes in a size such as `10GB`, `512MiB` or `1000` (bytes), or undefined when it is not one. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  const unit = UNITS[(match?.[2] || "B").toUpperCase()];
  if (!match || unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A flag taking a size (`--max-total-bytes 20GB`), validated where `--help` reads it. */
export function byteSizeArg(help: string, defaultSize: string): ArgSpec<number> {
  return {
    help,
    kind: "value",
    placeholder: "<size>",
    default: defaultSize,
    schema: v.pipe(
      v.string("is required"),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const bytes = parseByteSize(dataset.value);
        if (bytes === undefined || bytes < 1) {
          addIssue({ message: "must be a size such as 500MB, 10GB or 2GiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)" });
          return NEVER;
        }
        return bytes;
      }),
    ),
  };
}
