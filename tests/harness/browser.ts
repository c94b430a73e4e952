import { mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";

/**
 * Debian's chromium, headless, driven by playwright-core, for tests of the HTML the platform
 * writes (profile.html, etl report). A page is opened in its own context; every request other than
 * the page itself is recorded, and one that leaves the machine (not file:, not loopback) is aborted
 * before it is sent, so a test of a self-contained page asserts `requests` is empty and a test can
 * never reach the closed network. Console errors and uncaught page errors are recorded too.
 */

export const CHROMIUM = process.env.ETL_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Without the background-networking, component-update and sync flags chromium keeps trying to
 * reach Google's servers, which floods this machine's closed network; as root it needs
 * --no-sandbox. Playwright gives each launch a fresh temporary user-data dir and removes it on close.
 */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // A safety net under the route below: no host but loopback resolves (IP literals included), so
  // even a request the route missed (a prefetch, a preconnect) cannot leave the machine.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*, EXCLUDE [::1]",
];

/** Where screenshots go: $ETL_TEST_OUTPUT, else <tmpdir>/etl-test-output (outside the repo). */
export function testOutputDir(): string {
  const dir = process.env.ETL_TEST_OUTPUT ?? join(tmpdir(), "etl-test-output");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface OpenOptions {
  /** false renders the page as with JavaScript disabled (a pure HTML+SVG+CSS page must still read). */
  javaScript?: boolean;
  width?: number;
  height?: number;
}

export interface OpenedPage {
  page: Page;
  url: string;
  /** console.error messages and uncaught page errors, in order. */
  consoleErrors: string[];
  /** Every request other than the page itself (local ones were let through). */
  requests: string[];
  /** Requests that left the machine (blocked, "blocked <url>") or failed ("failed <url>: <why>"). */
  failedOrExternalRequests: string[];
  /** The visible text of the first element matching `selector` (default the body). */
  text(selector?: string): Promise<string>;
  /** Page.evaluate; the project compiles without the DOM lib, so pass browser code as a string. */
  evaluate: Page["evaluate"];
  /** Saves a full-page PNG as <test output>/<name>.png, prints its path and returns it. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export interface BrowserSession {
  open(fileOrUrl: string, options?: OpenOptions): Promise<OpenedPage>;
  close(): Promise<void>;
}

/** file: URLs and loopback hosts are this machine; anything else would leave it. */
export function isLocalUrl(url: string): boolean {
  if (url.startsWith("data:") || url.startsWith("about:") || url.startsWith("blob:")) return true;
  const parsed = new URL(url);
  if (parsed.protocol === "file:") return true;
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function toUrl(fileOrUrl: string): string {
  if (/^(https?|file):/.test(fileOrUrl)) return fileOrUrl;
  const path = isAbsolute(fileOrUrl) ? fileOrUrl : resolve(fileOrUrl);
  if (!existsSync(path)) throw new Error(`no page to open: ${path} does not exist`);
  return pathToFileURL(path).href;
}

/** One chromium for several pages (each in a fresh context); close it in afterAll. */
export async function startBrowser(): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: apt-get install chromium (or set ETL_CHROMIUM)`);
  const { chromium } = await import("playwright-core");
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const contexts = new Set<BrowserContext>();
  return {
    open: async (fileOrUrl, options = {}) => {
      const url = toUrl(fileOrUrl);
      const context = await browser.newContext({
        javaScriptEnabled: options.javaScript ?? true,
        viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
      });
      contexts.add(context);
      try {
        return await openInContext(context, url, async () => {
          contexts.delete(context);
          await context.close();
        });
      } catch (error) {
        contexts.delete(context);
        await context.close();
        throw error;
      }
    },
    close: async () => {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close();
    },
  };
}

/** A page in a browser of its own: its close() closes the browser too. */
export async function openPage(fileOrUrl: string, options: OpenOptions = {}): Promise<OpenedPage> {
  const session = await startBrowser();
  try {
    const opened = await session.open(fileOrUrl, options);
    return { ...opened, close: session.close };
  } catch (error) {
    await session.close();
    throw error;
  }
}

async function openInContext(context: BrowserContext, url: string, close: () => Promise<void>): Promise<OpenedPage> {
  const consoleErrors: string[] = [];
  const requests: string[] = [];
  const failedOrExternalRequests: string[] = [];
  await context.route("**/*", async (route) => {
    const requested = route.request().url();
    if (requested === url) return route.continue();
    requests.push(requested);
    if (isLocalUrl(requested)) return route.continue();
    failedOrExternalRequests.push(`blocked ${requested}`);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) => {
    // The ones the route blocked are already recorded as blocked.
    if (isLocalUrl(request.url())) failedOrExternalRequests.push(`failed ${request.url()}: ${request.failure()?.errorText ?? "?"}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && response.url() !== url) failedOrExternalRequests.push(`failed ${response.url()}: ${response.status()}`);
  });
  const response = await page.goto(url, { waitUntil: "load" });
  if (response && !response.ok() && !url.startsWith("file:")) throw new Error(`${url} answered ${response.status()}`);
  return {
    page,
    url,
    consoleErrors,
    requests,
    failedOrExternalRequests,
    text: async (selector = "body") => (await page.locator(selector).first().innerText()).trim(),
    evaluate: page.evaluate.bind(page) as Page["evaluate"],
    screenshot: async (name) => {
      const path = join(testOutputDir(), `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      console.log(`screenshot: ${path}`);
      return path;
    },
    close,
  };
}
