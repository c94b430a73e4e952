/**
 * `etl manifests` and `etl dags`: write the deployment artifacts generated from the job
 * declarations; `--check` exits 1 when the files on disk differ (what CI relies on).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Job } from "../../core/runtime/job";
import pkg from "../../package.json";
import { renderDags, writeDags } from "./dags";
import { renderManifests, writeManifests } from "./manifests";

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export async function generate(command: "manifests" | "dags", args: string[], jobs: Job[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: "string" },
        "image-prefix": { type: "string", default: "" },
        "image-tag": { type: "string", default: pkg.version },
        package: { type: "string", default: "etl" },
        namespace: { type: "string", default: "etl" },
        check: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.err(`etl ${command}: ${(error as Error).message}\n`);
    return 2;
  }
  const out = values.out ?? (command === "manifests" ? "deploy" : join("dags", values.package));
  const image = { imagePrefix: values["image-prefix"], imageTag: values["image-tag"] };
  const files =
    command === "manifests"
      ? renderManifests(jobs, image)
      : renderDags(jobs, { ...image, packageName: values.package, namespace: values.namespace });
  if (values.check) {
    const drifted = [...files].filter(([file, content]) => !existsSync(join(out, file)) || readFileSync(join(out, file), "utf8") !== content);
    for (const [file] of drifted) io.err(`etl ${command}: ${join(out, file)} differs from the jobs; run \`bun run etl ${command}\`\n`);
    return drifted.length ? 1 : 0;
  }
  const written = await (command === "manifests" ? writeManifests : writeDags)(out, files);
  for (const file of written) io.out(`wrote ${join(out, file)}\n`);
  return 0;
}
