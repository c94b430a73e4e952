/**
 * The application API that ingest_api pulls from, served locally (the real one cannot run here):
 * service requests under /v1/service-requests (cursor pagination, incremental `updated_since`,
 * bearer token), the same records under /styles/<style> in every other pagination style, and
 * faults queued by the test (429 with Retry-After, 5xx, a repeated cursor, an expired token).
 */
export interface ApiRecord {
  id: number;
  agency_id: number;
  title: string;
  status: string;
  reporter_email: string | null;
  priority: number | null;
  created_at: string;
  updated_at: string;
}

export interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Only requests whose path starts with this. */
  path?: string;
}

export interface ApiServer {
  url: string;
  token: string;
  /** The records served, in updated_at order; tests change them between runs. */
  records: ApiRecord[];
  /** Answered, in order, to the next requests instead of the records. */
  faults: Fault[];
  /** Every request: path and query, and when it arrived. */
  requests: Array<{ path: string; at: number }>;
  /** The cursor endpoint hands out the same cursor again from this page on (a broken API). */
  repeatCursorAfter?: number;
  /** Every answer waits this long (to see concurrency and to give a kill time to land). */
  latencyMs: number;
  /** The most requests that were in flight at once. */
  maxInFlight: number;
  stop(): void;
}

/** `count` service requests of agency 10, one minute apart from `start`. */
export function makeRecords(count: number, start = Date.parse("2026-11-01T00:00:00Z"), firstId = 1): ApiRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const at = new Date(start + i * 60_000).toISOString();
    return {
      id: firstId + i,
      agency_id: 10,
      title: `  request ${firstId + i} `,
      status: i % 3 === 0 ? "OPEN" : "closed",
      reporter_email: i % 4 === 0 ? null : ` Resident${firstId + i}@Example.COM `,
      priority: (i % 5) + 1,
      created_at: at,
      updated_at: at,
    };
  });
}

export function startApiServer(init: { token?: string; records?: ApiRecord[] } = {}): ApiServer {
  const state: Omit<ApiServer, "url" | "stop"> = { token: init.token ?? "api-token-5f2e9a17c3", records: init.records ?? [], faults: [], requests: [], latencyMs: 0, maxInFlight: 0 };
  let inFlight = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      try {
        if (state.latencyMs) await Bun.sleep(state.latencyMs);
        return answer(request);
      } finally {
        inFlight--;
      }
    },
  });
  function answer(request: Request): Response {
    const url = new URL(request.url);
    state.requests.push({ path: url.pathname + url.search, at: Date.now() });
    const faultAt = state.faults.findIndex((f) => !f.path || url.pathname.startsWith(f.path));
    if (faultAt >= 0) {
      const [fault] = state.faults.splice(faultAt, 1);
      return new Response(fault!.body ?? `{"error":"injected ${fault!.status}"}`, { status: fault!.status, headers: fault!.headers });
    }
    if (request.headers.get("authorization") !== `Bearer ${state.token}`) return Response.json({ error: "token expired or invalid" }, { status: 401 });
    const since = url.searchParams.get("updated_since");
    const records = since ? state.records.filter((r) => r.updated_at >= since) : state.records;
    if (url.pathname === "/v1/service-requests") return cursorPage(url, records, api);
    const style = url.pathname.replace(/^\/styles\//, "");
    return styledPage(style, url, records);
  }
  const api: ApiServer = Object.assign(state, { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) });
  return api;
}

/** `{data, next_cursor}`; the cursor is the offset of the next page, base64-encoded. */
function cursorPage(url: URL, records: ApiRecord[], api: ApiServer): Response {
  const limit = Number(url.searchParams.get("limit") ?? 100);
  const cursor = url.searchParams.get("cursor");
  const offset = cursor ? Number(atob(cursor)) : 0;
  const page = records.slice(offset, offset + limit);
  const pageIndex = offset / limit;
  const nextOffset = api.repeatCursorAfter !== undefined && pageIndex >= api.repeatCursorAfter ? offset : offset + limit;
  const next = nextOffset < records.length ? btoa(String(nextOffset)) : null;
  return Response.json({ data: page, next_cursor: next });
}

function styledPage(style: string, url: URL, records: ApiRecord[]): Response {
  switch (style) {
    case "next_url": {
      const page = Number(url.searchParams.get("page") ?? 1);
      const size = Number(url.searchParams.get("size") ?? 100);
      const items = records.slice((page - 1) * size, page * size);
      const next = page * size < records.length ? `${url.pathname}?page=${page + 1}&size=${size}` : null;
      return Response.json({ results: items, links: { next } });
    }
    case "link_header": {
      const offset = Number(url.searchParams.get("from") ?? 0);
      const size = Number(url.searchParams.get("size") ?? 100);
      const headers: Record<string, string> = {};
      if (offset + size < records.length) headers.link = `<${url.origin}${url.pathname}?from=${offset + size}&size=${size}>; rel="next", <${url.origin}${url.pathname}?from=0&size=${size}>; rel="first"`;
      return Response.json(records.slice(offset, offset + size), { headers });
    }
    case "page": {
      const page = Number(url.searchParams.get("page") ?? 1);
      const size = Number(url.searchParams.get("per_page") ?? 100);
      return Response.json({ items: records.slice((page - 1) * size, page * size), total: records.length });
    }
    case "offset": {
      const offset = Number(url.searchParams.get("offset") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 100);
      return Response.json({ items: records.slice(offset, offset + limit), meta: { total: records.length } });
    }
    default:
      return Response.json({ error: `no such style ${style}` }, { status: 404 });
  }
}
