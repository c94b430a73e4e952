import { describe, expect, test } from "bun:test";
import { expectedSlots, parseCron, Zone } from "../../../core/runtime/cron";

const slots = (cron: string, zone: string, from: string, to: string) =>
  expectedSlots(cron, zone, Date.parse(from), Date.parse(to)).map((t) => new Date(t).toISOString().replace(":00.000Z", "Z"));

describe("expected slots (robfig/cron v3 as the CronJob controller uses it)", () => {
  test("steps, ranges, lists and names; the window's ends are included", () => {
    expect(slots("*/20 9-10 * JAN-DEC mon-fri", "UTC", "2026-11-20T09:00Z", "2026-11-23T09:20Z")).toEqual([
      "2026-11-20T09:00Z", "2026-11-20T09:20Z", "2026-11-20T09:40Z", "2026-11-20T10:00Z", "2026-11-20T10:20Z", "2026-11-20T10:40Z",
      // Saturday and Sunday have none.
      "2026-11-23T09:00Z", "2026-11-23T09:20Z",
    ]);
    expect(slots("5,35 */12 * * *", "UTC", "2026-11-20T00:00Z", "2026-11-20T23:59Z")).toEqual(["2026-11-20T00:05Z", "2026-11-20T00:35Z", "2026-11-20T12:05Z", "2026-11-20T12:35Z"]);
    // "N/step" runs from N to the field's end.
    expect(slots("50/5 3 * * *", "UTC", "2026-11-20T00:00Z", "2026-11-20T23:59Z")).toEqual(["2026-11-20T03:50Z", "2026-11-20T03:55Z"]);
    expect(slots("@daily", "UTC", "2026-11-20T00:00Z", "2026-11-21T00:00Z")).toEqual(["2026-11-20T00:00Z", "2026-11-21T00:00Z"]);
  });

  test("day of month and day of week both restricted: either matches; one a star: both must", () => {
    // June 2026: the 1st and 15th, and every Monday (1, 8, 15, 22, 29).
    expect(slots("0 0 1,15 * MON", "UTC", "2026-06-01T00:00Z", "2026-06-30T23:59Z")).toEqual([
      "2026-06-01T00:00Z", "2026-06-08T00:00Z", "2026-06-15T00:00Z", "2026-06-22T00:00Z", "2026-06-29T00:00Z",
    ]);
    expect(slots("0 0 * * MON", "UTC", "2026-06-01T00:00Z", "2026-06-14T23:59Z")).toEqual(["2026-06-01T00:00Z", "2026-06-08T00:00Z"]);
    // A step above 1 is no longer a star (robfig v3): */2 for days and Sunday, OR-ed.
    expect(slots("0 0 */10 * SUN", "UTC", "2026-06-01T00:00Z", "2026-06-15T23:59Z")).toEqual(["2026-06-01T00:00Z", "2026-06-07T00:00Z", "2026-06-11T00:00Z", "2026-06-14T00:00Z"]);
    // The 31st exists in some months only.
    expect(slots("0 12 31 * *", "UTC", "2026-01-01T00:00Z", "2026-06-30T00:00Z")).toEqual(["2026-01-31T12:00Z", "2026-03-31T12:00Z", "2026-05-31T12:00Z"]);
  });

  test("Europe/Berlin spring forward (2026-03-29, 02:00 → 03:00): 02:30 does not exist and does not run that day", () => {
    expect(slots("30 2 * * *", "Europe/Berlin", "2026-03-27T00:00Z", "2026-03-31T00:00Z")).toEqual([
      "2026-03-27T01:30Z", "2026-03-28T01:30Z",
      // 29th skipped; from the 30th 02:30 is summer time, UTC+2.
      "2026-03-30T00:30Z",
    ]);
    // Hourly: 01:00 CET, then 03:00 CEST, one hour later in UTC.
    expect(slots("0 * * * *", "Europe/Berlin", "2026-03-28T23:00Z", "2026-03-29T02:00Z")).toEqual(["2026-03-28T23:00Z", "2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T02:00Z"]);
  });

  test("Europe/Berlin fall back (2026-10-25, 03:00 → 02:00): the repeated hour runs twice, as robfig's Next does", () => {
    expect(slots("0 * * * *", "Europe/Berlin", "2026-10-24T23:00Z", "2026-10-25T03:00Z")).toEqual([
      "2026-10-24T23:00Z", // 01:00 CEST
      "2026-10-25T00:00Z", // 02:00 CEST
      "2026-10-25T01:00Z", // 02:00 CET
      "2026-10-25T02:00Z", // 03:00 CET
      "2026-10-25T03:00Z",
    ]);
    expect(slots("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00Z", "2026-10-26T12:00Z")).toEqual([
      "2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-25T01:30Z", "2026-10-26T01:30Z",
    ]);
  });

  test("America/New_York: spring forward (2026-03-08) skips 02:30, fall back (2026-11-01) runs 01:30 twice", () => {
    expect(slots("30 2 * * *", "America/New_York", "2026-03-06T00:00Z", "2026-03-10T12:00Z")).toEqual([
      "2026-03-06T07:30Z", "2026-03-07T07:30Z", "2026-03-09T06:30Z", "2026-03-10T06:30Z",
    ]);
    expect(slots("30 1 * * *", "America/New_York", "2026-10-31T00:00Z", "2026-11-02T12:00Z")).toEqual([
      "2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-01T06:30Z", "2026-11-02T06:30Z",
    ]);
    // A daily job outside the changed hours keeps its wall time, so moves an hour in UTC.
    expect(slots("0 6 * * *", "America/New_York", "2026-10-31T00:00Z", "2026-11-02T00:00Z")).toEqual(["2026-10-31T10:00Z", "2026-11-01T11:00Z"]);
  });

  test("local times carry the zone's offset", () => {
    const zone = new Zone("America/New_York");
    expect(zone.formatLocal(Date.parse("2026-11-01T05:30Z"))).toBe("2026-11-01T01:30:00-04:00");
    expect(zone.formatLocal(Date.parse("2026-11-01T06:30Z"))).toBe("2026-11-01T01:30:00-05:00");
    expect(new Zone("Asia/Kolkata").formatLocal(Date.parse("2026-11-01T06:30Z"))).toBe("2026-11-01T12:00:00+05:30");
  });

  test("the per-hour offset cache agrees with Intl, across changes off the UTC hour (Lord Howe: 30 minutes, at 15:30Z)", () => {
    for (const name of ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns"]) {
      const zone = new Zone(name);
      const intl = new Intl.DateTimeFormat("en-US", { timeZone: name, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" });
      const wall = (t: number) => {
        const p = Object.fromEntries(intl.formatToParts(t).map((x) => [x.type, Number(x.value)]));
        return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!);
      };
      let changes = 0;
      for (let t = Date.parse("2026-01-01T00:00Z"), last = NaN; t < Date.parse("2027-01-01T00:00Z"); t += 10 * 60_000) {
        const offset = zone.offsetMs(t);
        expect(t + offset).toBe(wall(t));
        if (offset !== last && !Number.isNaN(last)) changes++;
        last = offset;
      }
      expect(changes).toBe(2);
    }
  });

  test("expressions the API server refuses are refused, naming the field", () => {
    expect(() => parseCron("* * * *")).toThrow("must have 5 fields");
    expect(() => parseCron("60 * * * *")).toThrow('"60" is outside 0-59');
    expect(() => parseCron("0 0 * * 7")).toThrow("outside 0-6");
    expect(() => parseCron("0 0 * FOO *")).toThrow('"FOO"');
    expect(() => parseCron("5-1 * * * *")).toThrow("backwards");
    expect(() => parseCron("*/0 * * * *")).toThrow("positive whole step");
    expect(() => new Zone("Mars/Olympus")).toThrow();
  });
});
