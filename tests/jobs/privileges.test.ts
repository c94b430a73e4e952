/**
 * Least privilege: the roles of README.md "Privileges", created with the SQL that section holds
 * (read from the file, so the text and this test cannot drift), run every job; so does, for each
 * job, a role with exactly its row of that section's table. A missing grant is exit 2 naming it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { DEMO_TOKEN, startDemoApi } from "../../scripts/demo/demo_api";
import { demoPrivateKey, dropPartnerDelivery } from "../../scripts/demo/demo_partner";
import { startFaultProxy } from "../harness/fault_proxy";
import { ROOT, createBucket, createTestDatabase, putObject, runCommand, type CliResult, type TestDatabase } from "../harness/fixtures";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const PASSWORD = "role-pw-5127";
const README_ROLES = ["etl_owner", "etl_job", "etl_monitor"];

/** The README's "Privileges" section. */
function privilegesSection(): string {
  const start = README.indexOf("\n## Privileges\n");
  expect(start).toBeGreaterThan(0);
  return README.slice(start, README.indexOf("\n## ", start + 1));
}

/** Its ```sql blocks, in order: the superuser's, the owner's after `etl migrate`, the superuser's after that. */
function readmeSql(): [string, string, string] {
  const blocks = [...privilegesSection().matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks).toHaveLength(3);
  return blocks as [string, string, string];
}

/** Its table: each job's role and what it needs, as GRANT statements for a role to be named. */
function readmeNeeds(): Map<string, { role: string; grants: (role: string) => string[] }> {
  const needs = new Map<string, { role: string; grants: (role: string) => string[] }>();
  for (const [, jobs, role, cell] of privilegesSection().matchAll(/^\| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/gm)) {
    if (jobs === "job" || jobs!.startsWith("---")) continue;
    const grants = (grantee: string) =>
      cell!.trim() === "nothing" ? [] : cell!.trim() === "pg_monitor" ? [`grant pg_monitor to ${grantee}`] : cell!.split("; ").map((need) => {
        if (need.startsWith("owner of ")) return `alter table ${need.slice("owner of ".length).trim()} owner to ${grantee}`;
        const [privileges, tables] = need.split(" on ");
        return `grant ${privileges} on ${tables} to ${grantee}`;
      });
    for (const job of jobs!.split(", ")) needs.set(job.startsWith("every job") ? "ledger" : job, { role: role!.trim(), grants });
  }
  return needs;
}

let db: TestDatabase;
let work: string;
const extraRoles: string[] = [];

function urlAs(role: string): string {
  const url = new URL(db.url);
  url.username = role;
  url.password = PASSWORD;
  return url.toString();
}

async function dropRoles(names: string[]): Promise<void> {
  for (const name of names) {
    const [exists] = await db.sql`select 1 from pg_roles where rolname = ${name}`;
    if (exists) await db.sql.unsafe(`drop owned by ${name} cascade; drop role ${name}`);
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  work = mkdtempSync(join(tmpdir(), "etl-privileges-"));
  const [superuserSql, ownerSql, afterMigrateSql] = readmeSql();
  await dropRoles(README_ROLES);
  await db.sql.unsafe(superuserSql);
  for (const role of README_ROLES) await db.sql.unsafe(`alter role ${role} password '${PASSWORD}'`);
  const migrated = await runCommand(["scripts/etl.ts"], ["migrate"], { DATABASE_URL: urlAs("etl_owner") });
  expect(migrated.exitCode).toBe(0);
  const owner = postgres(urlAs("etl_owner"), { max: 1, onnotice: () => {} });
  await owner.unsafe(ownerSql);
  await owner.end();
  await db.sql.unsafe(afterMigrateSql);
  await db.sql`insert into agency (id, name) values (10, 'Harbour Agency')`;
  await db.sql`insert into attachment (id, agency_id, s3_key, file_name, size_bytes) values (1, 10, 'a/report.pdf', 'report.pdf', 6), (2, 10, 'b/photo.jpg', 'photo.jpg', 5)`;
});

afterAll(async () => {
  await dropRoles([...extraRoles, ...README_ROLES]);
  await db.drop();
  rmSync(work, { recursive: true, force: true });
});

const run = (url: string, job: string, argv: string[], env: Record<string, string> = {}) => runCommand(["scripts/etl.ts"], ["run", job, ...argv], { DATABASE_URL: url, ...env });

function expectRan(result: CliResult, job: string, exitCodes = [0]): void {
  const summary = result.events.find((e) => e.event === "job.finished" && e.job === job);
  // The job's name beside its exit code and error, so a failure says which job it was.
  const expected = exitCodes.includes(result.exitCode) ? result.exitCode : exitCodes[0]!;
  expect({ job, exitCode: result.exitCode, error: summary?.error }).toEqual({ job, exitCode: expected, error: undefined });
}

/**
 * Every job once, in the demo's order, each under the role `urlFor` gives it: attachments copied,
 * an API pulled, silver built (and backfilled), a partner's encrypted zip decrypted, unzipped,
 * built and profiled, DAGs synced, then every monitor. Each run has a logical date, as scheduled
 * runs do, so each holds its slot's lease.
 */
async function runEveryJob(name: string, day: string, urlFor: (job: string) => string): Promise<void> {
  const dir = join(work, name);
  const [source, destination, lake, dags] = ["source", "destination", "lake", "dags"].map((d) => join(dir, d));
  for (const [key, body] of [["a/report.pdf", "report"], ["b/photo.jpg", "photo"]]) {
    mkdirSync(join(source!, key!, ".."), { recursive: true });
    writeFileSync(join(source!, key!), body!);
  }
  mkdirSync(join(dags!, "prod/etl"), { recursive: true });
  mkdirSync(join(dir, "airflow"));
  writeFileSync(join(dags!, "prod/etl/etl_a.py"), "a = 1\n");
  writeFileSync(join(dags!, "prod/etl/metadata.json"), JSON.stringify({ package: "etl", image_tag: "t", dags: [{ dag_id: "etl_a", file: "etl_a.py" }] }));
  const keyFile = join(dir, "partner-key.asc");
  await dropPartnerDelivery(lake!, day, await demoPrivateKey(keyFile));
  // The watermark of an earlier pass would leave this one nothing to pull.
  await db.sql`delete from etl_watermarks`;

  const at = ["--logical-date", day];
  const lakeArg = `file:${lake}`;
  const api = startDemoApi(300);
  try {
    expectRan(await run(urlFor("get_s3_files"), "get_s3_files", ["--agency-id", "10", "--source-bucket", `file:${source}`, "--destination-bucket", `file:${destination}`, ...at]), "get_s3_files");
    expectRan(await run(urlFor("ingest_api"), "ingest_api", ["--dataset", "service_requests", "--bucket", lakeArg, ...at], { SERVICE_API_URL: api.url, SERVICE_API_TOKEN: DEMO_TOKEN }), "ingest_api");
  } finally {
    api.stop();
  }
  const silver = (dataset: string) => ["--dataset", dataset, "--bucket", lakeArg, "--max-reject-ratio", "0.05"];
  expectRan(await run(urlFor("bronze_to_silver"), "bronze_to_silver", [...silver("service_requests"), ...at]), "bronze_to_silver");
  expectRan(await run(urlFor("backfill"), "backfill", ["--job", "bronze_to_silver", "--from", day, "--to", day, "--reprocess", "all", "--", ...silver("service_requests")]), "backfill");
  expectRan(await run(urlFor("decrypt_files"), "decrypt_files", ["--bucket", lakeArg, "--prefix", "inbox/", "--destination", "decrypted/", ...at], { ETL_PGP_PRIVATE_KEY_FILE: keyFile }), "decrypt_files");
  expectRan(await run(urlFor("unzip_files"), "unzip_files", ["--bucket", lakeArg, "--prefix", "decrypted/partner_payments/", "--destination", "bronze/partner_payments/dt={date}/", ...at]), "unzip_files");
  expectRan(await run(urlFor("bronze_to_silver"), "bronze_to_silver", [...silver("partner_payments"), ...at]), "bronze_to_silver");
  expectRan(await run(urlFor("profile_dataset"), "profile_dataset", ["--dataset", "partner_payments", "--bucket", lakeArg, ...at]), "profile_dataset");
  expectRan(await run(urlFor("sync_dags"), "sync_dags", ["--dag-bucket", `file:${dags}`, "--env", "prod", "--package", "etl", "--dag-folder", join(dir, "airflow"), ...at]), "sync_dags");

  expectRan(await run(urlFor("s3_metrics"), "s3_metrics", ["--bucket", lakeArg, ...at]), "s3_metrics");
  expectRan(await run(urlFor("db_metrics"), "db_metrics", at), "db_metrics");
  expectRan(await run(urlFor("freshness_monitor"), "freshness_monitor", ["--agency-id", "10", "--destination-bucket", `file:${destination}`, ...at]), "freshness_monitor");
  // A monitor's breach (a declared source this test never fills, a slot never run) is exit 3, its finding.
  expectRan(await run(urlFor("freshness_monitor"), "freshness_monitor", ["--bucket-map", `etl-lake=${lakeArg},etl-attachments-archive=file:${destination}`]), "freshness_monitor", [0, 3]);
  expectRan(await run(urlFor("schedule_audit"), "schedule_audit", ["--since", "2d", ...at]), "schedule_audit", [0, 3]);
}

describe("the README's roles", () => {
  test("grant etl_job every table the migrations made, and etl_monitor writes to the run ledger's tables only", async () => {
    const tables = (await db.sql`select tablename from pg_tables where schemaname = 'public' and tablename like 'etl\\_%' order by 1`).map((r) => r.tablename as string);
    expect(tables).toContain("etl_schema_migrations");
    const privileges = await db.sql<{ role: string; table: string; privilege: string }[]>`
      select r as role, t as table, p as privilege
      from unnest(${["etl_job", "etl_monitor"]}::text[]) r, unnest(${tables}::text[]) t, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
      where has_table_privilege(r, t, p)`;
    const of = (role: string, privilege: string) => privileges.filter((p) => p.role === role && p.privilege === privilege).map((p) => p.table).sort();
    expect(of("etl_job", "SELECT")).toEqual(tables);
    expect(of("etl_monitor", "INSERT")).toEqual(["etl_job_runs", "etl_leases"]);
    expect([...of("etl_monitor", "DELETE"), ...of("etl_monitor", "TRUNCATE")]).toEqual(["etl_leases"]);
    // etl_job owns its scratch table only (get_s3_files ANALYZEs it).
    expect(of("etl_job", "TRUNCATE")).toEqual(["etl_object_listings"]);
    // No role but the owner may change what was migrated.
    expect([...of("etl_job", "INSERT"), ...of("etl_job", "UPDATE"), ...of("etl_job", "DELETE")]).not.toContain("etl_schema_migrations");
    const [owner] = await db.sql`select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = 'etl_owner'`;
    expect(owner).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false });
  });

  test("run every job, each under the role its row names", async () => {
    const needs = readmeNeeds();
    await runEveryJob("readme-roles", "2026-11-02", (job) => {
      const role = needs.get(job)?.role;
      expect({ job, known: role === "etl_job" || role === "etl_monitor" }).toEqual({ job, known: true });
      return urlAs(role!);
    });
    // get_s3_files, as etl_job, refreshed its listings' statistics: PostgreSQL skips that quietly for a role that may not.
    const [listings] = await db.sql`select last_analyze from pg_stat_user_tables where relname = 'etl_object_listings'`;
    expect(listings!.last_analyze).toBeInstanceOf(Date);
  }, 240_000);

  test("the operator commands run as etl_job; as a role without the ledger's grants, exit 2 naming the table", async () => {
    for (const argv of [["runs", "--limit", "1"], ["dlq", "list", "--all"]]) {
      const result = await runCommand(["scripts/etl.ts"], argv, { DATABASE_URL: urlAs("etl_job") });
      expect({ argv, exitCode: result.exitCode, stderr: result.stderr }).toEqual({ argv, exitCode: 0, stderr: "" });
    }
    const bare = await roleWith("etl_no_ledger", []);
    await db.sql.unsafe("revoke all on etl_job_runs from etl_no_ledger");
    const refused = await runCommand(["scripts/etl.ts"], ["runs"], { DATABASE_URL: bare });
    expect({ exitCode: refused.exitCode, stderr: refused.stderr.trim() }).toEqual({
      exitCode: 2,
      stderr: 'etl runs: permission denied for table etl_job_runs (SQLSTATE 42501), refusing an UPDATE: grant the role what README.md "Privileges" lists for this job',
    });
  });

  test("run every job under a role with exactly the run ledger's grants and its own row's", async () => {
    const needs = readmeNeeds();
    const urls = new Map<string, string>();
    for (const [job, row] of needs) {
      if (job === "ledger") continue;
      const role = `etl_only_${job}`;
      extraRoles.push(role);
      // backfill's day runs are the job it runs: they log in as the backfill does.
      const own = job === "backfill" ? needs.get("bronze_to_silver")!.grants(role) : row.grants(role);
      await db.sql.unsafe(
        [`create role ${role} login password '${PASSWORD}'`, `grant usage on schema public to ${role}`, ...needs.get("ledger")!.grants(role), ...own].join(";\n"),
      );
      urls.set(job, urlAs(role));
    }
    expect([...urls.keys()].sort()).toEqual(["backfill", "bronze_to_silver", "db_metrics", "decrypt_files", "freshness_monitor", "get_s3_files", "ingest_api", "profile_dataset", "s3_metrics", "schedule_audit", "sync_dags", "unzip_files"]);
    try {
      await runEveryJob("own-rows", "2026-11-03", (job) => urls.get(job)!);
    } finally {
      // get_s3_files's row made its role the owner of etl_object_listings: back to the README's.
      await db.sql`alter table etl_object_listings owner to etl_job`;
    }
  }, 240_000);
});

/** A login role with the run ledger's grants (from the README's table) and `grants`. */
async function roleWith(name: string, grants: string[]): Promise<string> {
  extraRoles.push(name);
  const ledger = readmeNeeds().get("ledger")!.grants(name);
  await db.sql.unsafe([`create role ${name} login password '${PASSWORD}'`, ...ledger, ...grants.map((g) => `${g} to ${name}`)].join(";\n"));
  return urlAs(name);
}

describe("a missing grant is exit 2 naming it", () => {
  test("db_metrics as a role with CONNECT and pg_monitor only: the run ledger's etl_schema_migrations, not a transient failure", async () => {
    extraRoles.push("etl_bare_monitor");
    await db.sql.unsafe(`create role etl_bare_monitor login password '${PASSWORD}'; grant connect on database ${db.name} to etl_bare_monitor; grant pg_monitor to etl_bare_monitor`);
    const result = await run(urlAs("etl_bare_monitor"), "db_metrics", []);
    expect(result.exitCode).toBe(2);
    expect(result.summary!.error).toBe(
      'permission denied for table etl_schema_migrations (SQLSTATE 42501) for role "etl_bare_monitor", refusing a SELECT: grant the role what README.md "Privileges" lists for this job',
    );
  });

  test("decrypt_files without UPDATE on etl_processed_files: exit 2 naming the table, the message left for the next run, no dead letter", async () => {
    const url = await roleWith("etl_decrypt_no_update", ["grant select, insert on etl_processed_files", "grant select, insert, update on etl_dead_letters"]);
    const dir = join(work, "no-update");
    const keyFile = join(dir, "partner-key.asc");
    await dropPartnerDelivery(dir, "2026-11-04", await demoPrivateKey(keyFile));
    const result = await run(url, "decrypt_files", ["--bucket", `file:${dir}`, "--prefix", "inbox/", "--destination", "decrypted/"], { ETL_PGP_PRIVATE_KEY_FILE: keyFile });
    expect(result.exitCode).toBe(2);
    expect(result.summary!.error).toStartWith('permission denied for table etl_processed_files (SQLSTATE 42501) for role "etl_decrypt_no_update", refusing an INSERT ... ON CONFLICT DO UPDATE');
    expect([...(await db.sql`select item_key from etl_dead_letters where job = 'decrypt_files'`)]).toEqual([]);
    expect([...(await db.sql`select key from etl_processed_files where store_url like ${`%${dir}%`}`)]).toEqual([]);
  });

  test("a job whose role may not apply a pending migration: exit 2 naming it and `etl migrate`", async () => {
    const owner = postgres(urlAs("etl_owner"), { max: 1, onnotice: () => {} });
    const [{ version }] = (await owner`delete from etl_schema_migrations where version = (select max(version) from etl_schema_migrations) returning version`) as unknown as [{ version: string }];
    try {
      const result = await run(urlAs("etl_monitor"), "db_metrics", []);
      expect(result.exitCode).toBe(2);
      expect(result.summary!.error).toStartWith(`1 migration(s) pending (${version}) and this role may not apply them (permission denied for schema public): run \`etl migrate\` as the owner`);
    } finally {
      await owner`insert into etl_schema_migrations (version) values (${version})`;
      await owner.end();
    }
  });

  test("get_s3_files as a role that may not ANALYZE etl_object_listings: exit 2 naming it, instead of PostgreSQL's quiet skip", async () => {
    const url = await roleWith("etl_copy_not_owner", ["grant select on agency, attachment", "grant select, insert, delete on etl_object_listings", "grant select, insert, update on etl_dead_letters"]);
    const dir = join(work, "not-owner");
    mkdirSync(join(dir, "source/a"), { recursive: true });
    writeFileSync(join(dir, "source/a/report.pdf"), "report");
    mkdirSync(join(dir, "destination"));
    const result = await run(url, "get_s3_files", ["--agency-id", "10", "--source-bucket", `file:${dir}/source`, "--destination-bucket", `file:${dir}/destination`]);
    expect(result.exitCode).toBe(2);
    expect(result.summary!.error).toStartWith('role "etl_copy_not_owner" may not ANALYZE etl_object_listings (only its owner may, or on PostgreSQL 17 a role granted MAINTAIN)');
  });

  test("S3 AccessDenied: exit 2 naming the operation, the bucket and the IAM action", async () => {
    const bucket = await createBucket();
    await putObject(bucket, "a/1.txt", "x");
    const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    try {
      proxy.failNext(1, 403, { code: "AccessDenied", when: (r) => r.method === "GET" && r.path.includes("list-type=2") });
      const result = await runCommand(["scripts/etl.ts"], ["run", "s3_metrics", "--bucket", bucket], { DATABASE_URL: "", S3_ENDPOINT: proxy.url });
      expect(result.exitCode).toBe(2);
      expect(result.summary!.error).toBe(`S3 denied ListObjectsV2 on s3://${bucket} (HTTP 403 AccessDenied): the credentials' policy must allow s3:ListBucket there`);
      // What a job can do without is still left out with a warning: s3_metrics' open uploads.
      proxy.failNext(1, 403, { code: "AccessDenied", when: (r) => r.method === "GET" && /[?&]uploads/.test(r.path) });
      const partial = await runCommand(["scripts/etl.ts"], ["run", "s3_metrics", "--bucket", bucket], { DATABASE_URL: "", S3_ENDPOINT: proxy.url });
      expect(partial.summary).toMatchObject({ exitCode: 0, counts: { objects: 1 } });
      expect(partial.events.some((e) => e.level === "warn" && String(e.fix).includes("s3:ListBucketMultipartUploads"))).toBe(true);
    } finally {
      await proxy.stop();
    }
  });
});
