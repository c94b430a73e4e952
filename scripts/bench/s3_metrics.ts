/**
 * `bun scripts/bench/s3_metrics.ts [--keys 1000000 --rounds 3 --latency-ms 0]`: s3_metrics over 1,000,000 keys
 * against its peers in one run.
 *
 * Seeding moto or a directory with a million objects takes longer than the runs measured, and
 * moto's own listing (Python) would be most of what is timed. So the keys come from a small
 * S3-compatible server in this process that synthesises them: ListObjectsV2 (prefix, delimiter,
 * continuation token, start-after, max-keys, encoding-type=url) over `g=000/part-000000.json` ...
 * (`--groups` first-level prefixes of `--keys / --groups` keys each), with sizes and LastModified
 * derived from the key's index, and an empty ListMultipartUploads. Every tool lists the same pages
 * of 1000 keys over HTTP, so the figures are each tool's listing and aggregation cost.
 * `--latency-ms` delays every listing page by that long, as a real S3 endpoint's round trip does
 * (tens of milliseconds per page): then one stream waits on the network and listings side by
 * side pay off; at 0 the run measures CPU alone.
 *
 *   job            bun jobs/s3_metrics.ts --depth 1: the groups listed side by side (--concurrency)
 *   job 1 stream   the same with --depth 0: one listing, the floor of a single stream
 *   aws cli        aws s3 ls --recursive --summarize (one listing, one line per key)
 *   rclone         rclone size --json (one recursive listing, as its request count shows)
 *
 * Each run is a child process under /usr/bin/time (CPU and peak RSS); tools rotate order each
 * round; the table gives medians over `--rounds`. Every run's totals are checked against the
 * synthetic bucket's, so a run that lists less cannot look fast. `--small` runs the job on that
 * many keys too: peak RSS at both sizes shows whether memory grows with the listing. `--tools`
 * picks some of the four (comma-separated names as above).
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { TIME, measureChild, median } from "./measure";

const BUCKET = "bench-listing";
const AWS_CLI = "/root/.pyenv/shims/aws";
const BASE_TIME_MS = Date.UTC(2026, 0, 1);

/** The synthetic bucket: key, size and LastModified of index i, in key order. */
class SyntheticBucket {
  readonly perGroup: number;

  constructor(readonly keys: number, readonly groups: number) {
    this.perGroup = Math.ceil(keys / groups);
  }

  key(i: number): string {
    return `g=${String(Math.floor(i / this.perGroup)).padStart(3, "0")}/part-${String(i % this.perGroup).padStart(7, "0")}.json`;
  }

  size(i: number): number {
    return (i * 7919) % 4096 + 1;
  }

  modifiedMs(i: number): number {
    return BASE_TIME_MS + i * 1000;
  }

  get totalBytes(): number {
    let bytes = 0;
    for (let i = 0; i < this.keys; i++) bytes += this.size(i);
    return bytes;
  }

  /** The first index whose key is >= `text` (keys grow with the index). */
  lowerBound(text: string): number {
    let [low, high] = [0, this.keys];
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.key(middle) < text) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const encodeKey = (key: string, url: boolean) => xml(url ? key.split("/").map(encodeURIComponent).join("/") : key);
/** The smallest string above every string starting with `prefix`. */
const pastPrefix = (prefix: string) => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

function listObjectsV2(bucket: SyntheticBucket, query: URLSearchParams): string {
  const prefix = query.get("prefix") ?? "";
  const delimiter = query.get("delimiter") ?? "";
  const maxKeys = Math.min(1000, Number(query.get("max-keys") ?? 1000));
  const url = query.get("encoding-type") === "url";
  const token = query.get("continuation-token");
  // A token is the next key to look at, as a quoted string.
  let i = token ? bucket.lowerBound(JSON.parse(Buffer.from(token, "base64url").toString())) : bucket.lowerBound(prefix);
  const startAfter = query.get("start-after");
  if (!token && startAfter) i = Math.max(i, bucket.lowerBound(startAfter + "\0"));
  const parts: string[] = [];
  let count = 0;
  for (; i < bucket.keys && count < maxKeys; count++) {
    const key = bucket.key(i);
    if (!key.startsWith(prefix)) {
      i = bucket.keys;
      break;
    }
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (cut >= 0) {
      const common = key.slice(0, cut + delimiter.length);
      parts.push(`<CommonPrefixes><Prefix>${encodeKey(common, url)}</Prefix></CommonPrefixes>`);
      i = bucket.lowerBound(pastPrefix(common));
    } else {
      const modified = new Date(bucket.modifiedMs(i)).toISOString();
      parts.push(`<Contents><Key>${encodeKey(key, url)}</Key><LastModified>${modified}</LastModified><ETag>&quot;${i.toString(16).padStart(32, "0")}&quot;</ETag><Size>${bucket.size(i)}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
      i++;
    }
  }
  const truncated = i < bucket.keys && bucket.key(i).startsWith(prefix);
  const next = truncated ? `<NextContinuationToken>${Buffer.from(JSON.stringify(bucket.key(i))).toString("base64url")}</NextContinuationToken>` : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${BUCKET}</Name><Prefix>${encodeKey(prefix, url)}</Prefix>` +
    `${delimiter ? `<Delimiter>${xml(delimiter)}</Delimiter>` : ""}${url ? "<EncodingType>url</EncodingType>" : ""}<KeyCount>${count}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>` +
    `<IsTruncated>${truncated}</IsTruncated>${parts.join("")}${next}</ListBucketResult>`;
}

/** Serves the synthetic bucket on a free loopback port; any signature is accepted. */
function serveSyntheticBucket(bucket: SyntheticBucket, latencyMs: number): { endpoint: string; requests: () => number; stop(): void } {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      requests++;
      const url = new URL(request.url);
      const xmlResponse = (body: string, status = 200) => new Response(body, { status, headers: { "content-type": "application/xml" } });
      if (url.pathname.replace(/\/$/, "") !== `/${BUCKET}`) {
        return xmlResponse(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`, 404);
      }
      if (request.method === "HEAD") return new Response(null, { status: 200 });
      if (url.searchParams.has("uploads")) {
        return xmlResponse(`<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${BUCKET}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`);
      }
      if (url.searchParams.has("location")) return xmlResponse(`<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`);
      if (url.searchParams.get("list-type") === "2") {
        if (latencyMs) await Bun.sleep(latencyMs);
        return xmlResponse(listObjectsV2(bucket, url.searchParams));
      }
      return xmlResponse(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>only ListObjectsV2 and ListMultipartUploads</Message></Error>`, 501);
    },
  });
  return { endpoint: `http://127.0.0.1:${server.port}`, requests: () => requests, stop: () => server.stop(true) };
}

interface Run {
  tool: string;
  keys: number;
  ms: number;
  cpuMs: number;
  rssMiB: number;
  requests: number;
}

/** Each tool's totals, read from its output, must be the bucket's. */
function checkTotals(tool: string, tail: string, expected: { objects: number; bytes: number }): void {
  let found: { objects?: number; bytes?: number } = {};
  if (tool.startsWith("job")) {
    const summary = tail.split("\n").filter((l) => l.includes('"job.finished"')).map((l) => JSON.parse(l))[0];
    found = { objects: summary?.counts?.objects, bytes: summary?.counts?.bytes };
  } else if (tool === "aws cli") {
    found = { objects: Number(/Total Objects: (\d+)/.exec(tail)?.[1]), bytes: Number(/Total Size: (\d+)/.exec(tail)?.[1]) };
  } else {
    const { count, bytes } = JSON.parse(tail.trim().split("\n").pop()!);
    found = { objects: count, bytes };
  }
  if (found.objects !== expected.objects || found.bytes !== expected.bytes) throw new Error(`${tool} found ${JSON.stringify(found)}, the bucket holds ${JSON.stringify(expected)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { keys: { type: "string", default: "1000000" }, groups: { type: "string", default: "100" }, rounds: { type: "string", default: "3" }, concurrency: { type: "string", default: "8" }, small: { type: "string", default: "100000" }, "latency-ms": { type: "string", default: "0" }, tools: { type: "string", default: "job,job 1 stream,aws cli,rclone" } },
  });
  const [keys, groups, rounds, concurrency, small] = [values.keys, values.groups, values.rounds, values.concurrency, values.small].map(Number) as [number, number, number, number, number];
  const latencyMs = Number(values["latency-ms"]);
  if (![keys, groups, rounds, concurrency, small].every((n) => Number.isInteger(n) && n > 0) || groups > 1000) throw new Error("--keys, --groups (at most 1000), --rounds, --concurrency and --small must be whole numbers above 0");
  if (!Number.isInteger(latencyMs) || latencyMs < 0) throw new Error("--latency-ms must be a whole number of milliseconds");
  if (!existsSync(TIME)) throw new Error(`${TIME} is needed for CPU and peak RSS (apt-get install time)`);

  const env = { S3_ENDPOINT: "", DATABASE_URL: "", PUSHGATEWAY_URL: "", AWS_ACCESS_KEY_ID: "bench-access-key", AWS_SECRET_ACCESS_KEY: "bench-secret-key", AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "us-east-1", AWS_CA_BUNDLE: undefined };
  const hasAws = Bun.spawnSync([AWS_CLI, "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  const hasRclone = Bun.spawnSync(["rclone", "version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;

  const runs: Run[] = [];
  const benchOne = async (size: number, tools: string[], roundsHere: number) => {
    const bucket = new SyntheticBucket(size, groups);
    const expected = { objects: size, bytes: bucket.totalBytes };
    const server = serveSyntheticBucket(bucket, latencyMs);
    const s3Env = { ...env, S3_ENDPOINT: server.endpoint };
    // rclone configured by environment only: a remote named "bench", path-style, ListObjectsV2.
    const rcloneEnv = Object.fromEntries(Object.entries({ TYPE: "s3", PROVIDER: "Other", ENDPOINT: server.endpoint, ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, REGION: "us-east-1", FORCE_PATH_STYLE: "true", LIST_VERSION: "2" }).map(([k, v]) => [`RCLONE_CONFIG_BENCH_${k}`, v]));
    const commands: Record<string, [string[], Record<string, string | undefined>]> = {
      job: [["bun", "jobs/s3_metrics.ts", "--bucket", BUCKET, "--depth", "1", "--concurrency", String(concurrency)], s3Env],
      "job 1 stream": [["bun", "jobs/s3_metrics.ts", "--bucket", BUCKET, "--depth", "0"], s3Env],
      "aws cli": [[AWS_CLI, "s3", "ls", `s3://${BUCKET}`, "--recursive", "--summarize", "--endpoint-url", server.endpoint], s3Env],
      rclone: [["rclone", "size", "--json", `bench:${BUCKET}`], { ...env, ...rcloneEnv }],
    };
    try {
      for (let round = 0; round < roundsHere; round++) {
        for (const tool of [...tools.slice(round % tools.length), ...tools.slice(0, round % tools.length)]) {
          const before = server.requests();
          const [argv, toolEnv] = commands[tool]!;
          // aws s3 ls prints a line per key: keep the end only.
          const result = await measureChild(argv, { env: toolEnv, stdoutTail: 65_536 });
          checkTotals(tool, result.stdout, expected);
          runs.push({ tool, keys: size, ms: result.ms, cpuMs: result.cpuMs, rssMiB: result.rssMiB, requests: server.requests() - before });
          console.log(`${size} keys, round ${round + 1}, ${tool}: ${(result.ms / 1000).toFixed(2)} s, CPU ${(result.cpuMs / 1000).toFixed(2)} s, peak RSS ${result.rssMiB.toFixed(0)} MiB, ${server.requests() - before} requests`);
        }
      }
    } finally {
      server.stop();
    }
  };

  console.log(`synthetic bucket: ${keys} keys in ${groups} prefixes, ${latencyMs} ms per listing page; job --concurrency ${concurrency}; ${rounds} round(s)`);
  const tools = values.tools.split(",").filter((tool) => (tool !== "aws cli" || hasAws) && (tool !== "rclone" || hasRclone));
  await benchOne(keys, tools, rounds);
  if (tools.includes("job")) await benchOne(small, ["job"], rounds);
  if (!hasAws) console.log(`aws cli: not installed at ${AWS_CLI}, skipped`);
  if (!hasRclone) console.log("rclone: not installed, skipped");

  console.log(`\n${"tool".padEnd(14)}${"keys".padStart(9)}${"wall s".padStart(8)}${"keys/s".padStart(10)}${"CPU s".padStart(8)}${"RSS MiB".padStart(9)}${"requests".padStart(10)}`);
  const rows = [...new Set(runs.map((r) => `${r.tool}|${r.keys}`))].map((id) => {
    const group = runs.filter((r) => `${r.tool}|${r.keys}` === id);
    const row = { tool: group[0]!.tool, keys: group[0]!.keys, ms: median(group.map((r) => r.ms)), cpuMs: median(group.map((r) => r.cpuMs)), rssMiB: median(group.map((r) => r.rssMiB)), requests: group[0]!.requests };
    console.log(`${row.tool.padEnd(14)}${String(row.keys).padStart(9)}${(row.ms / 1000).toFixed(2).padStart(8)}${((row.keys * 1000) / row.ms).toFixed(0).padStart(10)}${(row.cpuMs / 1000).toFixed(2).padStart(8)}${row.rssMiB.toFixed(0).padStart(9)}${String(row.requests).padStart(10)}`);
    return row;
  });
  const job = rows.find((r) => r.tool === "job" && r.keys === keys);
  if (!job) return;
  console.log("");
  for (const peer of rows.filter((r) => r.keys === keys && r.tool !== "job")) {
    console.log(`${peer.tool.padEnd(13)} ${(peer.ms / job.ms).toFixed(2)}x the job's time, ${(peer.cpuMs / job.cpuMs).toFixed(2)}x its CPU, ${(peer.rssMiB / job.rssMiB).toFixed(2)}x its peak RSS`);
  }
  const smallJob = rows.find((r) => r.tool === "job" && r.keys === small);
  if (smallJob) console.log(`job peak RSS: ${smallJob.rssMiB.toFixed(0)} MiB at ${small} keys, ${job.rssMiB.toFixed(0)} MiB at ${keys}`);
}

await main();
