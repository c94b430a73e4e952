/**
 * profile.html in a real browser (Debian's chromium, headless): partitions bronze_to_silver built
 * from partner CSV (rejects, a refund of -12.5, injected markup), profiled day after day; the page
 * renders without a console error or any request, and what it shows equals profile.json, the
 * rejects file and the run ledger.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProfileDocument } from "../../processors/file_processing/profile/profile_document";
import { startBrowser, testOutputDir, type BrowserSession, type OpenedPage } from "../harness/browser";
import { createTestDatabase, runCommand, type TestDatabase } from "../harness/fixtures";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";

let db: TestDatabase;
let browser: BrowserSession;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true), (20, 'Closed Agency', false)`;
  browser = await startBrowser();
});
afterAll(async () => {
  await browser.close();
  await db.drop();
});

const HEADER = "payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at";
const SCRIPT_ID = "<script>alert(1)</script>";
const IMG_EMAIL = "<img src=x onerror=alert(1)>";

/** A day's partner CSV: `n` good payments; on the last day a refund, injected markup and rows bronze_to_silver rejects. */
function payments(date: string, n: number, last: boolean): string {
  const rows = Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const reported = new Date(Date.parse(`${date}T01:00:00Z`) + i * 60_000).toISOString();
    return `P-${i},${["acme", "globex", "initech"][i % 3]},${i % 4 ? 10 : 20},${((i * 7.25) % 300) + 5},${["EUR", "EUR", "USD", "GBP"][i % 4]},${date},${i % 5 ? `payer${i}@example.com` : ""},${reported}`;
  });
  if (last) {
    rows[16] = `P-17,acme,10,-12.5,EUR,${date},,${date}T02:00:00Z`;
    rows.push(
      `${SCRIPT_ID},acme,10,20,EUR,${date},,${date}T03:00:00Z`,
      // Reported 6 h after the day's end (a partner's clock ahead): freshness says "after", not "-6.0 h before".
      `P-late,globex,10,30,USD,${date},,${nextDay(date)}T06:00:00Z`,
      `P-900,acme,10,abc,EUR,${date},,${date}T04:00:00Z`,
      `P-901,acme,10,5,JPY,${date},,${date}T04:00:00Z`,
      `P-902,initech,10,5,EUR,${date},${IMG_EMAIL},${date}T04:00:00Z`,
      `P-903,initech,10,7,GBP,${date},not-an-address,${date}T04:00:00Z`,
    );
  }
  return [HEADER, ...rows].join("\n") + "\n";
}

const nextDay = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
const DAYS = [["2026-11-01", 40], ["2026-11-02", 55], ["2026-11-03", 60]] as const;

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString("en-US") : String(n));

/** The page's figures, read from the DOM. */
async function pageFigures(page: OpenedPage) {
  return page.evaluate(`(() => {
    const text = (el) => (el ? el.textContent.trim() : null);
    const all = (sel, root = document) => [...root.querySelectorAll(sel)];
    return {
      verdict: text(document.querySelector("#banner .verdict")),
      bannerClass: document.querySelector("#banner").className,
      counts: Object.fromEntries(all("#banner [data-status]").map((s) => [s.dataset.status, Number(s.querySelector("b").textContent)])),
      rows: text(document.querySelector("#tile-rows b")),
      rejected: text(document.querySelector("#tile-rejected b")),
      checks: Object.fromEntries(all("table.checks tr[data-check]").map((r) => [r.dataset.check, { pill: text(r.querySelector(".pill")), failing: text(r.children[2]), rows: all(".rows li", r).map((li) => li.textContent) }])),
      rejects: all("table.rejects tr[data-rule]").map((r) => ({ rule: r.dataset.rule, column: r.dataset.column, rows: Number(r.children[2].textContent.replace(/,/g, "")), values: all("li b.bad", r).map((b) => b.textContent) })),
      top: Object.fromEntries(all(".card").map((c) => [c.dataset.column, all("table.top tr", c).filter((r) => r.children.length === 3).map((r) => [...r.children].map((td) => td.textContent))])),
      histograms: Object.fromEntries(all(".card").filter((c) => c.querySelector("svg.hist")).map((c) => [c.dataset.column, { bins: text(c.querySelector("svg.hist title")).split("\\n").slice(1).map((l) => Number(l.slice(l.lastIndexOf(": ") + 2).replace(/,/g, ""))), red: !!c.querySelector("svg.hist path.bad") }])),
      trendRows: all("tr[data-series=rows] td.n").map((td) => td.textContent),
      trendRejected: all("tr[data-series=rejected] td.n").map((td) => td.textContent),
      trendChecks: Object.fromEntries(all("table.trend tr[data-check]").map((r) => [r.dataset.check, all("td.st", r).map((td) => td.title)])),
      scripts: document.scripts.length,
      images: document.images.length,
      body: document.body.innerText,
    };
  })()`) as Promise<{
    verdict: string; bannerClass: string; counts: Record<string, number>; rows: string; rejected: string | null;
    checks: Record<string, { pill: string; failing: string; rows: string[] }>;
    rejects: Array<{ rule: string; column: string; rows: number; values: string[] }>;
    top: Record<string, string[][]>; histograms: Record<string, { bins: number[]; red: boolean }>;
    trendRows: string[]; trendRejected: string[]; trendChecks: Record<string, string[]>;
    scripts: number; images: number; body: string;
  }>;
}

describe.each(LAKE_KINDS)("profile.html on a %s lake, in chromium", (kind) => {
  let lake: Lake;
  beforeAll(async () => {
    lake = await createLake(kind);
  });
  afterAll(() => lake.dispose());

  const job = (name: string, argv: string[]) => runCommand([`jobs/${name}.ts`], ["--dataset", "partner_payments", "--bucket", lake.arg, ...argv], { DATABASE_URL: db.url, PUSHGATEWAY_URL: "" });

  test("verdict, checks with the failing values whole, rejects by rule, top values, histograms and the trend equal profile.json and the ledger", async () => {
    const builds = [];
    const profiles = [];
    for (const [date, n] of DAYS) {
      await lake.write(`bronze/partner_payments/dt=${date}/payments.csv`, payments(date, n, date === DAYS[2][0]));
      builds.push(await job("bronze_to_silver", ["--date", date, "--max-reject-ratio", "0.2"]));
      profiles.push(await job("profile_dataset", ["--date", date]));
    }
    expect(builds.map((b) => b.exitCode)).toEqual([0, 0, 0]);
    // Warn-level checks only fail: exit 0.
    expect(profiles.map((p) => p.exitCode)).toEqual([0, 0, 0]);
    const prefix = `silver/partner_payments/dt=${DAYS[2][0]}/_profile/`;
    const p = JSON.parse(await lake.readText(`${prefix}profile.json`)) as ProfileDocument;
    const html = await lake.readText(`${prefix}profile.html`);
    const file = kind === "file" ? `${lake.dir}/${prefix}profile.html` : await lake.localCopy(`${prefix}profile.html`);
    // Beside the screenshot, to open after the lake is gone.
    for (const name of ["profile.html", "profile.json"]) writeFileSync(join(testOutputDir(), `profile-${kind}-lake.${name.split(".")[1]}`), await lake.readText(`${prefix}${name}`));
    console.log(`profile.html (${kind} lake): ${html.length} bytes, kept in ${testOutputDir()}`);

    const page = await browser.open(file, { width: 1280, height: 1000 });
    try {
      const seen = await pageFigures(page);
      expect(page.consoleErrors).toEqual([]);
      expect(page.requests).toEqual([]);
      expect(page.failedOrExternalRequests).toEqual([]);
      // The injected markup is text, not elements.
      expect([seen.scripts, seen.images]).toEqual([0, 0]);

      // The banner: WARN, with the checks in each state as profile.json has them.
      const states = { failed: 0, warned: 0, passed: 0, skipped: 0 };
      for (const c of p.checks) states[c.status]++;
      expect(states.warned).toBeGreaterThan(0);
      expect([seen.verdict, seen.bannerClass]).toEqual(["WARN", "banner warn"]);
      expect(seen.counts).toEqual(Object.fromEntries(Object.entries(states).filter(([s, n]) => s !== "skipped" || n)));
      expect(seen.rows).toBe(fmt(p.rows));

      // Each check's state and failing rows; the values that broke a rule shown whole.
      const pill = { passed: "PASS", warned: "WARN", failed: "FAIL", skipped: "SKIP" };
      for (const c of p.checks) {
        expect({ check: c.name, pill: seen.checks[c.name]!.pill }).toEqual({ check: c.name, pill: pill[c.status] });
        expect(seen.checks[c.name]!.failing.replace(/,/g, "")).toStartWith(String(c.failing));
      }
      expect(p.checks.find((c) => c.name === "between_amount")).toMatchObject({ status: "warned", failing: 1 });
      expect(seen.checks.between_amount!.rows).toEqual(["partner acme · payment_id P-17 amount: -12.5"]);
      expect(seen.checks.regex_payment_id!.rows).toEqual([`partner acme payment_id: ${SCRIPT_ID}`]);
      const freshness = p.checks.find((c) => c.name === "freshness_reported_at")!;
      expect(freshness.detail).toContain(`, 6.0 h after ${nextDay(DAYS[2][0])}T00:00:00.000Z`);
      expect(seen.body).toContain("6.0 h after");

      // Rejects by rule: the page, profile.json, the rejects file, the manifest and both ledgers agree.
      const manifest = JSON.parse(await lake.readText(`silver/partner_payments/dt=${DAYS[2][0]}/_manifest.json`));
      const lines = (await lake.readText(manifest.rejects.key)).trim().split("\n").map((l) => JSON.parse(l) as { rule: string; column: string; value: string });
      const byRule = new Map<string, number>();
      for (const l of lines) byRule.set(`${l.rule}|${l.column}`, (byRule.get(`${l.rule}|${l.column}`) ?? 0) + 1);
      expect(new Map(seen.rejects.map((r) => [`${r.rule}|${r.column}`, r.rows]))).toEqual(byRule);
      expect(seen.rejects.map((r) => [r.rule, r.column, r.rows])).toEqual(p.rejects!.byRule.map((r) => [r.rule, r.column ?? "", r.rows]));
      expect(seen.rejects.flatMap((r) => r.values).sort()).toEqual(["amount: abc", "currency: JPY", `payer_email: ${IMG_EMAIL}`, "payer_email: not-an-address"].sort());
      const [build] = await db.sql`select counts from etl_job_runs where run_id = ${manifest.run_id}`;
      const [partition] = await db.sql`select rows_rejected::int as n from etl_partitions where dataset = 'partner_payments' and partition_date = ${DAYS[2][0]}`;
      expect([seen.rejected, p.rejects!.rows, manifest.rows.rejected, partition!.n]).toEqual(["4", 4, 4, 4]);
      expect(build!.counts).toMatchObject({ rejected: 4, rowsIn: p.rejects!.rowsIn });
      const [profiled] = await db.sql`select counts from etl_job_runs where run_id = ${p.runId}`;
      expect(profiled!.counts).toMatchObject({ rows: p.rows, checksWarned: states.warned, failed: states.failed });

      // Top values: value, count and share of the rows, as profile.json counts them.
      for (const column of ["currency", "partner"]) {
        const expected = p.columns[column]!.topValues.slice(0, 5).map((t) => [t.value!, fmt(t.count), `${((t.count / p.rows) * 100).toFixed(1)}%`]);
        expect({ column, top: seen.top[column] }).toEqual({ column, top: expected });
      }
      // A histogram per numeric and temporal column, its bins' counts those of profile.json; the refund's bin red.
      expect(Object.keys(seen.histograms).sort()).toEqual(["agency_id", "amount", "paid_on", "reported_at"]);
      for (const [column, h] of Object.entries(seen.histograms)) expect({ column, bins: h.bins }).toEqual({ column, bins: p.columns[column]!.histogram!.counts });
      expect(p.columns.amount!.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(p.columns.amount!.count);
      expect([seen.histograms.amount!.red, seen.histograms.agency_id!.red]).toEqual([true, false]);

      // The trend: the two earlier partitions' profiles, then this one.
      expect(p.trend!.map((t) => [t.partition, t.rows])).toEqual([[DAYS[0][0], 40], [DAYS[1][0], 55]]);
      expect(seen.trendRows).toEqual([...p.trend!.map((t) => fmt(t.rows)), fmt(p.rows)]);
      expect(seen.trendRejected).toEqual(["0", "0", "4"]);
      expect(seen.trendChecks.between_amount).toEqual(["passed", "passed", "warned"]);

      const shot = await page.screenshot(`profile-${kind}-lake`);
      expect(shot).toEndWith(".png");
    } finally {
      await page.close();
    }

    // Without JavaScript the page reads the same: it has none.
    const still = await browser.open(file, { javaScript: false });
    try {
      expect(await still.text("#banner")).toStartWith("WARN");
      expect(still.requests).toEqual([]);
    } finally {
      await still.close();
    }
  });
});

test("raw partner files profiled under a prefix: FAIL, the values that do not fit their type, the earlier profile as its trend", async () => {
  const lake = await createLake("file");
  try {
    // A column the dataset does not declare, named to inject a script: the schema check fails naming it, as text.
    const rows = [`${HEADER},<script>document.title='x'</script>`, "P-1,acme,10,12.50,EUR,2026-11-02,,2026-11-03T01:00:00Z,a", "P-2,acme,10,abc,JPY,2026-11-02,,2026-11-03T01:00:00Z,b"];
    await lake.write("inbox/acme/p.csv", rows.join("\n") + "\n");
    const profile = () => runCommand(["jobs/profile_dataset.ts"], ["--bucket", lake.arg, "--prefix", "inbox/acme/", "--dataset", "partner_payments", "--logical-date", "2026-11-03T12:00:00Z"], { DATABASE_URL: "", PUSHGATEWAY_URL: "" });
    expect((await profile()).exitCode).toBe(3);
    expect((await profile()).exitCode).toBe(3);
    const p = JSON.parse(await lake.readText("inbox/acme/_profile/profile.json")) as ProfileDocument;
    expect(p.rejects).toBeUndefined();
    expect(p.trend).toHaveLength(1);
    const page = await browser.open(`${lake.dir}/inbox/acme/_profile/profile.html`);
    try {
      const seen = await pageFigures(page);
      expect([page.consoleErrors, page.requests]).toEqual([[], []]);
      expect([seen.verdict, seen.bannerClass]).toEqual(["FAIL", "banner fail"]);
      expect(seen.checks.in_set_currency).toMatchObject({ pill: "FAIL", rows: ["partner acme · payment_id P-2 currency: JPY"] });
      expect(seen.rejected).toBeNull();
      expect(seen.body).toContain("1 not number");
      expect(seen.scripts).toBe(0);
      expect(seen.checks.schema).toMatchObject({ pill: "FAIL" });
      expect(seen.body).toContain("not declared: <script>document.title='x'</script>");
      expect(await page.evaluate("document.title")).toStartWith("FAIL · Profile");
      await page.screenshot("profile-prefix");
    } finally {
      await page.close();
    }
  } finally {
    await lake.dispose();
  }
});
