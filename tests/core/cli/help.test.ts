/**
 * Every job's `--help` lists every flag of its declaration: parsed in-process by the parser every
 * job uses, and printed by each job's real entrypoint in a process of its own (`bun scripts/etl.ts
 * <job> --help`, and a job file run directly). Commander writes help in pieces (the options, then
 * each addHelpText block); backfill's once printed only its last piece, the "After --" line.
 */
import { describe, expect, test } from "bun:test";
import { kebabCase, type ArgSpecs } from "../../../core/runtime/args";
import { parseJobArgv } from "../../../core/runtime/parse_args";
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

  test("backfill, printed by `bun jobs/backfill.ts --help`: its flags, then what goes after --", async () => {
    const run = await runCommand(["jobs/backfill.ts"], ["--help"]);
    expect(run.exitCode).toBe(0);
    expectListsEveryFlag(run.stdout, jobs.find((j) => j.name === "backfill")!);
    expect(run.stdout).toStartWith("Usage: backfill [options] -- <job-args...>\n");
    expect(run.stdout.indexOf("--job <job>")).toBeLessThan(run.stdout.indexOf("After --: "));
  });
});
