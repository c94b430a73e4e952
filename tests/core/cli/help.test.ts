/**
 * Every job's `--help` lists every flag of its declaration, marks the required ones, ends with an
 * example the job accepts and fits 100 columns: parsed in-process by the parser every
 * job uses, and printed by each job's real entrypoint in a process of its own (`bun scripts/etl.ts
 * <job> --help`, and a job file run directly). Commander writes help in pieces (the options, then
 * each addHelpText block); backfill's once printed only its last piece, the "After --" line.
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../../core/errors";
import { kebabCase, type ArgSpecs } from "../../../core/runtime/args";
import { HELP_WIDTH, isRequired, parseJobArgv } from "../../../core/runtime/parse_args";
import { datasetNames, loadDataset } from "../../../processors/datasets/index";
import { discoverJobs, loadJobs } from "../../../core/runtime/registry";
import { runCommand, runEtl } from "../../harness/fixtures";

const jobs = await loadJobs(discoverJobs());

/** What a job's help must show for each of its flags, and for the flags every job has. */
function expectedLines(args: ArgSpecs): string[] {
  const own = Object.entries(args).map(([key, spec]) =>
    spec.kind === "rest" ? `After --: ${spec.help.slice(0, 40)}` : spec.kind === "switch" ? `--${kebabCase(key)} ` : `--${kebabCase(key)} ${spec.placeholder}`,
  );
  return [...own, "--logical-date <date>", "--force ", "--dry-run ", "-h, --help"];
}

function expectListsEveryFlag(help: string, job: (typeof jobs)[number]): void {
  expect(help).toStartWith(`Usage: ${job.name} [options]`);
  expect(help).toContain(job.description.slice(0, 40));
  for (const line of expectedLines(job.args)) expect({ job: job.name, help: help.includes(line) ? line : help }).toEqual({ job: job.name, help: line });
}

test("there are jobs to check, backfill among them with a rest argument", () => {
  expect(jobs.length).toBeGreaterThan(5);
  expect(Object.values(jobs.find((j) => j.name === "backfill")!.args).some((spec) => spec.kind === "rest")).toBe(true);
});

describe("--help lists every flag of the job's declaration", () => {
  for (const job of jobs) {
    test(`${job.name}, parsed`, () => {
      const parsed = parseJobArgv(job, ["--help"], {});
      expect(parsed.help).toBeString();
      expectListsEveryFlag(parsed.help!, job);
    });
  }

  for (const job of jobs) {
    test(`${job.name}, printed by \`bun scripts/etl.ts ${job.name} --help\``, async () => {
      const run = await runEtl([job.name, "--help"]);
      expect(run.stderr).toBe("");
      expect(run.exitCode).toBe(0);
      expectListsEveryFlag(run.stdout, job);
    });
  }

  for (const job of jobs) {
    test(`${job.name}: lines of 100 columns at most, required flags marked, one example that parses`, () => {
      const help = (parseJobArgv(job, ["--help"], {}) as { help: string }).help;
      const wide = help.split("\n").filter((line) => line.length > HELP_WIDTH);
      expect({ job: job.name, wide }).toEqual({ job: job.name, wide: [] });
      // Each flag's entry runs from its line to the next flag's.
      const entries = help.split(/\n(?=  -)/);
      for (const [key, spec] of Object.entries(job.args)) {
        if (spec.kind === "rest") continue;
        const entry = entries.find((e) => e.trimStart().startsWith(`--${kebabCase(key)} `) || e.trim() === `--${kebabCase(key)}`) ?? "";
        expect({ flag: key, required: /\(required\b/.test(entry) }).toEqual({ flag: key, required: isRequired(spec) });
      }
      expect(job.example).toBeString();
      const example = /\nExample:\n  (etl [^]*)\n$/.exec(help)?.[1];
      expect(example?.replace(/ \\\n +/g, " ")).toBe(`etl ${job.name} ${job.example}`);
      // The example is one the job accepts: it parses, with no environment to fill a flag in.
      const parsed = parseJobArgv(job, job.example!.split(" "), {});
      expect(parsed.help).toBeUndefined();
    });
  }

  test("required flags are the ones a run cannot do without: get_s3_files' buckets, not --agency-id (--all-agencies is the other way)", () => {
    const help = (parseJobArgv(jobs.find((j) => j.name === "get_s3_files")!, ["--help"], {}) as { help: string }).help;
    expect(help).toMatch(/--destination-bucket <bucket\|file:dir>\s+bucket or directory to copy them to \(required\)\n/);
    expect(help).toMatch(/--agency-id <id>\s+agency whose attachments are copied\n/);
  });

  test("ingest_api --dataset offers only the datasets an API feeds, and refuses the others before the run starts", async () => {
    const ingest = jobs.find((j) => j.name === "ingest_api")!;
    const datasets = await Promise.all(datasetNames().map((name) => loadDataset(name)));
    const fedByApi = datasets.filter((d) => d.api).map((d) => d.name);
    const fedByFiles = datasets.filter((d) => !d.api).map((d) => d.name);
    expect([fedByApi, fedByFiles]).toEqual([["service_requests"], ["partner_payments"]]);
    expect((parseJobArgv(ingest, ["--help"], {}) as { help: string }).help).toContain(`dataset fed by an API (required; one of: ${fedByApi.join(", ")})`);
    expect(() => parseJobArgv(ingest, ["--dataset", "partner_payments", "--bucket", "file:lake"], {})).toThrow(new UsageError('ingest_api: --dataset must be one of: service_requests (got "partner_payments")'));
  });

  test("backfill, printed by `bun jobs/backfill.ts --help`: its flags, then what goes after --", async () => {
    const run = await runCommand(["jobs/backfill.ts"], ["--help"]);
    expect(run.exitCode).toBe(0);
    expectListsEveryFlag(run.stdout, jobs.find((j) => j.name === "backfill")!);
    expect(run.stdout).toStartWith("Usage: backfill [options] -- <job-args...>\n");
    expect(run.stdout.indexOf("--job <job>")).toBeLessThan(run.stdout.indexOf("After --: "));
  });
});
