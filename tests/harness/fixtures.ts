import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { join, resolve } from "node:path";
import postgres from "postgres";

export const ROOT = resolve(import.meta.dir, "../..");
const FIXTURE_SCHEMA = join(ROOT, "tests/fixtures/external_schema.sql");

let admin: postgres.Sql | undefined;
let template: Promise<string> | undefined;

function adminSql(): postgres.Sql {
  admin ??= postgres(process.env.DATABASE_URL!, { max: 2, onnotice: () => {} });
  return admin;
}

function urlFor(database: string): string {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${database}`;
  return url.toString();
}

/** A template database with the external schema fixture, made once per test run. */
function templateDatabase(): Promise<string> {
  template ??= (async () => {
    const name = `etl_template_${process.pid}`;
    const sql = adminSql();
    await sql.unsafe(`drop database if exists ${name}`);
    await sql.unsafe(`create database ${name}`);
    const t = postgres(urlFor(name), { max: 1, onnotice: () => {} });
    await t.unsafe(await Bun.file(FIXTURE_SCHEMA).text());
    await t.end();
    return name;
  })();
  return template;
}

export interface TestDatabase {
  name: string;
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

/** A database of its own for one test, created from the fixture template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `etl_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
  await adminSql().unsafe(`create database ${name} template ${await templateDatabase()}`);
  const url = urlFor(name);
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  return {
    name,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 2 });
      await adminSql().unsafe(`drop database if exists ${name} with (force)`);
    },
  };
}

export interface SeedAttachment {
  id: number;
  agencyId: number;
  key: string;
  fileName?: string;
  deleted?: boolean;
  /** size_bytes; null (unknown) when absent. */
  size?: number;
}

export async function seedAttachments(sql: postgres.Sql, agencies: number[], attachments: SeedAttachment[]): Promise<void> {
  for (const id of agencies) await sql`insert into agency (id, name) values (${id}, ${`agency ${id}`}) on conflict do nothing`;
  for (const a of attachments) {
    await sql`
      insert into attachment (id, agency_id, s3_key, file_name, deleted_at, size_bytes)
      values (${a.id}, ${a.agencyId}, ${a.key}, ${a.fileName ?? a.key.split("/").pop()!}, ${a.deleted ? new Date() : null}, ${a.size ?? null})`;
  }
}

let client: S3Client | undefined;

/** An SDK client on the test S3 server, for arranging and inspecting buckets. */
export function s3(): S3Client {
  client ??= new S3Client({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.AWS_REGION,
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return client;
}

export async function createBucket(): Promise<string> {
  const name = `test-${crypto.randomUUID().slice(0, 13)}`;
  await s3().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export async function putObject(bucket: string, key: string, body: string | Uint8Array): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function getObjectText(bucket: string, key: string): Promise<string> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString();
}

export async function getObjectBytes(bucket: string, key: string): Promise<Uint8Array> {
  const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToByteArray();
}

export async function listKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    keys.push(...(out.Contents ?? []).map((o) => o.Key!));
    token = out.NextContinuationToken;
  } while (token);
  return keys.sort();
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (lines that are not JSON are left out). */
  events: Array<Record<string, unknown>>;
  /** The job.finished event. */
  summary: Record<string, unknown> | undefined;
}

/**
 * Runs `bun <entry> ...argv` as a user would (or `program ...argv`, e.g. the compiled binary),
 * with the harness's servers in the environment.
 */
export async function runCommand(entry: string[], argv: string[], env: Record<string, string | undefined> = {}, program = ["bun"]): Promise<CliResult> {
  const child = Bun.spawn([...program, ...entry, ...argv], {
    cwd: ROOT,
    env: { ...process.env, LOG_FORMAT: "json", ...env } as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const events = stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { exitCode, stdout, stderr, events, summary: events.find((e) => e.event === "job.finished") };
}

export const runEtl = (argv: string[], env?: Record<string, string | undefined>) => runCommand(["scripts/etl.ts"], argv, env);
export const runGetS3Files = (argv: string[], env?: Record<string, string | undefined>) => runCommand(["jobs/get_s3_files.ts"], argv, env);

/** Parses a manifest CSV (as written by processors/data_pipeline/get_s3_files/copy_manifest.ts) into rows of named fields. */
export function parseCsv(text: string): Array<Record<string, string>> {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") record.push(field), (field = "");
    else if (c === "\n") record.push(field), records.push(record), (record = []), (field = "");
    else field += c;
  }
  const [header, ...rows] = records;
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ""])));
}

/** Calls `signal` once the first object has landed in `bucket`: the run is copying then. */
export async function signalWhenCopying(bucket: string, signal: () => void, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await listKeys(bucket)).length === 0) {
    if (Date.now() > deadline) throw new Error(`nothing landed in ${bucket} within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
  signal();
}

/**
 * Puts a lease row as another run would have left it: renewed `renewedSecondsAgo` and expiring
 * in `expiresInSeconds`. Returns its run id.
 */
export async function insertLease(sql: postgres.Sql, name: string, host: string, times: { renewedSecondsAgo?: number; expiresInSeconds: number }): Promise<string> {
  const runId = crypto.randomUUID();
  await sql`
    insert into etl_leases (name, run_id, job, host, acquired_at, renewed_at, expires_at)
    values (${name}, ${runId}, 'get_s3_files', ${host}, now() - interval '1 minute',
            now() - ${times.renewedSecondsAgo ?? 0} * interval '1 second', now() + ${times.expiresInSeconds} * interval '1 second')`;
  return runId;
}
