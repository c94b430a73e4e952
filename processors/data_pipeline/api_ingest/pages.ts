import { valueAtPath, type ApiSource } from "../../../core/dataset";
import { EtlError } from "../../../core/errors";
import type { HttpClient, JsonResponse } from "../../../core/http/http_client";

export interface Page {
  url: string;
  items: unknown[];
}

export interface PageWalkOptions {
  /** The resource's first URL: base URL, path, page size and filters. */
  firstUrl: URL;
  /** Stop after this many pages, whatever is left (the caller says so). */
  maxPages: number;
  /** Pages fetched ahead for the numbered styles (page, offset); the client caps requests in flight. */
  prefetch: number;
}

/** The API broke its own pagination contract (a cursor that repeats, items that are not a list). */
export class PaginationError extends EtlError {
  constructor(message: string) {
    super("failed", message);
    this.name = "PaginationError";
  }
}

/**
 * The pages of one resource in order, by the dataset's pagination style. Stops on an empty page,
 * on the total the API reports, when the style has no next page, or after `maxPages` (the last
 * page then has `truncated`). A cursor or next URL seen before is an error, never a loop.
 */
export async function* walkPages(client: HttpClient, source: ApiSource, options: PageWalkOptions): AsyncGenerator<Page & { truncated?: boolean }> {
  const { pagination } = source;
  if (pagination.style === "page" || pagination.style === "offset") {
    yield* walkNumbered(client, source, options);
    return;
  }
  const seen = new Set<string>();
  let url: string | undefined = options.firstUrl.toString();
  for (let count = 1; url !== undefined; count++) {
    const response = await client.getJson(url);
    const items = itemsOf(response, source);
    let next: string | undefined;
    if (pagination.style === "cursor") {
      const cursor = valueAtPath(response.body, pagination.cursorPath);
      if (cursor !== undefined && cursor !== null && cursor !== "") {
        const key = String(cursor);
        if (seen.has(key)) throw new PaginationError(`the API returned cursor ${JSON.stringify(key)} twice (after ${url}): stopping instead of looping`);
        seen.add(key);
        const nextUrl = new URL(options.firstUrl);
        nextUrl.searchParams.set(pagination.cursorParam, key);
        next = nextUrl.toString();
      }
    } else {
      const link = pagination.style === "next_url" ? valueAtPath(response.body, pagination.nextPath) : nextLink(response.headers.get("link"));
      if (typeof link === "string" && link !== "") {
        seen.add(url);
        next = new URL(link, url).toString();
        if (seen.has(next)) throw new PaginationError(`the API's next page ${next} was already read: stopping instead of looping`);
      }
    }
    if (items.length === 0) return;
    const truncated = count >= options.maxPages && next !== undefined;
    yield { url, items, ...(truncated && { truncated }) };
    if (truncated) return;
    url = next;
  }
}

/** page= / offset= styles: the next pages are requested while this one is handed out. */
async function* walkNumbered(client: HttpClient, source: ApiSource, options: PageWalkOptions): AsyncGenerator<Page & { truncated?: boolean }> {
  const pagination = source.pagination as Extract<ApiSource["pagination"], { style: "page" | "offset" }>;
  const urlOf = (index: number) => {
    const url = new URL(options.firstUrl);
    if (pagination.style === "page") url.searchParams.set(pagination.pageParam, String((pagination.firstPage ?? 1) + index));
    else url.searchParams.set(pagination.offsetParam, String(index * source.pageSize));
    return url.toString();
  };
  const ahead: Array<Promise<JsonResponse>> = [];
  let requested = 0;
  const request = () => {
    const response = client.getJson(urlOf(requested++));
    response.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
    ahead.push(response);
  };
  let received = 0;
  let total: number | undefined;
  try {
    for (let index = 0; index < options.maxPages; index++) {
      while (requested < Math.min(options.maxPages, index + Math.max(1, options.prefetch)) && (total === undefined || requested * source.pageSize < total)) request();
      if (!ahead.length) return;
      const response = await ahead.shift()!;
      const items = itemsOf(response, source);
      if (items.length === 0) return;
      const reported = pagination.totalPath ? valueAtPath(response.body, pagination.totalPath) : undefined;
      if (typeof reported === "number") total = reported;
      received += items.length;
      const done = total !== undefined && received >= total;
      const truncated = !done && index + 1 >= options.maxPages;
      yield { url: response.url, items, ...(truncated && { truncated }) };
      if (done) return;
    }
  } finally {
    await Promise.allSettled(ahead);
  }
}

function itemsOf(response: JsonResponse, source: ApiSource): unknown[] {
  const items = valueAtPath(response.body, source.itemsPath);
  if (!Array.isArray(items)) throw new PaginationError(`GET ${response.url}: no list of records at "${source.itemsPath || "(the body)"}"`);
  return items;
}

/** The rel="next" target of an RFC 8288 Link header. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (match && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(match[2]!)) return match[1];
  }
  return undefined;
}
