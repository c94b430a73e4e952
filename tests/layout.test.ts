/**
 * The layout's two rules (docs/development.md, "Layout"), checked over every import, static, dynamic or
 * type-only: core/ imports nothing of jobs/, processors/, repositories/ or scripts/ (it is the
 * lowest layer, given what it serves by its entries), and no module reaches itself again through
 * its imports. Before the redesign there were 11 cycles, e.g. core/registry.generated.ts >
 * jobs/backfill.ts, and core/cli.ts > core/commands/runs.ts.
 */
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { ROOT } from "./harness/fixtures";

const SOURCE_DIRS = ["core", "jobs", "processors", "repositories", "scripts", "migrations"];
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\1/g;

function sourceFiles(): string[] {
  return SOURCE_DIRS.flatMap((dir) => [...new Bun.Glob(`${dir}/**/*.ts`).scanSync({ cwd: ROOT })]).filter((f) => !f.endsWith(".d.ts")).sort();
}

/** The project files `file` imports, by path from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(IMPORT)].flatMap(([, , spec]) => {
    const base = join(dirname(file), spec!);
    const found = [base, `${base}.ts`, join(base, "index.ts")].find((candidate) => candidate.endsWith(".ts") && existsSync(join(ROOT, candidate)));
    return found ? [relative(".", found)] : [];
  });
}

const graph = new Map(sourceFiles().map((file) => [file, importsOf(file)]));

test("the import graph is read: every module's relative imports resolve to files", () => {
  expect(graph.size).toBeGreaterThan(150);
  expect(graph.get("jobs/get_s3_files.ts")).toContain("core/runtime/job.ts");
  expect(graph.get("core/runtime/job.ts")).toContain("core/runtime/runner.ts");
});

test("core imports nothing of jobs/, processors/, repositories/ or scripts/", () => {
  const upward = [...graph].flatMap(([file, imports]) =>
    file.startsWith("core/") ? imports.filter((target) => !target.startsWith("core/")).map((target) => `${file} > ${target}`) : [],
  );
  expect(upward).toEqual([]);
});

test("no import cycle anywhere", () => {
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === "open") cycles.push([...path.slice(path.indexOf(target)), target].join(" > "));
      else if (!state.has(target)) visit(target);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  expect(cycles).toEqual([]);
});
