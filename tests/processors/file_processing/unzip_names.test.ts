/**
 * How unzip_files reads entry names: UTF-8 names of archives made by Info-ZIP's zip on Linux
 * (neither flagged nor in a Unicode Path field), the Unicode Path extra field 0x7075 with its CRC,
 * CP437 for the rest; every guard, the collision guard first, on the decoded names.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { crc32 } from "node:zlib";
import { decodeEntryName, type RawEntryName } from "../../../processors/file_processing/unzip/entry_name";
import { createTestDatabase, type TestDatabase } from "../../harness/fixtures";
import { centralHeaders, infoUnzipNames, infoZip } from "../../harness/info_zip";
import { LAKE_KINDS, createLake, type Lake } from "../../harness/lakes";
import { DESTINATION, filesUnder, lakeArgs, reasonOf as reasonIn, runUnzip } from "../../harness/unzip_lake";
import { buildZip, extraField, unicodePathField } from "../../harness/zip_builder";

const UTF8_FLAG = 0x800;
const UNICODE_PATH = 0x7075;
const UNIX = 3;

/** "Größe.txt" as a Windows archiver writes it in CP437 (ö 0x94, ß 0xe1). */
const GROESSE_CP437 = Buffer.from([0x47, 0x72, 0x94, 0xe1, 0x65, 0x2e, 0x74, 0x78, 0x74]);
const latin1 = (text: string) => Buffer.from(text, "latin1");

let db: TestDatabase;
let lake: Lake;

const unzip = () => runUnzip(db.url, lakeArgs(lake));
/** The entries published, manifests left out. */
const published = async () => (await filesUnder(lake, DESTINATION)).filter((k) => !k.startsWith("_archive."));
const reasonOf = (key: string) => reasonIn(lake, key);

describe.each(LAKE_KINDS)("unzip_files entry names, %s lake", (kind) => {
  beforeEach(async () => {
    db = await createTestDatabase();
    lake = await createLake(kind);
  });
  afterEach(async () => {
    await db.drop();
    await lake.dispose();
  });

  test("Info-ZIP's zip on Linux, in C.UTF-8 and in C: UTF-8 names with neither bit 11 nor 0x7075 are extracted as Debian's unzip lists them", async () => {
    const files = (top: string) => [
      { path: `${top}/Größe/übersicht.txt`, data: "id\n1\n" },
      { path: `${top}/naïve café.csv`, data: "id\n2\n" },
    ];
    const archives = { "C.UTF-8": infoZip(files("b1"), { LC_ALL: "C.UTF-8" }), C: infoZip(files("b2"), { LC_ALL: "C" }) };
    for (const [locale, archive] of Object.entries(archives)) {
      // What makes it a case: made on Unix, nothing says UTF-8 (checked on the real zip's bytes).
      for (const header of centralHeaders(archive)) {
        expect({ locale, host: header.host, utf8Flag: header.flags & UTF8_FLAG, unicodePath: header.extraIds.includes(UNICODE_PATH) }).toEqual({ locale, host: UNIX, utf8Flag: 0, unicodePath: false });
      }
      await lake.write(`inbox/${locale}.zip`, archive);
    }
    const listed = [...infoUnzipNames(archives["C.UTF-8"]), ...infoUnzipNames(archives.C)].filter((n) => !n.endsWith("/"));
    expect(listed.sort()).toEqual(["b1/Größe/übersicht.txt", "b1/naïve café.csv", "b2/Größe/übersicht.txt", "b2/naïve café.csv"]);

    const run = await unzip();
    expect(run.exitCode).toBe(0);
    expect(run.summary!.counts).toMatchObject({ archives: 2, unzipped: 2, extracted: 4, quarantined: 0 });
    expect(await published()).toEqual(listed.sort());
    expect(await lake.readText(`${DESTINATION}b1/Größe/übersicht.txt`)).toBe("id\n1\n");
  });

  test("a Unix name that is not UTF-8 stays CP437; a DOS archive's names are CP437 even when they would be UTF-8", async () => {
    // Latin-1 "café.txt" from an old system: 0xe9 is not UTF-8 alone, and is Θ in CP437.
    await lake.write("inbox/latin1.zip", infoZip([{ path: latin1("old/café.txt"), data: "x" }], { LC_ALL: "C" }));
    await lake.write("inbox/dos.zip", buildZip([{ name: GROESSE_CP437, data: "1" }, { name: Buffer.from("Größe.txt"), data: "2" }]));
    const run = await unzip();
    expect(run.exitCode).toBe(0);
    expect(await published()).toEqual(["Größe.txt", "Gr├╢├ƒe.txt", "old/cafΘ.txt"]);
    expect(await lake.readText(`${DESTINATION}Größe.txt`)).toBe("1");
  });

  test("the Unicode Path extra field (0x7075) names the entry when it is version 1 and its CRC is the header name's; else the header name is read", async () => {
    const renamed = latin1("\x81bersicht.txt"); // übersicht.txt in CP437
    const v2 = Buffer.from("caf\x82.txt", "latin1"); // café.txt in CP437
    const archive = buildZip([
      // As Info-ZIP's zip on Windows writes a name: CP437 in the header, UTF-8 in 0x7075.
      { name: GROESSE_CP437, data: "1", extra: unicodePathField("Größe.txt", GROESSE_CP437) },
      // Renamed after the field was written (zipnote): its CRC is no longer the header name's.
      { name: renamed, data: "2", extra: unicodePathField("Übersicht-alt.txt", latin1("\x9abersicht-alt.txt")) },
      { name: v2, data: "3", extra: unicodePathField("café-v2.txt", v2, { version: 2 }) },
      // A Unix archive whose field says more than its (UTF-8) header name.
      { name: Buffer.from("a/plain.txt"), host: UNIX, data: "4", extra: unicodePathField("a/plaın.txt", Buffer.from("a/plain.txt")) },
    ]);
    // Debian's unzip takes the same fields (the other two it converts to Latin-1, not UTF-8).
    expect(infoUnzipNames(archive).filter((n) => n === "Größe.txt" || n === "a/plaın.txt")).toEqual(["Größe.txt", "a/plaın.txt"]);
    await lake.write("inbox/windows.zip", archive);
    const run = await unzip();
    expect(run.exitCode).toBe(0);
    expect(await published()).toEqual(["Größe.txt", "a/plaın.txt", "café.txt", "übersicht.txt"]);
    expect(await lake.readText(`${DESTINATION}übersicht.txt`)).toBe("2");
  });

  test("the guards run on the decoded names: names that collide, or break a rule, only once decoded are quarantined", async () => {
    // Real zip: NFC and NFD "Größe.txt" are two files on Linux; decoded, they fold alike.
    const nfc = "Größe.txt".normalize("NFC");
    const nfd = "Größe.txt".normalize("NFD");
    expect(Buffer.from(nfc).equals(Buffer.from(nfd))).toBe(false);
    const cases: Array<[string, Uint8Array, string, string]> = [
      ["nfc-nfd", infoZip([{ path: nfc, data: "1" }, { path: nfd, data: "2" }], { LC_ALL: "C.UTF-8" }), "name_collision", "once normalised and case-folded"],
      // One flagged UTF-8, one a Unix name: the same bytes, the same name.
      ["flagged-and-unix", buildZip([{ name: "Größe.txt", data: "1" }, { name: Buffer.from("Größe.txt"), host: UNIX, data: "2" }]), "name_collision", "appears twice"],
      // One CP437 name, one named by its 0x7075 field: both are Größe.txt.
      ["cp437-and-field", buildZip([{ name: Buffer.from("Gr\x99\xe1e.txt", "latin1"), data: "1" }, { name: GROESSE_CP437, data: "2", extra: unicodePathField("Größe.txt", GROESSE_CP437) }]), "name_collision", "collides with"],
      ["field-traversal", buildZip([{ name: "ok.txt", data: "x", extra: unicodePathField("../../etc/cron.d/x", Buffer.from("ok.txt")) }]), "path_traversal", '".."'],
      ["field-nul", buildZip([{ name: "ok.txt", data: "x", extra: unicodePathField("ok.txt\0.csv", Buffer.from("ok.txt")) }]), "nul_in_name", "NUL"],
      ["field-backslash", buildZip([{ name: "ok.txt", data: "x", extra: unicodePathField("dir\\evil.txt", Buffer.from("ok.txt")) }]), "backslash_in_name", "backslash"],
      ["flagged-not-utf8", buildZip([{ name: latin1("café.txt"), flags: UTF8_FLAG, data: "x" }]), "invalid_name", "U+FFFD"],
    ];
    for (const [name, bytes] of cases) await lake.write(`inbox/${name}.zip`, bytes);
    const run = await unzip();
    expect(run.exitCode).toBe(3);
    expect(run.summary!.counts).toMatchObject({ archives: cases.length, unzipped: 0, quarantined: cases.length });
    const reasons = await Promise.all(cases.map(async ([name]) => reasonOf(`inbox/${name}.zip`)));
    expect(reasons.map((r, i) => [cases[i]![0], r.rule])).toEqual(cases.map(([name, , rule]) => [name, rule]));
    reasons.forEach((reason, i) => expect(reason.detail).toContain(cases[i]![3]));
    expect(await lake.keys(DESTINATION)).toEqual([]);
  });
});

describe("decodeEntryName", () => {
  const cp437 = (raw: Buffer) => `cp437:${raw.toString("latin1")}`;
  const entry = (rawName: Buffer, fields: Buffer[] = [], options: Partial<RawEntryName> = {}): RawEntryName => ({
    rawName,
    versionMadeBy: 20,
    generalPurposeBitFlag: 0,
    extraFields: fields.map((f) => ({ id: f.readUInt16LE(0), data: f.subarray(4) })),
    ...options,
  });

  test("flagged names are UTF-8; unflagged ones UTF-8 only from Unix (3) or OS X (19) hosts and when valid", () => {
    const utf8 = Buffer.from("Größe.txt");
    expect(decodeEntryName(entry(utf8, [], { generalPurposeBitFlag: UTF8_FLAG }), cp437)).toBe("Größe.txt");
    expect(decodeEntryName(entry(utf8, [], { versionMadeBy: (3 << 8) | 30 }), cp437)).toBe("Größe.txt");
    expect(decodeEntryName(entry(utf8, [], { versionMadeBy: (19 << 8) | 30 }), cp437)).toBe("Größe.txt");
    for (const host of [0, 10, 11, 14]) expect(decodeEntryName(entry(utf8, [], { versionMadeBy: (host << 8) | 20 }), cp437)).toBe(cp437(utf8));
    // Truncated UTF-8 (a sequence cut short) is not UTF-8.
    expect(decodeEntryName(entry(Buffer.from([0x47, 0x72, 0xc3]), [], { versionMadeBy: 3 << 8 }), cp437)).toBe(cp437(Buffer.from([0x47, 0x72, 0xc3])));
  });

  test("a 0x7075 field is read only whole: version 1, the header name's CRC, a name, UTF-8", () => {
    const raw = Buffer.from("name.txt");
    const field = (data: Buffer) => extraField(UNICODE_PATH, data);
    const good = unicodePathField("nämé.txt", raw);
    expect(decodeEntryName(entry(raw, [good]), cp437)).toBe("nämé.txt");
    expect(decodeEntryName(entry(raw, [good], { generalPurposeBitFlag: UTF8_FLAG }), cp437)).toBe("nämé.txt");
    expect(decodeEntryName(entry(raw, [unicodePathField("x", raw, { crc: crc32(raw) ^ 1 })]), cp437)).toBe(cp437(raw));
    expect(decodeEntryName(entry(raw, [unicodePathField("x", raw, { version: 0 })]), cp437)).toBe(cp437(raw));
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(raw));
    expect(decodeEntryName(entry(raw, [field(Buffer.concat([Buffer.from([1]), crc]))]), cp437)).toBe(cp437(raw));
    expect(decodeEntryName(entry(raw, [field(Buffer.from([1, 2]))]), cp437)).toBe(cp437(raw));
    expect(decodeEntryName(entry(raw, [unicodePathField(latin1("nämé.txt"), raw)]), cp437)).toBe(cp437(raw));
    // The first field that holds is the one read.
    expect(decodeEntryName(entry(raw, [unicodePathField("bad", raw, { crc: 1 }), good]), cp437)).toBe("nämé.txt");
  });
});
