/**
 * `bun run demo`: the main job on embedded defaults, no cloud and no server to install.
 * An embedded PostgreSQL keeps its data in .etl/pgdata; the source "bucket" is the directory
 * .etl/demo/source and the destination .etl/demo/destination. Seeds demo agency 10 with a few
 * attachments (one soft-deleted, one belonging to another agency), then runs get_s3_files the way
 * a user would, and prints where the files went. Then the data pipeline: ingest_api pulls service
 * requests from a local demo API into the lake .etl/demo/lake, and bronze_to_silver builds the
 * day's silver partition from them. Last, a partner's delivery: an encrypted zip of payment CSVs
 * dropped in the lake's inbox is decrypted (decrypt_files), unzipped into bronze (unzip_files),
 * built into silver (bronze_to_silver) and profiled with its checks (profile_dataset). It ends
 * with the monitors over what it just did: freshness_monitor checks every declared source (the
 * demo's directories stand in for the declared buckets), then get_s3_files's completeness.
 *
 * It writes .etl/demo.env (the database and the directories standing in for the deployment's
 * buckets), which ./etl reads, so the commands it prints at the end work in a new shell. The
 * embedded database keeps running for them (core/db/embedded_postgres.ts); `./etl db stop` stops it.
 * Ctrl-C stops the job running (it drains, as any run does) and then the demo: none starts after it.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { openDatabase } from "../../core/db/db";
import { EtlError } from "../../core/errors";
import { DEMO_TOKEN, startDemoApi } from "./demo_api";
import { demoPrivateKey, dropPartnerDelivery } from "./demo_partner";

const root = resolve(import.meta.dir, "..", "..");
const work = join(root, ".etl");
const databaseUrl = process.env.DATABASE_URL || `embedded:${join(work, "pgdata")}`;
const sourceDir = join(work, "demo", "source");
const destinationDir = join(work, "demo", "destination");
const lakeDir = join(work, "demo", "lake");

const files = [
  { id: 1001, agency: 10, key: "reports/2026/q1 summary.pdf", name: "Q1 summary.pdf", type: "application/pdf", body: "%PDF-1.4 demo report\n" },
  { id: 1002, agency: 10, key: "photos/site visit #3.jpg", name: "site visit #3.jpg", type: "image/jpeg", body: "demo jpeg bytes\n" },
  { id: 1003, agency: 10, key: "notes/été+hiver.txt", name: "été+hiver.txt", type: "text/plain", body: "notes in two seasons\n" },
  { id: 1004, agency: 10, key: "old/deleted.txt", name: "deleted.txt", type: "text/plain", body: "soft-deleted: never copied\n", deleted: true },
  { id: 2001, agency: 20, key: "other-agency.txt", name: "other-agency.txt", type: "text/plain", body: "agency 20: never copied\n" },
];

async function seed(): Promise<void> {
  const db = await openDatabase(databaseUrl, { applicationName: "etl:demo" });
  try {
    await db.sql.unsafe(await Bun.file(join(root, "tests", "fixtures", "external_schema.sql")).text());
    await db.sql`insert into agency (id, name) values (10, 'Demo agency'), (20, 'Other agency') on conflict (id) do nothing`;
    for (const f of files) {
      await db.sql`
        insert into attachment (id, agency_id, s3_key, file_name, content_type, size_bytes, deleted_at)
        values (${f.id}, ${f.agency}, ${f.key}, ${f.name}, ${f.type}, ${Buffer.byteLength(f.body)}, ${f.deleted ? new Date() : null})
        on conflict (id) do nothing`;
      await mkdir(join(sourceDir, f.key, ".."), { recursive: true });
      await writeFile(join(sourceDir, f.key), f.body);
    }
  } finally {
    await db.close();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/** What ./etl reads in a new shell: the demo's database, and its directories for the deployment's buckets. */
async function writeDemoEnv(): Promise<void> {
  const buckets = { "etl-lake": lakeDir, "etl-attachments": sourceDir, "etl-attachments-archive": destinationDir };
  const lines = [
    "# Written by make demo (scripts/demo/demo.ts); ./etl applies these when they are not set.",
    ...(databaseUrl.startsWith("embedded:") ? [`DATABASE_URL=${databaseUrl}`] : []),
    `ETL_BUCKET_MAP=${Object.entries(buckets).map(([bucket, dir]) => `${bucket}=file:${dir}`).join(",")}`,
  ];
  await mkdir(work, { recursive: true });
  await writeFile(join(work, "demo.env"), `${lines.join("\n")}\n`);
}

console.log(`seeding demo agency 10 (database: ${databaseUrl.startsWith("embedded:") ? databaseUrl : "DATABASE_URL"})`);
try {
  await writeDemoEnv();
  await seed();
} catch (error) {
  // A database that cannot start or be reached: its message says why; never a stack trace.
  console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(error instanceof EtlError && error.code === "config" ? 2 : 1);
}

/** The job running now, and the signal that stopped the demo: Ctrl-C goes to the job, and ends the demo after it. */
let running: ReturnType<typeof Bun.spawn> | undefined;
let stoppedBy: NodeJS.Signals | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stoppedBy = signal;
    // A terminal signals the job too; its copy and this one are one signal to it (core/runtime/signals.ts).
    running?.kill(signal);
    if (!running) process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  });
}

/** Runs a job the way a user would, printing the command; returns its exit code. */
async function runJob(job: string, argv: string[], env: Record<string, string> = {}): Promise<number> {
  if (stoppedBy) return 128 + (stoppedBy === "SIGINT" ? 2 : 15);
  console.log(`running: ./etl run ${job} ${argv.join(" ")}\n`);
  running = Bun.spawn([process.execPath, join(root, "jobs", `${job}.ts`), ...argv], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, ...env },
    stdout: "inherit",
    stderr: "inherit",
  });
  const code = await running.exited;
  running = undefined;
  if (stoppedBy) {
    console.log(`\ndemo: stopped by ${stoppedBy}; ${job} exited ${code}, no further job started`);
    process.exit(code || 130);
  }
  return code;
}

const copied = await runJob("get_s3_files", ["--agency-id", "10", "--source-bucket", `file:${relative(root, sourceDir)}`, "--destination-bucket", `file:${relative(root, destinationDir)}`]);
console.log(`\nexit code ${copied}; files in ${destinationDir}:`);
for (const file of await listFiles(destinationDir)) console.log(`  ${file}`);
console.log("run it again: every file is skipped, nothing is copied twice.\n");

const lake = `file:${relative(root, lakeDir)}`;
const day = new Date().toISOString().slice(0, 10);
const api = startDemoApi();
const ingested = await runJob("ingest_api", ["--dataset", "service_requests", "--bucket", lake, "--logical-date", day], { SERVICE_API_URL: api.url, SERVICE_API_TOKEN: DEMO_TOKEN });
api.stop();
const built = await runJob("bronze_to_silver", ["--dataset", "service_requests", "--bucket", lake, "--logical-date", day, "--max-reject-ratio", "0.05"]);
const manifest = Bun.file(join(lakeDir, `silver/service_requests/dt=${day}/_manifest.json`));
if (await manifest.exists()) {
  const { rows, files } = await manifest.json();
  console.log(`\nsilver/service_requests/dt=${day}: ${rows.out} rows in ${files.length} Parquet file(s); ${rows.rejected} rejected, ${rows.duplicates} duplicates dropped`);
}
const delivery = await dropPartnerDelivery(lakeDir, day, await demoPrivateKey(join(work, "demo", "partner-key.asc")));
console.log(`\na partner dropped ${delivery} (an encrypted zip of payment CSVs)`);
const pgp = { ETL_PGP_PRIVATE_KEY_FILE: join(work, "demo", "partner-key.asc") };
const partner = [
  await runJob("decrypt_files", ["--bucket", lake, "--prefix", "inbox/", "--destination", "decrypted/", "--logical-date", day], pgp),
  await runJob("unzip_files", ["--bucket", lake, "--prefix", "decrypted/partner_payments/", "--destination", "bronze/partner_payments/dt={date}/", "--logical-date", day]),
  await runJob("bronze_to_silver", ["--dataset", "partner_payments", "--bucket", lake, "--logical-date", day, "--max-reject-ratio", "0.05"]),
  await runJob("profile_dataset", ["--dataset", "partner_payments", "--bucket", lake, "--logical-date", day]),
];
const profile = Bun.file(join(lakeDir, `silver/partner_payments/dt=${day}/_profile/profile.json`));
if (await profile.exists()) {
  const { rows, checks } = await profile.json();
  const failing = (checks as Array<{ name: string; status: string; severity: string }>).filter((c) => c.status !== "passed" && c.status !== "skipped");
  console.log(`\nsilver/partner_payments/dt=${day}: ${rows} rows profiled; checks not passing: ${failing.map((c) => `${c.name} (${c.severity})`).join(", ") || "none"}`);
  console.log(`open ${join(lakeDir, `silver/partner_payments/dt=${day}/_profile/profile.html`)} in a browser for the profile`);
}

console.log("\nthe monitors, over what the demo just did:");
const destination = `file:${relative(root, destinationDir)}`;
// The declared sources read the deployment's buckets; the demo's directories stand in for them.
// A source gone stale (a rerun days later, with no new upload) is the monitor doing its job: its
// exit code is shown, not the demo's. Without --logical-date a monitor measures on every run.
const fresh = await runJob("freshness_monitor", ["--bucket-map", `etl-lake=${lake},etl-attachments-archive=${destination}`]);
const complete = await runJob("freshness_monitor", ["--agency-id", "10", "--destination-bucket", destination]);
console.log(`\nfreshness_monitor: exit ${fresh} (0: no source at error); completeness of agency 10: exit ${complete} (0: every attachment is at the destination)`);
console.log("run it again: the day's runs are skipped, they already succeeded (--force reruns them).");
console.log(`
next, in this shell or a new one (./etl reads the demo's settings from .etl/demo.env):
  ./etl runs                 what just ran, newest first (./etl runs show <run-id prefix> for one)
  ./etl doctor               the demo's database and directories, checked as a pod's would be
  ./etl dlq list             items a job could not process
  ./etl report --output .etl/report.html   the status page (open it in a browser)
  ./etl quarantine list --bucket ${lake}
  ./etl list                 every job; ./etl <job> --help for its flags
  ./etl db stop              stop the demo's database (the next command starts it again)`);
process.exit([copied, ingested, built, ...partner, complete].find((code) => code !== 0) ?? 0);
