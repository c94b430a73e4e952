import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { FileStore } from "../../../core/storage/file_store";
import { loadMigrations, migrate } from "../../../core/db/migrate";
import { S3Store } from "../../../core/storage/s3_store";
import { createLogger } from "../../../core/log";
import { Metrics } from "../../../core/metrics/metrics";
import { compareKeys, mergeCompleteness, type ExpectedObject, type FoundObject } from "../../../processors/observability/completeness/merge";
import { readAhead } from "../../../core/executor";
import { checkCompleteness } from "../../../processors/observability/completeness/check";
import { listInKeyOrder } from "../../../processors/observability/completeness/listing";
import { AttachmentListingRepository } from "../../../repositories/attachment_listing";
import { startFaultProxy } from "../../harness/fault_proxy";
import { createBucket, createTestDatabase, getObjectText, parseCsv, putObject, runCommand, s3, seedAttachments, type TestDatabase } from "../../harness/fixtures";
import { scrape, startPushgateway, valueOf, type PushgatewayServer } from "../../harness/pushgateway_server";

let db: TestDatabase;
let dir: string;
let gateway: PushgatewayServer;

beforeAll(async () => {
  gateway = await startPushgateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.sql, await loadMigrations());
  // A linguistic collation on s3_key, as production databases have (en_US.UTF-8): "a-b" after
  // "a/c", "B" after "a". Only `collate "C"` puts the rows in S3's order then.
  await db.sql.unsafe(`create collation if not exists linguistic (provider = icu, locale = 'en-US')`);
  await db.sql.unsafe(`alter table attachment alter column s3_key type text collate linguistic`);
  dir = mkdtempSync(join(tmpdir(), "etl-completeness-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

// Keys whose byte order differs from a linguistic one and from JavaScript's UTF-16 order: U+FF5E
// sorts after U+1F600's surrogates in UTF-16, before them in UTF-8.
const KEYS = ["docs/a-b.pdf", "docs/a/c.pdf", "docs/B.pdf", "docs/a.pdf", "docs/é.pdf", "docs/z.pdf", "docs/中文.pdf", "docs/😀.pdf", "docs/～.pdf", "docs/Z/1.pdf", "docs/shared.pdf"];

function random(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function randomKeys(count: number, seed: number): string[] {
  const next = random(seed);
  const alphabet = ["a", "B", "-", "/", ".", "_", "é", "中", "😀", "～", "\uE000", "z", "0", " "];
  return Array.from({ length: count }, (_, i) => Array.from({ length: 1 + Math.floor(next() * 6) }, () => alphabet[Math.floor(next() * alphabet.length)]).join("") + `#${i}`);
}

describe("key order", () => {
  test("compareKeys is UTF-8 byte order, as S3 lists and as PostgreSQL sorts with collate \"C\"", async () => {
    const keys = [...KEYS, ...randomKeys(500, 7)];
    const bytewise = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...keys].sort(compareKeys)).toEqual(bytewise);
    // JavaScript's own order is not it: the surrogate pair of U+1F600 sorts before U+FF5E.
    expect([...keys].sort()).not.toEqual(bytewise);
    const rows = await db.sql<{ k: string }[]>`select k from unnest(${keys}::text[]) as k order by k collate "C"`;
    expect(rows.map((r) => r.k)).toEqual(bytewise);
  });

  test("the repository pages the agency's live attachments in byte order by key, then id, whatever the page size", async () => {
    const keys = [...KEYS, ...randomKeys(60, 3)];
    await seedAttachments(db.sql, [10, 11], [
      ...keys.map((key, i) => ({ id: i + 1, agencyId: 10, key, size: i })),
      { id: 500, agencyId: 10, key: "docs/shared.pdf", size: 1 },
      { id: 501, agencyId: 10, key: "docs/gone.pdf", deleted: true },
      { id: 502, agencyId: 11, key: "docs/other agency.pdf" },
    ]);
    await db.sql`update attachment set created_at = now() - interval '2 days' where id <> 3`;
    const expected = [...keys.map((key, i) => ({ key, id: String(i + 1) })), { key: "docs/shared.pdf", id: "500" }].sort((a, b) => compareKeys(a.key, b.key) || Number(a.id) - Number(b.id));
    const repository = new AttachmentListingRepository(db.sql);
    const readAll = async () => {
      for (const batchSize of [1, 2, 7, 1000]) {
        const rows = [];
        for await (const page of repository.listAttachmentsByKey(10, { batchSize, dueBefore: new Date(Date.now() - 3600_000) })) {
          expect(page.length).toBeLessThanOrEqual(batchSize);
          rows.push(...page);
        }
        expect(rows.map((r) => ({ key: r.s3Key, id: r.id }))).toEqual(expected);
        expect(rows.filter((r) => !r.due).map((r) => r.id)).toEqual(["3"]);
      }
    };
    await readAll();
    // An index in the column's own (linguistic) order does not serve; the one the job names does, with the same rows.
    await db.sql`create index attachment_linguistic_idx on attachment (agency_id, s3_key, id)`;
    expect(await repository.hasKeyOrderIndex()).toBe(false);
    await db.sql.unsafe(AttachmentListingRepository.KEY_ORDER_INDEX);
    expect(await repository.hasKeyOrderIndex()).toBe(true);
    await readAll();
  });

  test("a directory's walk order is sorted externally, through runs spilled to disk; S3's order passes through", async () => {
    const keys = randomKeys(120, 11).map((k) => `p/${k.replace(/\//g, "|").replace(/^\.+/, "x")}`);
    const root = join(dir, "listing");
    for (const key of [...keys, "elsewhere.txt"]) {
      mkdirSync(dirname(join(root, key)), { recursive: true });
      writeFileSync(join(root, key), key);
    }
    const sorted = [...keys].sort(compareKeys);
    const listed = async (iterable: AsyncIterable<FoundObject>) => {
      const out: FoundObject[] = [];
      for await (const object of iterable) out.push(object);
      return out;
    };
    for (const runObjects of [7, 1000]) {
      const objects = await listed(listInKeyOrder(new FileStore(root), "p/", { runObjects }));
      expect(objects.map((o) => o.key)).toEqual(sorted);
      expect(objects.every((o) => o.size === Buffer.byteLength(o.key))).toBe(true);
    }
    const bucket = await createBucket();
    await Promise.all(keys.slice(0, 30).map((key) => putObject(bucket, key, key)));
    const fromS3 = await listed(listInKeyOrder(new S3Store(bucket, s3(), { listPageSize: 2 }), "p/"));
    expect(fromS3.map((o) => o.key)).toEqual([...keys.slice(0, 30)].sort(compareKeys));
  });

  test("the merge refuses input out of key order instead of reporting nonsense", async () => {
    async function* of<T>(items: T[]) {
      yield* items;
    }
    const wanted = (key: string): ExpectedObject => ({ key, size: 1, attachmentId: "1", due: true });
    const options = { ignore: () => false, report: () => {} };
    await expect(mergeCompleteness(of([wanted("b"), wanted("a")]), of([]), options)).rejects.toThrow(`the database's attachments is not in key order: "a" came after "b"`);
    await expect(mergeCompleteness(of([]), of([{ key: "x", size: 1 }, { key: "x", size: 1 }]), options)).rejects.toThrow("the destination's listing is not in key order");
    expect(await mergeCompleteness(of([wanted("a"), wanted("a"), wanted("c")]), of([{ key: "a", size: 1 }, { key: "b", size: 1 }]), options)).toEqual({
      expected: 3,
      present: 2,
      sizeMismatch: 0,
      missing: 1,
      unexpected: 1,
      pending: 0,
    });
  });
});

test("readAhead keeps order, stays within its limit, passes an error on after the items before it, and stops its source early", async () => {
  let produced = 0;
  let closed = false;
  async function* numbers(count: number, failAt?: number) {
    try {
      for (let i = 0; i < count; i++) {
        if (i === failAt) throw new Error(`failed at ${i}`);
        produced = i + 1;
        await Bun.sleep(0);
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  const seen: number[] = [];
  for await (const n of readAhead(numbers(50), 5)) {
    seen.push(n);
    await Bun.sleep(1);
    // The consumer holds n; the producer is at most the taken batch plus the limit ahead.
    expect(produced - n).toBeLessThanOrEqual(11);
  }
  expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
  const before: number[] = [];
  await expect((async () => {
    for await (const n of readAhead(numbers(50, 7), 3)) before.push(n);
  })()).rejects.toThrow("failed at 7");
  expect(before).toEqual([0, 1, 2, 3, 4, 5, 6]);
  closed = false;
  for await (const n of readAhead(numbers(1000), 4)) if (n === 2) break;
  expect(closed).toBe(true);
  expect(produced).toBeLessThan(20);
});

test("a listing page that fails is fetched again alone: the counts and the report hold each object once", async () => {
  const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
  try {
    const bucket = await createBucket();
    const keys = Array.from({ length: 9 }, (_, i) => `f${i}.pdf`);
    await seedAttachments(db.sql, [10], keys.map((key, i) => ({ id: i + 1, agencyId: 10, key, size: 1 })));
    for (const key of keys.slice(1)) await putObject(bucket, `agency_id=10/${key}`, "x");
    const { S3Client } = await import("@aws-sdk/client-s3");
    const client = new S3Client({ endpoint: proxy.url, region: "us-east-1", forcePathStyle: true, maxAttempts: 1 });
    const lines: string[] = [];
    const reports = join(dir, "reports");
    proxy.failNext(1, 503, { when: (request) => request.path.includes("continuation-token") });
    const counts = await checkCompleteness({
      attachments: new AttachmentListingRepository(db.sql),
      agencyId: 10,
      destination: new S3Store(bucket, client, { listPageSize: 2 }),
      bucketLabel: bucket,
      prefix: "agency_id=10/",
      batchSize: 2,
      minRatio: 1,
      report: { store: new FileStore(reports), key: "report.csv" },
      log: createLogger({ format: "json", level: "debug", write: (line) => lines.push(line) }),
      metrics: new Metrics(),
      progress: { setTotal: () => {}, advance: () => {} },
      signal: new AbortController().signal,
    });
    // Four pages, the second sent twice by the store's retry policy (core/storage/s3_retry.ts).
    expect(proxy.requests.byMethod.GET).toBe(5);
    expect(counts).toEqual({ expected: 9, present: 8, sizeMismatch: 0, missing: 1, unexpected: 0, pending: 0, failed: 1 });
    expect(readFileSync(join(reports, "report.csv"), "utf8")).toBe("status,destination_key,attachment_id,expected_size,actual_size\nmissing,agency_id=10/f0.pdf,1,1,\n");
    client.destroy();
  } finally {
    await proxy.stop();
  }
});

type Destination = { kind: "s3"; bucket: string } | { kind: "file"; root: string };

/** The destination get_s3_files copied to, reachable for the test to break it. */
function destinationOf(kind: "s3" | "file", bucket: string): Destination {
  return kind === "s3" ? { kind, bucket } : { kind, root: join(dir, "destination") };
}
const argOf = (d: Destination) => (d.kind === "s3" ? d.bucket : `file://${d.root}`);
const bucketLabelOf = (d: Destination) => (d.kind === "s3" ? d.bucket : `file://${d.root}`);

async function put(d: Destination, key: string, body: string): Promise<void> {
  if (d.kind === "s3") return putObject(d.bucket, key, body);
  mkdirSync(dirname(join(d.root, key)), { recursive: true });
  writeFileSync(join(d.root, key), body);
}

async function remove(d: Destination, key: string): Promise<void> {
  if (d.kind === "s3") await s3().send(new DeleteObjectCommand({ Bucket: d.bucket, Key: key }));
  else unlinkSync(join(d.root, key));
}

describe.each(["s3", "file"] as const)("completeness of get_s3_files to %s", (kind) => {
  test("all there exits 0; missing, changed and unexpected objects are found, reported and fail the run under --min-ratio", async () => {
    const source = await createBucket();
    const destination = destinationOf(kind, kind === "s3" ? await createBucket() : "");
    const body = (key: string) => `content of ${key}`;
    const attachments = KEYS.map((key, i) => ({ id: i + 1, agencyId: 10, key, size: Buffer.byteLength(body(key)) }));
    // Two attachments of one object, one whose size the database does not know, one deleted.
    attachments.push({ id: 50, agencyId: 10, key: "docs/shared.pdf", size: Buffer.byteLength(body("docs/shared.pdf")) });
    await seedAttachments(db.sql, [10], [...attachments, { id: 60, agencyId: 10, key: "docs/unsized.pdf" }, { id: 70, agencyId: 10, key: "docs/deleted.pdf", deleted: true }]);
    await db.sql`update attachment set created_at = now() - interval '2 days'`;
    for (const key of [...KEYS, "docs/unsized.pdf", "docs/deleted.pdf"]) await putObject(source, key, body(key));
    const copy = await runCommand(["jobs/get_s3_files.ts"], ["--agency-id", "10", "--source-bucket", source, "--destination-bucket", argOf(destination)], { DATABASE_URL: db.url });
    expect(copy.exitCode).toBe(0);

    const check = (argv: string[]) =>
      runCommand(["jobs/freshness_monitor.ts"], ["--agency-id", "10", "--destination-bucket", argOf(destination), "--batch-size", "2", ...argv], { DATABASE_URL: db.url, PUSHGATEWAY_URL: gateway.url });
    const complete = await check([]);
    expect(complete.exitCode).toBe(0);
    expect(complete.summary).toMatchObject({ status: "succeeded", counts: { expected: 13, present: 13, sizeMismatch: 0, missing: 0, unexpected: 0, pending: 0, failed: 0 } });
    // Without the key-order index the check works, and says which index to create.
    expect(complete.events.find((e) => e.level === "warn" && String(e.msg).includes("no index"))?.fix).toBe(AttachmentListingRepository.KEY_ORDER_INDEX);
    const group = { job: "freshness_monitor", agency_id: "10", bucket: bucketLabelOf(destination), prefix: "agency_id=10/" };
    expect(valueOf(await scrape(gateway), "etl_completeness_ratio", group)).toBe(1);

    // Break it: one object gone, one rewritten with another size, one foreign object, the deleted
    // attachment's object, an upload get_s3_files has not copied yet and an old one it never did.
    await remove(destination, "agency_id=10/docs/é.pdf");
    await put(destination, "agency_id=10/docs/😀.pdf", "truncated");
    await put(destination, "agency_id=10/docs/zz extra ü.pdf", "extra");
    await put(destination, "agency_id=10/docs/deleted.pdf", body("docs/deleted.pdf"));
    await seedAttachments(db.sql, [10], [
      { id: 80, agencyId: 10, key: "docs/new upload.pdf", size: 3 },
      { id: 81, agencyId: 10, key: "docs/a/never copied.pdf", size: 4 },
    ]);
    await db.sql`update attachment set created_at = now() - interval '3 days' where id = 81`;
    const reports = join(dir, "reports");
    // The report's location must exist, as every bucket given to a job must.
    const nowhere = await check(["--report-to", `file://${reports}`]);
    expect(nowhere.exitCode).toBe(2);
    expect(String(nowhere.summary?.error)).toBe(`--report-to file://${reports} does not exist`);
    mkdirSync(reports);
    const broken = await check(["--report-to", `file://${reports}`]);
    expect(broken.exitCode).toBe(3);
    expect(broken.summary).toMatchObject({ status: "partial", counts: { expected: 15, present: 11, sizeMismatch: 1, missing: 3, unexpected: 2, pending: 0, failed: 4 } });
    const event = broken.events.find((e) => e.event === "completeness.result")!;
    expect(event).toMatchObject({ level: "error", ratio: 11 / 15, minRatio: 1 });
    expect((event.firstMissing as Array<{ key: string }>).map((d) => d.key)).toEqual(["agency_id=10/docs/a/never copied.pdf", "agency_id=10/docs/new upload.pdf", "agency_id=10/docs/é.pdf"]);
    expect(event.firstSizeMismatch).toEqual([{ kind: "size_mismatch", key: "agency_id=10/docs/😀.pdf", attachmentId: "8", expectedSize: Buffer.byteLength(body("docs/😀.pdf")), actualSize: 9 }]);
    expect((event.firstUnexpected as Array<{ key: string }>).map((d) => d.key)).toEqual(["agency_id=10/docs/deleted.pdf", "agency_id=10/docs/zz extra ü.pdf"]);
    expect(event.report).toBe(`file://${reports}/completeness/agency_id=10/${broken.summary!.runId}.csv`);
    const rows = parseCsv(readFileSync(join(reports, `completeness/agency_id=10/${broken.summary!.runId}.csv`), "utf8"));
    expect(rows.map((r) => `${r.status} ${r.destination_key} ${r.attachment_id} ${r.expected_size} ${r.actual_size}`)).toEqual([
      "missing agency_id=10/docs/a/never copied.pdf 81 4 ",
      `unexpected agency_id=10/docs/deleted.pdf   ${Buffer.byteLength(body("docs/deleted.pdf"))}`,
      "missing agency_id=10/docs/new upload.pdf 80 3 ",
      "unexpected agency_id=10/docs/zz extra ü.pdf   5",
      `missing agency_id=10/docs/é.pdf 5 ${Buffer.byteLength(body("docs/é.pdf"))} `,
      `size_mismatch agency_id=10/docs/😀.pdf 8 ${Buffer.byteLength(body("docs/😀.pdf"))} 9`,
    ]);
    expect(valueOf(await scrape(gateway), "etl_completeness_ratio", group)).toBeCloseTo(11 / 15, 10);

    // The new upload is within the grace: pending, not missing. A threshold under the ratio passes, with a warning.
    const lenient = await check(["--grace", "1h", "--min-ratio", "0.7"]);
    expect(lenient.exitCode).toBe(0);
    expect(lenient.summary!.counts).toMatchObject({ expected: 14, present: 11, missing: 2, sizeMismatch: 1, pending: 1, failed: 0 });
    expect(lenient.events.find((e) => e.event === "completeness.result")).toMatchObject({ level: "warn", ratio: 11 / 14 });
    // A dry run writes no report.
    const dry = await check(["--report-to", `file://${reports}`, "--dry-run"]);
    expect(dry.exitCode).toBe(3);
    expect(dry.events.find((e) => e.event === "completeness.result")!.report).toBeUndefined();
  });
});

test("a report in an S3 bucket; an unknown agency or a missing destination exits 2", async () => {
  const destination = await createBucket();
  await seedAttachments(db.sql, [10], [{ id: 1, agencyId: 10, key: "a.pdf", size: 1 }]);
  const run = (argv: string[]) => runCommand(["jobs/freshness_monitor.ts"], argv, { DATABASE_URL: db.url });
  const reported = await run(["--agency-id", "10", "--destination-bucket", destination, "--destination-prefix", "archive/", "--report-to", destination]);
  expect(reported.exitCode).toBe(3);
  expect(reported.summary!.counts).toMatchObject({ expected: 1, missing: 1 });
  expect(await getObjectText(destination, `completeness/agency_id=10/${reported.summary!.runId}.csv`)).toBe("status,destination_key,attachment_id,expected_size,actual_size\nmissing,archive/a.pdf,1,1,\n");
  const unknown = await run(["--agency-id", "99", "--destination-bucket", destination]);
  expect([unknown.exitCode, unknown.summary!.error]).toEqual([2, "--agency-id 99: no such agency"]);
  const missing = await run(["--agency-id", "10", "--destination-bucket", "no-such-bucket-anywhere"]);
  expect([missing.exitCode, missing.summary!.error]).toEqual([2, "--destination-bucket s3://no-such-bucket-anywhere does not exist"]);
  const noDir = await run(["--agency-id", "10", "--destination-bucket", `file://${dir}/nothing`]);
  expect([noDir.exitCode, noDir.summary!.error]).toEqual([2, `--destination-bucket file://${dir}/nothing does not exist`]);
});
