/**
 * `bun scripts/bench/completeness.ts`: freshness_monitor's completeness check (get_s3_files's
 * destination against the database) on 1,000,000 attachments, against the usual ways of doing it
 * by hand, in one run:
 *
 *   job     bun jobs/freshness_monitor.ts --agency-id 1 --destination-bucket B
 *   shell   aws s3 ls --recursive | sort, psql | sort, join | awk          (S3)
 *           find -printf | sort, psql | sort, join | awk                      (directory)
 *   pandas  psycopg2 into a DataFrame, `aws s3 ls --recursive` into another, an outer merge
 *           (Debian's /usr/bin/python3 with python3-pandas and python3-psycopg2)
 *
 * The database holds agency 1 with --count attachments (keys spread over 65,536 folders as
 * get_s3_files's sources are, one in ten with a non-ASCII name) and agency 2 with a tenth of them,
 * to show the job's memory does not grow with the count. The destination is what a copy left,
 * broken on purpose: one object in 1000 missing, one in 997 of another size, 500 unexpected.
 * S3 is a listing server started here (ListObjectsV2 over the same keys, in a child process of its
 * own, so neither side's memory counts the other): moto lists a million keys in hours. The
 * directory is --count files (sparse, so sizes cost no disk). Every run's counts are checked
 * against those the breakage makes, so a broken run cannot look fast.
 *
 * Each tool runs as a child under /usr/bin/time (wall, CPU, peak RSS of its largest process),
 * tools interleaved per round, medians over --rounds. The job runs without and then with the index
 * the check wants, `attachment (agency_id, s3_key collate "C", id)`.
 *
 * Options: --count 1000000 --rounds 3 --no-file (skip the directory). Reuses DATABASE_URL (a role
 * that may CREATE DATABASE) when set; otherwise starts PostgreSQL like the tests do.
 */
import { once } from "node:events";
import { createWriteStream, mkdirSync, closeSync, ftruncateSync, openSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { compareKeys } from "../../processors/observability/completeness/merge";
import { createBenchDatabase } from "./database";
import { measureChild, median } from "./measure";
import { startPostgres } from "../../tests/harness/postgres_server";
import { freePort, killTracked, track, waitUntil } from "../../tests/harness/processes";

const PYTHON = "/usr/bin/python3";
const BUCKET = "bench-destination";
const MISSING_EVERY = 1000;
const RESIZED_EVERY = 997;
const UNEXPECTED = 500;

interface Counts {
  expected: number;
  present: number;
  missing: number;
  sizeMismatch: number;
  unexpected: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: "string", default: "1000000" }, rounds: { type: "string", default: "3" }, "no-file": { type: "boolean", default: false } } });
  const count = Number(values.count);
  const rounds = Number(values.rounds);
  const work = await mkdtemp(join(tmpdir(), "etl-bench-completeness-"));
  let adminUrl = process.env.DATABASE_URL;
  const stopPostgres = adminUrl ? undefined : await startPostgres().then((pg) => ((adminUrl = pg.url), pg.stop));
  const db = await createBenchDatabase(adminUrl!, `etl_bench_completeness_${process.pid}`, (sql) => seed(sql, count));
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    console.log(`seeded ${count.toLocaleString()} + ${(count / 10).toLocaleString()} attachments`);
    const listing = join(work, "listing.tsv");
    const expected = await writeDestinationListing(sql, listing);
    const port = await freePort();
    const server = track(Bun.spawn(["bun", import.meta.path, "--serve", listing, String(port)], { stdout: "inherit", stderr: "inherit" }));
    const endpoint = `http://127.0.0.1:${port}`;
    await waitUntil("listing server", server, async () => (await fetch(`${endpoint}/${BUCKET}?list-type=2&max-keys=1`)).ok);
    const s3Env = { S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: "bench", AWS_SECRET_ACCESS_KEY: "bench-secret", AWS_REGION: "us-east-1" };
    const fileRoot = values["no-file"] ? undefined : join(work, "destination");
    if (fileRoot) await writeDestinationFiles(listing, fileRoot);

    const job = (agency: number, destination: string) => ({
      argv: ["bun", "jobs/freshness_monitor.ts", "--agency-id", String(agency), "--destination-bucket", destination],
      env: { ...s3Env, DATABASE_URL: db.url, LOG_FORMAT: "json" },
      isJob: true,
      counts: (out: string) => summaryCounts(out),
    });
    const shell = (destination: "s3" | "file") => ({
      argv: ["bash", "-c", shellPeer(destination, fileRoot)],
      env: { ...s3Env, DB: db.url, EP: endpoint, LC_ALL: "C" },
      counts: (out: string) => lastJson(out),
    });
    const pandas = { argv: [PYTHON, "-c", PANDAS_PEER], env: { ...s3Env, DB: db.url, EP: endpoint }, counts: (out: string) => lastJson(out) };
    const tools: Array<{ label: string; tool: Tool; expected: Counts }> = [
      { label: "job, S3", tool: job(1, BUCKET), expected: expected.get(1)! },
      { label: "job, S3, a tenth", tool: job(2, BUCKET), expected: expected.get(2)! },
      { label: "shell, S3", tool: shell("s3"), expected: expected.get(1)! },
      { label: "pandas, S3", tool: pandas, expected: expected.get(1)! },
      ...(fileRoot
        ? [
            { label: "job, directory", tool: job(1, `file://${fileRoot}`), expected: expected.get(1)! },
            { label: "shell, directory", tool: shell("file"), expected: expected.get(1)! },
          ]
        : []),
    ];
    const results = new Map<string, Measured[]>();
    const measureAll = async (entries: typeof tools, suffix = "") => {
      for (let round = 0; round < rounds; round++) {
        // Alternate the order per round, so no tool always runs on a warm cache.
        for (const entry of round % 2 ? [...entries].reverse() : entries) {
          const measured = await measure(entry.tool, entry.expected, entry.label + suffix);
          const key = entry.label + suffix;
          results.set(key, [...(results.get(key) ?? []), measured]);
          console.log(`  round ${round + 1} ${key.padEnd(32)} ${(measured.ms / 1000).toFixed(1)} s ${measured.rssMiB.toFixed(0)} MiB`);
        }
      }
    };
    console.log("without an index on (agency_id, s3_key collate \"C\", id):");
    await measureAll(tools);
    await sql`create index attachment_agency_key_idx on attachment (agency_id, s3_key collate "C", id)`;
    await sql`analyze attachment`;
    console.log("with it:");
    await measureAll(tools.filter((t) => t.label.startsWith("job")), ", indexed");
    server.kill();
    report(results, count);
  } finally {
    await sql.end();
    await db.drop();
    stopPostgres?.();
    killTracked();
    await rm(work, { recursive: true, force: true });
  }
}

/** Agency 1 with `count` attachments, agency 2 with a tenth, keys as get_s3_files's sources name them. */
async function seed(sql: postgres.Sql, count: number): Promise<void> {
  await sql`insert into agency (id, name) values (1, 'Big Agency'), (2, 'Small Agency')`;
  for (const [agency, first, n] of [[1, 1, count], [2, count + 1, count / 10]] as const) {
    await sql`
      insert into attachment (id, agency_id, s3_key, file_name, size_bytes, created_at)
      select i, ${agency},
             'uploads/' || substr(md5(i::text), 1, 2) || '/' || substr(md5(i::text), 3, 2) || '/' || i || case when i % 10 = 0 then '-résumé' else '' end || '.pdf',
             'f.pdf', 1 + (i * 7919) % 1000000, now() - interval '2 days'
      from generate_series(${first}::bigint, ${first + n - 1}::bigint) as i`;
  }
  await sql`analyze attachment`;
}

/**
 * The destination as get_s3_files left it, then broken: every object in key order as
 * `key<TAB>size`, minus one in MISSING_EVERY, one in RESIZED_EVERY a byte larger, and UNEXPECTED
 * objects after agency 1's. Returns each agency's counts a correct check reports.
 */
async function writeDestinationListing(sql: postgres.Sql, path: string): Promise<Map<number, Counts>> {
  const expected = new Map<number, Counts>();
  const out = createWriteStream(path);
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, "drain");
  };
  for (const agency of [1, 2]) {
    const counts: Counts = { expected: 0, present: 0, missing: 0, sizeMismatch: 0, unexpected: 0 };
    let i = 0;
    const rows = sql`select s3_key as key, size_bytes::float8 as size from attachment where agency_id = ${agency} order by s3_key collate "C", id`.cursor(10_000);
    for await (const page of rows) {
      for (const row of page as Array<{ key: string; size: number }>) {
        i++;
        counts.expected++;
        if (i % MISSING_EVERY === 0) counts.missing++;
        else if (i % RESIZED_EVERY === 0) (counts.sizeMismatch++, await write(`agency_id=${agency}/${row.key}\t${row.size + 1}\n`));
        else (counts.present++, await write(`agency_id=${agency}/${row.key}\t${row.size}\n`));
      }
    }
    // "zz-unexpected/" sorts after "uploads/": the listing stays in key order.
    for (let n = 0; n < UNEXPECTED; n++) await write(`agency_id=${agency}/zz-unexpected/${String(n).padStart(4, "0")}.pdf\t1\n`);
    counts.unexpected = UNEXPECTED;
    expected.set(agency, counts);
  }
  out.end();
  await once(out, "finish");
  return expected;
}

/** The listing as a directory of sparse files (a size costs no disk). */
async function writeDestinationFiles(listing: string, root: string): Promise<void> {
  const started = performance.now();
  const made = new Set<string>();
  for await (const line of readLines(listing)) {
    const [key, size] = line.split("\t") as [string, string];
    const path = join(root, key);
    const folder = dirname(path);
    if (!made.has(folder)) mkdirSync(folder, { recursive: true }), made.add(folder);
    const fd = openSync(path, "w");
    ftruncateSync(fd, Number(size));
    closeSync(fd);
  }
  console.log(`wrote the destination directory in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

async function* readLines(path: string): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of Bun.file(path).stream().pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    yield* lines;
  }
  if (rest) yield rest;
}

interface Tool {
  argv: string[];
  env: Record<string, string>;
  /** The job: exits 3 where the destination is broken (under its --min-ratio), else 0. */
  isJob?: boolean;
  counts(stdout: string): Counts | undefined;
}

interface Measured {
  ms: number;
  cpuMs: number;
  rssMiB: number;
}

/** Runs a tool under /usr/bin/time; a failed run or wrong counts stop the benchmark. */
async function measure(tool: Tool, expected: Counts, label: string): Promise<Measured> {
  const okCodes = [tool.isJob && expected.missing + expected.sizeMismatch > 0 ? 3 : 0];
  const { ms, cpuMs, rssMiB, stdout, stderr } = await measureChild(tool.argv, { env: tool.env, okCodes });
  const counts = tool.counts(stdout);
  const wanted = (c: Counts | undefined) => c && { expected: c.expected, present: c.present, missing: c.missing, sizeMismatch: c.sizeMismatch, unexpected: c.unexpected };
  if (JSON.stringify(wanted(counts)) !== JSON.stringify(wanted(expected))) {
    throw new Error(`${label}: counts ${JSON.stringify(wanted(counts))}, expected ${JSON.stringify(expected)}\n${stderr.slice(-2000)}${stdout.slice(-2000)}`);
  }
  return { ms, cpuMs, rssMiB };
}

function summaryCounts(stdout: string): Counts | undefined {
  const summary = stdout.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l))[0];
  return summary?.counts;
}

function lastJson(stdout: string): Counts | undefined {
  const line = stdout.trim().split("\n").pop();
  return line?.startsWith("{") ? JSON.parse(line) : undefined;
}

/** Both sides sorted bytewise (LC_ALL=C), joined on the key, counted by awk. */
function shellPeer(destination: "s3" | "file", fileRoot: string | undefined): string {
  const listing =
    destination === "s3"
      ? `aws s3 ls --recursive s3://${BUCKET}/agency_id=1/ --endpoint-url "$EP" | awk '{ print $4 "\\t" $3 }'`
      : `find '${fileRoot}/agency_id=1' -type f -printf 'agency_id=1/%P\\t%s\\n'`;
  // Both sides in the background and waited for, so /usr/bin/time counts their CPU and memory.
  return `set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
psql "$DB" -At -F $'\\t' -c "select 'agency_id=1/' || s3_key, size_bytes from attachment where agency_id = 1 and deleted_at is null" | sort -t $'\\t' -k1,1 > "$tmp/db" &
database=$!
${listing} | sort -t $'\\t' -k1,1 > "$tmp/destination" &
destination=$!
wait $database
wait $destination
join -t $'\\t' -a1 -a2 -e NULL -o 0,1.2,2.2 "$tmp/db" "$tmp/destination" |
awk -F'\\t' '$2 == "NULL" { u++; next } $3 == "NULL" { m++; next } $2 != $3 { s++; next } { p++ }
  END { printf "{\\"expected\\":%d,\\"present\\":%d,\\"missing\\":%d,\\"sizeMismatch\\":%d,\\"unexpected\\":%d}\\n", p + m + s, p, m, s, u }'`;
}

const PANDAS_PEER = `
import io, json, os, subprocess
import pandas as pd, psycopg2
with psycopg2.connect(os.environ["DB"]) as conn:
    db = pd.read_sql("select 'agency_id=1/' || s3_key as key, size_bytes from attachment where agency_id = 1 and deleted_at is null", conn)
ls = subprocess.run(["aws", "s3", "ls", "--recursive", "s3://${BUCKET}/agency_id=1/", "--endpoint-url", os.environ["EP"]], check=True, capture_output=True).stdout
dest = pd.read_csv(io.BytesIO(ls), sep=r"\\s+", names=["date", "time", "size", "key"], usecols=["size", "key"])
merged = db.merge(dest, on="key", how="outer", indicator=True)
both = merged[merged["_merge"] == "both"]
same = int((both["size_bytes"] == both["size"]).sum())
print(json.dumps({"expected": int(len(db)), "present": same, "missing": int((merged["_merge"] == "left_only").sum()),
                  "sizeMismatch": int(len(both)) - same, "unexpected": int((merged["_merge"] == "right_only").sum())}))
`;

function report(results: Map<string, Measured[]>, count: number): void {
  console.log(`\n${count.toLocaleString()} attachments (medians of ${[...results.values()][0]!.length} rounds; peak RSS of the largest process)`);
  console.log(`  ${"".padEnd(34)} ${"wall s".padStart(8)} ${"CPU s".padStart(8)} ${"RSS MiB".padStart(8)}`);
  const rows = [...results].map(([label, runs]) => ({ label, ms: median(runs.map((r) => r.ms)), cpuMs: median(runs.map((r) => r.cpuMs)), rssMiB: Math.max(...runs.map((r) => r.rssMiB)) }));
  for (const r of rows) console.log(`  ${r.label.padEnd(34)} ${(r.ms / 1000).toFixed(1).padStart(8)} ${(r.cpuMs / 1000).toFixed(1).padStart(8)} ${r.rssMiB.toFixed(0).padStart(8)}`);
  const of = (label: string) => rows.find((r) => r.label === label);
  const ratio = (a: string, b: string) => {
    const [x, y] = [of(a), of(b)];
    if (x && y) console.log(`  ${a} / ${b}: time ${(x.ms / y.ms).toFixed(2)}x, RSS ${(x.rssMiB / y.rssMiB).toFixed(2)}x`);
  };
  ratio("job, S3, indexed", "shell, S3");
  ratio("job, S3, indexed", "pandas, S3");
  ratio("job, S3", "shell, S3");
  ratio("job, S3", "job, S3, indexed");
  ratio("job, S3, indexed", "job, S3, a tenth, indexed");
  ratio("job, directory, indexed", "shell, directory");
}

/**
 * A ListObjectsV2 endpoint over a sorted `key<TAB>size` file: pages by index (the continuation
 * token), prefix by binary search, keys URL-encoded when asked (the AWS CLI asks).
 */
async function serveListing(path: string, port: number): Promise<void> {
  const keys: string[] = [];
  const sizes: number[] = [];
  for await (const line of readLines(path)) {
    const tab = line.indexOf("\t");
    keys.push(line.slice(0, tab));
    sizes.push(Number(line.slice(tab + 1)));
  }
  const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const firstAtLeast = (key: string) => {
    let [low, high] = [0, keys.length];
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compareKeys(keys[middle]!, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  Bun.serve({
    port,
    hostname: "127.0.0.1",
    fetch(request) {
      const url = new URL(request.url);
      const prefix = url.searchParams.get("prefix") ?? "";
      const maxKeys = Math.min(Number(url.searchParams.get("max-keys") ?? 1000), 1000);
      const encode = url.searchParams.get("encoding-type") === "url";
      const token = url.searchParams.get("continuation-token");
      const start = token ? Number(token) : firstAtLeast(prefix);
      let end = start;
      while (end < keys.length && end - start < maxKeys && keys[end]!.startsWith(prefix)) end++;
      const truncated = end < keys.length && keys[end]!.startsWith(prefix);
      const name = (key: string) => (encode ? encodeURIComponent(key).replace(/%2F/g, "/") : escape(key));
      const contents = [];
      for (let i = start; i < end; i++) {
        contents.push(`<Contents><Key>${name(keys[i]!)}</Key><LastModified>2026-11-01T00:00:00.000Z</LastModified><ETag>&quot;0&quot;</ETag><Size>${sizes[i]}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
      }
      const body = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${BUCKET}</Name><Prefix>${name(prefix)}</Prefix><KeyCount>${end - start}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>${encode ? "<EncodingType>url</EncodingType>" : ""}<IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextContinuationToken>${end}</NextContinuationToken>` : ""}${contents.join("")}</ListBucketResult>`;
      return new Response(body, { headers: { "content-type": "application/xml" } });
    },
  });
  console.log(`listing server: ${keys.length.toLocaleString()} keys on 127.0.0.1:${port}`);
}

// Last: the constants above must be initialised before either mode runs.
if (process.argv[2] === "--serve") await serveListing(process.argv[3]!, Number(process.argv[4]));
else await main();
