#!/usr/bin/env bun
/**
 * `etl` from source (`bun run etl`, package.json's bin): the dispatcher of core/cli over the jobs
 * jobs/ holds now, with the commands whose code lives outside core. A compiled binary's generated
 * entry (scripts/build/registry_source.ts) gives the dispatcher its build's lists and the same
 * COMMANDS. Each command's module is imported when it runs, so `etl list` loads none of them.
 */
import { runCli } from "../core/cli/dispatcher";
import type { Command } from "../core/cli/io";
import { discoverJobs, loadJobs } from "../core/runtime/registry";

/** `etl manifests` or `etl dags`: the artefact generated from the registry's jobs. */
const generateCommand = (kind: "manifests" | "dags"): Command => async (args, registry, io) =>
  (await import("./deploy/generate")).generate(kind, args, await loadJobs(registry.jobs), io);

export const COMMANDS: Record<string, Command> = {
  // file_processing's quarantine (DESIGN.md "file_processing"): list and release what its jobs refused.
  quarantine: async (args, _registry, io) => (await import("../processors/file_processing/quarantine/command")).quarantineCommand(args, io),
  // observability's status page: the schedules' slots, freshness, dead letters and quarantine in one HTML file.
  report: async (args, registry, io) => (await import("../processors/observability/report/command")).reportCommand(args, registry, io),
  // The deployment artefacts, generated from the jobs' declarations.
  manifests: generateCommand("manifests"),
  dags: generateCommand("dags"),
  // Its run is recorded in the ledger like a job's: a compiled binary has no migrations/ folder to read.
  "publish-dags": async (args, registry) => (await import("./deploy/publish_dags")).PUBLISH_DAGS.entrypoint(args, { registry }),
};

if (import.meta.main) await runCli({ jobs: discoverJobs(), commands: COMMANDS });
