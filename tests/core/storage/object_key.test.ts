import { describe, expect, test } from "bun:test";
import { unsafeKeyReason, unsafePrefixReason } from "../../../core/storage/object_key";

describe("object keys", () => {
  test("refuses keys that could leave their prefix on any store, naming why", () => {
    const refused: Array<[string, RegExp]> = [
      ["../agency_id=11/victim.bin", /"\.\." segment/],
      ["../x", /"\.\." segment/],
      ["a/../../b", /"\.\." segment/],
      ["a/./b", /"\." segment/],
      ["/etc/passwd", /absolute/],
      ["a\\..\\b", /backslash/],
      ["a\0b", /NUL/],
      ["C:/x", /drive letter/],
      ["a//b", /empty segment/],
      ["dir/", /empty segment/],
      ["", /empty/],
    ];
    for (const [key, reason] of refused) expect(unsafeKeyReason(key)).toMatch(reason);
  });

  test("accepts ordinary keys, dots inside names included", () => {
    for (const key of ["a.txt", "with space/file name.txt", "unicode/été/日本語.txt", "..hidden/x", "a/b..c/.d", "%2e%2e/x"]) expect(unsafeKeyReason(key)).toBeUndefined();
  });

  test("a prefix is empty or safe segments ending in /", () => {
    expect(unsafePrefixReason("")).toBeUndefined();
    expect(unsafePrefixReason("exports/2026/")).toBeUndefined();
    expect(unsafePrefixReason("exports")).toBe('must end with "/"');
    expect(unsafePrefixReason("../x/")).toMatch(/"\.\." segment/);
    expect(unsafePrefixReason("/abs/")).toMatch(/absolute/);
  });
});
