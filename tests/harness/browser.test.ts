import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBrowser, type BrowserSession } from "./browser";

let browser: BrowserSession;
const dir = mkdtempSync(join(tmpdir(), "etl-browser-"));

beforeAll(async () => {
  browser = await startBrowser();
});
afterAll(async () => {
  await browser.close();
});

function page(name: string, html: string): string {
  const path = join(dir, name);
  writeFileSync(path, html);
  return path;
}

describe("browser harness", () => {
  test("a self-contained file: page renders with no console error and no request", async () => {
    const opened = await browser.open(
      page("clean.html", `<!doctype html><title>t</title><h1 id="h">Report</h1><svg width="40" height="10"><rect width="30" height="10"/></svg>`),
    );
    try {
      expect(await opened.text("#h")).toBe("Report");
      expect(await opened.evaluate("document.querySelectorAll('svg rect').length")).toBe(1);
      expect(opened.consoleErrors).toEqual([]);
      expect(opened.requests).toEqual([]);
      expect(opened.failedOrExternalRequests).toEqual([]);
      const shot = await opened.screenshot("browser-harness-clean");
      expect(statSync(shot).size).toBeGreaterThan(100);
    } finally {
      await opened.close();
    }
  });

  test("console errors, page errors, external requests (blocked) and missing local files are recorded", async () => {
    const opened = await browser.open(
      page(
        "dirty.html",
        `<!doctype html><title>t</title><img src="http://cdn.external.invalid/logo.png"><img src="missing.png">
         <script>console.error("boom"); console.log("fine"); setTimeout(() => { throw new Error("uncaught"); });</script>`,
      ),
    );
    try {
      await opened.page.waitForTimeout(100);
      expect(opened.consoleErrors).toContain("boom");
      expect(opened.consoleErrors.some((line) => line.includes("uncaught"))).toBe(true);
      expect(opened.requests).toContain("http://cdn.external.invalid/logo.png");
      expect(opened.failedOrExternalRequests).toContain("blocked http://cdn.external.invalid/logo.png");
      expect(opened.failedOrExternalRequests.some((line) => line.startsWith("failed file:") && line.includes("missing.png"))).toBe(true);
    } finally {
      await opened.close();
    }
  });

  test("a page of a loopback server may load its own files; a 404 is a failed request", async () => {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => {
        const path = new URL(request.url).pathname;
        if (path === "/") return new Response(`<link rel="stylesheet" href="/style.css"><img src="/nope.png"><p>served</p>`, { headers: { "content-type": "text/html" } });
        if (path === "/style.css") return new Response("p { color: green }", { headers: { "content-type": "text/css" } });
        return new Response("no", { status: 404 });
      },
    });
    const opened = await browser.open(`http://127.0.0.1:${server.port}/`);
    try {
      expect(await opened.text()).toBe("served");
      expect(opened.requests).toEqual([`http://127.0.0.1:${server.port}/style.css`, `http://127.0.0.1:${server.port}/nope.png`]);
      expect(opened.failedOrExternalRequests).toEqual([`failed http://127.0.0.1:${server.port}/nope.png: 404`]);
    } finally {
      await opened.close();
      server.stop(true);
    }
  });

  test("javaScript: false renders without running the page's scripts", async () => {
    const path = page("script.html", `<!doctype html><p id="p">static</p><script>document.getElementById("p").textContent = "scripted"</script>`);
    const withJs = await browser.open(path);
    const withoutJs = await browser.open(path, { javaScript: false });
    try {
      expect(await withJs.text("#p")).toBe("scripted");
      expect(await withoutJs.text("#p")).toBe("static");
    } finally {
      await withJs.close();
      await withoutJs.close();
    }
  });

  test("a missing file is an error naming it", async () => {
    await expect(browser.open(join(dir, "absent.html"))).rejects.toThrow(/absent\.html/);
    expect(existsSync(join(dir, "absent.html"))).toBe(false);
  });
});
