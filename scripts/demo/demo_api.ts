/**
 * The application API the demo's ingest_api pulls from: service requests of agency 10 under
 * /v1/service-requests, cursor-paginated, filtered by `updated_since`, behind a bearer token.
 * A few records are invalid (rejected in silver) and some ids come twice (deduplicated).
 */
export const DEMO_TOKEN = "demo-token-not-a-secret";

export function startDemoApi(count = 1200): { url: string; stop(): void } {
  const start = Date.parse("2026-11-01T00:00:00Z");
  const records = Array.from({ length: count }, (_, i) => ({
    // Every 50th record is a later edit of the one before it.
    id: i % 50 === 49 ? i : i + 1,
    agency_id: i % 7 === 0 ? 20 : 10,
    title: `  Request ${i + 1} `,
    status: i % 97 === 0 ? "lost" : i % 3 ? "closed" : "OPEN",
    reporter_email: i % 4 ? ` Resident${i}@Example.org ` : null,
    priority: (i % 5) + 1,
    created_at: new Date(start + i * 60_000).toISOString(),
    updated_at: new Date(start + i * 60_000).toISOString(),
  }));
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      if (request.headers.get("authorization") !== `Bearer ${DEMO_TOKEN}`) return Response.json({ error: "unauthorized" }, { status: 401 });
      const url = new URL(request.url);
      if (url.pathname !== "/v1/service-requests") return Response.json({ error: "not found" }, { status: 404 });
      const since = url.searchParams.get("updated_since") ?? "";
      const matching = records.filter((r) => r.updated_at >= since);
      const offset = Number(url.searchParams.get("cursor") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 100);
      const next = offset + limit < matching.length ? String(offset + limit) : null;
      return Response.json({ data: matching.slice(offset, offset + limit), next_cursor: next });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}
