import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../../core/storage/file_store";
import { createLogger } from "../../../core/log";
import type { ObjectStore } from "../../../core/storage/object_store";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { renderDags, writeDags } from "../../../scripts/deploy/dags";
import { mirrorPackage } from "../../../processors/core/dags/dag_mirror";
import { createBucket, getObjectText, listKeys, putObject, runCommand, runEtl } from "../../harness/fixtures";

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "etl-dag-packages-"));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** A package folder as `etl dags` writes it: DAG files plus metadata.json listing them. */
function writePackage(dir: string, dags: Record<string, string>, packageName = "etl"): string {
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(dags)) writeFileSync(join(dir, file), content);
  const metadata = { package: packageName, image_tag: "test", dags: Object.keys(dags).map((file) => ({ dag_id: file.replace(/\.py$/, ""), file })) };
  writeFileSync(join(dir, "metadata.json"), JSON.stringify(metadata, null, 2) + "\n");
  return dir;
}

const publish = (env: Record<string, string>, argv: string[] = []) => runCommand(["scripts/deploy/publish_dags.ts"], argv, env);
const sync = (argv: string[], env: Record<string, string> = {}) => runCommand(["jobs/sync_dags.ts"], argv, env);

/** Name to content of the regular files in a folder. */
function filesIn(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => [e.name, readFileSync(join(dir, e.name), "utf8")]));
}

describe("publish_dags", () => {
  test("publishes the generated package under <env>/<package>/ only, metadata.json last, removing stale keys there alone", async () => {
    const bucket = await createBucket();
    const dir = join(work, "dags/etl");
    await writeDags(dir, renderDags(await loadJobs(discoverJobs()), { imagePrefix: "", imageTag: "1.2.3", packageName: "etl", namespace: "etl" }));
    const neighbours = ["prod/etl2/etl_x.py", "prod/etl-x/etl_x.py", "staging/etl/etl_x.py", "prod/etl.py"];
    for (const key of [...neighbours, "prod/etl/etl_retired.py", "prod/etl/sub/leftover.py"]) await putObject(bucket, key, "old");

    const dags = readdirSync(dir).filter((f) => f.endsWith(".py")).sort();
    expect(dags).toContain("etl_get_s3_files.py");
    const run = await publish({ DAG_BUCKET: bucket, ENV: "prod", PACKAGE_NAME: "etl" }, ["--dir", dir]);
    expect(run.summary).toMatchObject({ status: "succeeded", exitCode: 0, counts: { uploaded: dags.length + 1, unchanged: 0, removed: 2 } });
    expect(await listKeys(bucket)).toEqual([...neighbours, ...dags.map((d) => `prod/etl/${d}`), "prod/etl/metadata.json"].sort());
    for (const file of [...dags, "metadata.json"]) expect(await getObjectText(bucket, `prod/etl/${file}`)).toBe(readFileSync(join(dir, file), "utf8"));
    const writes = run.events.filter((e) => e.msg === "uploaded" || e.msg === "removed").map((e) => `${e.msg} ${String(e.url).replace(`s3://${bucket}/`, "")}`);
    // The DAGs first, the stale keys next, metadata.json last.
    expect(writes).toEqual([...dags.map((d) => `uploaded prod/etl/${d}`), "removed prod/etl/etl_retired.py", "removed prod/etl/sub/leftover.py", "uploaded prod/etl/metadata.json"]);

    const again = await runEtl(["publish-dags", "--dag-bucket", `s3://${bucket}`, "--env", "prod", "--package", "etl", "--dir", dir]);
    expect(again.summary).toMatchObject({ exitCode: 0, counts: { uploaded: 0, unchanged: dags.length + 1, removed: 0 } });
  });

  test.each([
    ["a bucket with a prefix", { DAG_BUCKET: "s3://BUCKET/other/prefix" }, [], /--dag-bucket \(from DAG_BUCKET\) .* names a key prefix/],
    ["a nested ENV", { ENV: "prod/etl" }, [], /--env \(from ENV\) must be one path segment/],
    ["ENV ..", { ENV: ".." }, [], /--env \(from ENV\) must be one path segment/],
    ["no ENV", { ENV: "" }, [], /--env is required \(or set ENV\)/],
    ["another package's folder", { PACKAGE_NAME: "other" }, [], /metadata.json is package "etl", not "other"/],
    ["a DAG not in metadata.json", {}, ["stray.py"], /holds stray.py, which metadata.json does not list/],
    ["a listed DAG missing", {}, ["-etl_a.py"], /lacks etl_a.py, which metadata.json lists/],
  ] as const)("refuses %s with exit 2, writing nothing", async (_, env, change, message) => {
    const bucket = await createBucket();
    const dir = writePackage(join(work, "pkg"), { "etl_a.py": "a = 1\n" });
    for (const c of change) c.startsWith("-") ? rmSync(join(dir, c.slice(1))) : writeFileSync(join(dir, c), "x = 1\n");
    const vars = { DAG_BUCKET: bucket, ENV: "prod", PACKAGE_NAME: "etl", ...env };
    const run = await publish({ ...vars, DAG_BUCKET: vars.DAG_BUCKET.replace("BUCKET", bucket) }, ["--dir", dir]);
    expect(run.exitCode).toBe(2);
    expect(String(run.summary?.error)).toMatch(message);
    expect(await listKeys(bucket)).toEqual([]);
  });

  test("--dry-run reports what it would upload and writes nothing", async () => {
    const bucket = await createBucket();
    const dir = writePackage(join(work, "pkg"), { "etl_a.py": "a = 1\n" });
    const run = await publish({ DAG_BUCKET: bucket, ENV: "prod", PACKAGE_NAME: "etl" }, ["--dir", dir, "--dry-run"]);
    expect(run.summary).toMatchObject({ exitCode: 0, counts: { uploaded: 2 } });
    expect(run.events.filter((e) => e.msg === "would upload")).toHaveLength(2);
    expect(await listKeys(bucket)).toEqual([]);
  });
});

describe("sync_dags", () => {
  // The same behaviour from an S3 bucket and from a local directory used as one.
  const buckets: Array<[string, () => Promise<{ location: string; put: (key: string, body: string) => Promise<void> }>]> = [
    ["an S3 bucket", async () => {
      const bucket = await createBucket();
      return { location: bucket, put: (key, body) => putObject(bucket, key, body) };
    }],
    ["a file: directory", async () => {
      const dir = join(work, "bucket");
      mkdirSync(dir);
      return { location: `file://${dir}`, put: async (key, body) => (mkdirSync(join(dir, key, ".."), { recursive: true }), writeFileSync(join(dir, key), body)) };
    }],
  ];

  describe.each(buckets)("from %s", (_, open) => {
    test("mirrors the package into <dag-folder>/<package>; a second run changes nothing; a republish updates, adds and removes", async () => {
      const { location, put } = await open();
      const vars = { DAG_BUCKET: location, ENV: "prod", PACKAGE_NAME: "etl" };
      const dagFolder = join(work, "airflow");
      mkdirSync(join(dagFolder, "other_team"), { recursive: true });
      writeFileSync(join(dagFolder, "other_team/their_dag.py"), "theirs = 1\n");
      await put("staging/etl/etl_staging_only.py", "no = 1\n");
      expect((await publish(vars, ["--dir", writePackage(join(work, "v1"), { "etl_a.py": "a = 1\n", "etl_b.py": "b = 1\n" })])).exitCode).toBe(0);

      const first = await sync(["--dag-folder", dagFolder], vars);
      expect(first.summary).toMatchObject({ exitCode: 0, counts: { added: 3, updated: 0, removed: 0, unchanged: 0 } });
      const target = join(dagFolder, "etl");
      expect(filesIn(target)).toEqual(filesIn(join(work, "v1")));
      const mtime = statSync(join(target, "etl_a.py")).mtimeMs;

      const second = await sync(["--dag-folder", dagFolder], vars);
      expect(second.summary).toMatchObject({ exitCode: 0, counts: { added: 0, updated: 0, removed: 0, unchanged: 3 } });
      expect(statSync(join(target, "etl_a.py")).mtimeMs).toBe(mtime);

      mkdirSync(join(target, "__pycache__"));
      writeFileSync(join(target, "__pycache__/etl_b.cpython-311.pyc"), "bytecode");
      expect((await publish(vars, ["--dir", writePackage(join(work, "v2"), { "etl_a.py": "a = 2\n", "etl_c.py": "c = 1\n" })])).exitCode).toBe(0);
      const dry = await sync(["--dag-folder", dagFolder, "--dry-run"], vars);
      expect(dry.summary).toMatchObject({ exitCode: 0, counts: { added: 1, updated: 2, removed: 1, unchanged: 0 } });
      expect(filesIn(target)).toEqual(filesIn(join(work, "v1")));

      const third = await sync(["--dag-folder", dagFolder], vars);
      expect(third.summary).toMatchObject({ exitCode: 0, counts: { added: 1, updated: 2, removed: 1, unchanged: 0 } });
      expect(filesIn(target)).toEqual(filesIn(join(work, "v2")));
      expect(readdirSync(target).filter((f) => f.startsWith("."))).toEqual([]);
      expect(existsSync(join(target, "__pycache__/etl_b.cpython-311.pyc"))).toBe(true);
      expect(readFileSync(join(dagFolder, "other_team/their_dag.py"), "utf8")).toBe("theirs = 1\n");
    });

    test("a publish in progress (a listed DAG not there yet) exits 75 and leaves the folder as it was", async () => {
      const { location, put } = await open();
      const vars = { DAG_BUCKET: location, ENV: "prod", PACKAGE_NAME: "etl" };
      const dagFolder = join(work, "airflow");
      mkdirSync(dagFolder);
      expect((await publish(vars, ["--dir", writePackage(join(work, "v1"), { "etl_a.py": "a = 1\n" })])).exitCode).toBe(0);
      expect((await sync(["--dag-folder", dagFolder], vars)).exitCode).toBe(0);

      await put("prod/etl/etl_b.py", "b = 1\n");
      await put("prod/etl/metadata.json", JSON.stringify({ package: "etl", dags: [{ file: "etl_b.py" }, { file: "etl_c.py" }] }));
      const run = await sync(["--dag-folder", dagFolder], vars);
      expect(run.exitCode).toBe(75);
      expect(String(run.summary?.error)).toContain("lacks etl_c.py");
      expect(filesIn(join(dagFolder, "etl"))).toEqual(filesIn(join(work, "v1")));
    });
  });

  test("refuses, with exit 2 and nothing touched: a folder it does not own, an unpublished prefix, a missing DAG folder", async () => {
    const bucket = await createBucket();
    const vars = { DAG_BUCKET: bucket, ENV: "prod", PACKAGE_NAME: "etl" };
    expect((await publish(vars, ["--dir", writePackage(join(work, "v1"), { "etl_a.py": "a = 1\n" })])).exitCode).toBe(0);
    const dagFolder = join(work, "airflow");
    mkdirSync(join(dagFolder, "etl"), { recursive: true });
    writeFileSync(join(dagFolder, "etl/hand_written.py"), "mine = 1\n");

    const foreign = await sync(["--dag-folder", dagFolder], vars);
    expect(foreign.exitCode).toBe(2);
    expect(String(foreign.summary?.error)).toContain(`${join(dagFolder, "etl")} holds files that are not package "etl"`);
    expect(filesIn(join(dagFolder, "etl"))).toEqual({ "hand_written.py": "mine = 1\n" });

    const unpublished = await sync(["--dag-folder", join(work)], { ...vars, ENV: "staging" });
    expect(unpublished.exitCode).toBe(2);
    expect(String(unpublished.summary?.error)).toContain(`s3://${bucket}/staging/etl/ holds no metadata.json`);
    expect(existsSync(join(work, "etl"))).toBe(false);

    const missing = await sync(["--dag-folder", join(work, "nowhere")], vars);
    expect(missing.exitCode).toBe(2);
    expect(String(missing.summary?.error)).toContain("is not a folder");
  });

  test("a package republished while the sync downloads it is not mixed in: a transient error (exit 75), folder untouched; the next run takes it", async () => {
    const bucketDir = join(work, "bucket");
    const store = new FileStore(bucketDir);
    const dagFolder = join(work, "airflow");
    mkdirSync(dagFolder);
    const write = async (key: string, body: string) => {
      mkdirSync(join(bucketDir, key, ".."), { recursive: true });
      writeFileSync(join(bucketDir, key), body);
    };
    await write("prod/etl/etl_a.py", "a = 1\n");
    await write("prod/etl/metadata.json", JSON.stringify({ package: "etl", dags: [{ file: "etl_a.py" }] }));
    // The real store, with a publisher that lands a new metadata.json after the sync has read the
    // package and before it reads metadata.json again to confirm nothing moved under it.
    let metadataReads = 0;
    const racing: ObjectStore = Object.assign(Object.create(store), {
      read: async (key: string) => {
        if (key.endsWith("metadata.json") && ++metadataReads === 2) {
          await write("prod/etl/metadata.json", JSON.stringify({ package: "etl", image_tag: "2", dags: [{ file: "etl_a.py" }] }));
        }
        return store.read(key);
      },
    });
    const log = createLogger({ format: "json", level: "error", secrets: [], write: () => {} });
    const options = { store: racing, prefix: "prod/etl/", packageName: "etl", dagFolder, dryRun: false, log, signal: new AbortController().signal };
    const raced = await mirrorPackage(options).catch((error) => error);
    expect(raced).toMatchObject({ code: "transient", message: expect.stringContaining("was republished during the sync") });
    expect(readdirSync(dagFolder)).toEqual([]);
    expect(await mirrorPackage(options)).toEqual({ added: 2, updated: 0, removed: 0, unchanged: 0 });
  });
});
