import { describe, expect, test } from "bun:test";
import { formatDuration } from "../../../core/duration";
import { formatAge, formatCount, formatTable, tableWidth, truncate, useColour } from "../../../core/cli/table";

describe("core/cli/table", () => {
  test("durations: milliseconds under a second, tenths under ten, never 0.0s", () => {
    const cases: Array<[number, string]> = [
      [0, "0ms"],
      [7, "7ms"],
      [195, "195ms"],
      [999.6, "1.0s"],
      [4200, "4.2s"],
      [9949, "9.9s"],
      [9950, "10s"],
      [31_400, "31s"],
      [59_600, "1m0s"],
      [190_000, "3m10s"],
      [3 * 3_600_000 + 7 * 60_000, "3h7m"],
      [2 * 86_400_000 + 5 * 3_600_000, "2d5h"],
    ];
    expect(cases.map(([ms]) => [ms, formatDuration(ms)])).toEqual(cases);
  });

  test("ages as kubectl's AGE column prints them", () => {
    const s = 1000;
    const m = 60 * s;
    const h = 60 * m;
    const d = 24 * h;
    const cases: Array<[number, string]> = [
      [-5 * s, "0s"],
      [45 * s, "45s"],
      [119 * s, "119s"],
      [5 * m, "5m"],
      [5 * m + 10 * s, "5m10s"],
      [42 * m, "42m"],
      [179 * m, "179m"],
      [5 * h + 3 * m, "5h3m"],
      [20 * h, "20h"],
      [3 * d + 4 * h, "3d4h"],
      [2 * d, "2d"],
      [90 * d, "90d"],
      [800 * d, "2y70d"],
      [9 * 365 * d, "9y"],
    ];
    expect(cases.map(([ms]) => [ms, formatAge(ms)])).toEqual(cases);
  });

  test("counts in a few characters", () => {
    const cases: Array<[number, string]> = [
      [0, "0"],
      [950, "950"],
      [9_940, "9.9k"],
      [12_840, "13k"],
      [310_552, "311k"],
      [999_500, "1M"],
      [1_204_331, "1.2M"],
      [3_000_000_000, "3G"],
    ];
    expect(cases.map(([n]) => [n, formatCount(n)])).toEqual(cases);
  });

  test("a table fits its width: the lowest shrinkOrder is cut first, widest first, to its minimum; wide characters count two", () => {
    const columns = [
      { header: "ID" },
      { header: "NAME", shrink: 6, shrinkOrder: 1 },
      { header: "NOTE", shrink: 8 },
      { header: "MORE", shrink: 8 },
    ];
    const rows = [["1", "a-name-of-twenty-two-", "x".repeat(50), "界".repeat(30)]];
    const text = formatTable(columns, rows, { width: 60 });
    const lines = text.trimEnd().split("\n");
    for (const line of lines) expect(Bun.stringWidth(line)).toBeLessThanOrEqual(60);
    // NAME (order 1) is whole; NOTE and MORE shared what was left, each ending in an ellipsis.
    expect(lines[1]).toContain("a-name-of-twenty-two-");
    expect(lines[1]).toMatch(/x+… +界+…$/);
    // Nothing to cut: whole, and the last column unpadded.
    expect(formatTable(columns, [["1", "n", "note", "more"]], { width: 60 })).toBe("ID  NAME  NOTE  MORE\n1   n     note  more\n");
  });

  test("an overflow cell runs on over empty neighbours to the line's end; cells are one line", () => {
    const columns = [{ header: "A" }, { header: "COUNTS", shrink: 6, overflow: true }, { header: "REASON", shrink: 6 }];
    const rows = [
      ["1", "c=1 d=2 e=3 f=4 g=5 h=6 i=7", "-"],
      ["2", "c=1", "line one\n\tline two"],
    ];
    const lines = formatTable(columns, rows, { width: 30 }).trimEnd().split("\n");
    expect(lines).toEqual(["A  COUNTS  REASON", "1  c=1 d=2 e=3 f=4 g=5 h=6 i=7", "2  c=1     line one line two"]);
    expect(formatTable(columns, rows, { width: 20 }).split("\n")[1]).toBe("1  c=1 d=2 e=3 f=4 …");
  });

  test("colour only on a terminal without NO_COLOR; width from COLUMNS", () => {
    expect(useColour({ env: {}, stdoutIsTTY: true })).toBe(true);
    expect(useColour({ env: {}, stdoutIsTTY: false })).toBe(false);
    expect(useColour({ env: {} })).toBe(false);
    expect(useColour({ env: { NO_COLOR: "" }, stdoutIsTTY: true })).toBe(false);
    expect(useColour({ env: { TERM: "dumb" }, stdoutIsTTY: true })).toBe(false);
    const painted = formatTable([{ header: "S", colour: (c) => (c === "failed" ? "red" : undefined) }], [["failed"], ["ok"]], { colour: true });
    expect(painted).toBe("S\n\u001b[31mfailed\u001b[0m\nok\n");
    expect(tableWidth({})).toBe(120);
    expect(tableWidth({ COLUMNS: "200" })).toBe(200);
    expect(tableWidth({ COLUMNS: "wide" })).toBe(120);
    expect(truncate("abcdef", 4)).toBe("abc…");
  });
});
