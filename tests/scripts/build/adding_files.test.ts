/**
 * Adding a job or a dataset is adding one file (DESIGN.md): from source, jobs, their schedules and
 * datasets are all found by glob, with no build. Runs in a copy of the source tree, so the files
 * added never reach the real jobs/ and processors/datasets/, and its generated lists stay stale
 * (they are what the binaries read: only `bun run build` updates them). Before, schedule_audit
 * answered "no such scheduled job" for the new job, backfill "no such job to backfill", and the
 * new dataset was unknown, until `bun run build:registry`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, createTestDatabase, runCommand, type TestDatabase } from "../../harness/fixtures";

const NEW_JOB = `import { defineJob } from "../core/runtime/job";

export const JOB = defineJob({
  name: "nightly_probe",
  description: "A job added as one file",
  lane: "core",
  args: {},
  schedule: { cron: "0 3 * * *", timeZone: "Europe/Paris", args: {} },
  async run() {
    return { done: 1 };
  },
});
`;

const NEW_DATASET = `import { defineDataset } from "../../core/dataset";

export const DATASET = defineDataset({
  name: "probe_rows",
  description: "A dataset added as one file",
  format: "ndjson",
  columns: {
    id: { type: "integer", required: true, description: "row id" },
    updated_at: { type: "timestamp", required: true, description: "last change" },
  },
  primaryKey: ["id"],
  versionColumn: "updated_at",
});
`;

let tree: string;
let db: TestDatabase;

beforeAll(async () => {
  tree = mkdtempSync(join(tmpdir(), "etl-source-tree-"));
  for (const dir of ["core", "jobs", "processors", "repositories", "migrations", "scripts"]) cpSync(join(ROOT, dir), join(tree, dir), { recursive: true });
  for (const file of ["package.json", "tsconfig.json"]) cpSync(join(ROOT, file), join(tree, file));
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
  writeFileSync(join(tree, "jobs", "nightly_probe.ts"), NEW_JOB);
  writeFileSync(join(tree, "processors", "datasets", "probe_rows.ts"), NEW_DATASET);
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
  if (tree) rmSync(tree, { recursive: true, force: true });
});

const etl = (argv: string[]) => runCommand([join(tree, "scripts", "etl.ts")], argv, { DATABASE_URL: db.url });

test("the copy's generated lists do not know the new files: what follows comes from the globs", () => {
  expect(readFileSync(join(tree, "jobs", "schedules.generated.ts"), "utf8")).not.toContain("nightly_probe");
  expect(readFileSync(join(tree, "processors", "datasets", "datasets.generated.ts"), "utf8")).not.toContain("probe_rows");
});

test("a new scheduled job is listed, audited by schedule_audit and backfilled, without a build", async () => {
  const list = JSON.parse((await etl(["list", "--json"])).stdout) as Array<{ name: string; schedules: unknown[] }>;
  expect(list.find((j) => j.name === "nightly_probe")?.schedules).toMatchObject([{ name: "default", cron: "0 3 * * *", timeZone: "Europe/Paris" }]);

  // Never run: its slots of the last three days are missed (a partial audit, exit 3), not unknown.
  const audit = await etl(["schedule_audit", "--job", "nightly_probe", "--since", "3d"]);
  expect(audit.summary).toMatchObject({ status: "partial", exitCode: 3, counts: { schedules: 1 } });
  expect((audit.summary?.counts as { missed: number }).missed).toBeGreaterThanOrEqual(2);
  // The job file run directly finds it too.
  const direct = await runCommand([join(tree, "jobs", "schedule_audit.ts")], ["--job", "nightly_probe", "--since", "3d"], { DATABASE_URL: db.url });
  expect(direct.summary).toMatchObject({ status: "partial", counts: { schedules: 1 } });

  const backfill = await etl(["backfill", "--job", "nightly_probe", "--from", "2026-11-01", "--to", "2026-11-03", "--dry-run"]);
  expect(backfill.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { planned: 3, days: 3 } });
});

test("a new dataset is named in --help and built to silver by bronze_to_silver, without a build", async () => {
  expect((await etl(["bronze_to_silver", "--help"])).stdout).toContain("probe_rows");
  const lake = join(tree, "lake");
  mkdirSync(join(lake, "bronze/probe_rows/dt=2026-11-01"), { recursive: true });
  const row = (id: number) => JSON.stringify({ id, updated_at: "2026-11-01T10:00:00Z" });
  writeFileSync(join(lake, "bronze/probe_rows/dt=2026-11-01/a.ndjson"), `${row(1)}\n${row(2)}\n`);
  const run = await etl(["bronze_to_silver", "--dataset", "probe_rows", "--bucket", `file:${lake}`, "--date", "2026-11-01"]);
  expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { rowsIn: 2, rowsOut: 2, rejected: 0 } });
  expect(JSON.parse(readFileSync(join(lake, "silver/probe_rows/dt=2026-11-01/_manifest.json"), "utf8")).files).toHaveLength(1);
});
