/**
 * A DAG package as `etl dags` writes it and as it is published: flat DAG files plus
 * metadata.json naming them, under exactly one prefix per environment, `<env>/<package>/`.
 */
import * as v from "valibot";
import { arg } from "../../../core/runtime/args";

export const METADATA_FILE = "metadata.json";

/** One path segment: no "/", no "..", nothing that could reach another package's prefix. */
export const SEGMENT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const SEGMENT_HELP = "must be one path segment of a-z 0-9 _ - (at most 63, starting with a letter or digit)";

/** The flags (or environment) that name a published package, shared by the publisher and the sync. */
export const PACKAGE_ARGS = {
  dagBucket: arg.location("bucket (or file:dir) holding the DAG packages; a bucket, never a prefix", { env: "DAG_BUCKET" }),
  env: arg.text("environment: the first segment of the package's prefix", { env: "ENV", placeholder: "<env>", pattern: SEGMENT, patternHelp: SEGMENT_HELP }),
  package: arg.text("package: the second segment of the prefix", { env: "PACKAGE_NAME", placeholder: "<name>", pattern: SEGMENT, patternHelp: SEGMENT_HELP }),
};

/** The only prefix a package is published under and mirrored from. */
export function packagePrefix(env: string, packageName: string): string {
  for (const [name, value] of [["env", env], ["package", packageName]]) {
    if (!SEGMENT.test(value!)) throw new Error(`${name} "${value}" ${SEGMENT_HELP}`);
  }
  return `${env}/${packageName}/`;
}

const DAG_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.py$/;

const MetadataSchema = v.object({
  package: v.string(),
  dags: v.array(v.object({ file: v.pipe(v.string(), v.regex(DAG_FILE, "must be a flat .py file name")) })),
});

export interface DagPackageMetadata {
  package: string;
  /** The DAG files the package is made of, as metadata.json lists them. */
  files: string[];
}

/** Reads metadata.json; `where` names it in errors. Throws a plain Error saying what is wrong. */
export function parseMetadata(text: string, where: string): DagPackageMetadata {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not JSON: ${(error as Error).message}`);
  }
  const result = v.safeParse(MetadataSchema, json);
  if (!result.success) {
    const issue = result.issues[0];
    throw new Error(`${where}: ${v.getDotPath(issue) ?? "document"} ${issue.message}`);
  }
  return { package: result.output.package, files: result.output.dags.map((d) => d.file) };
}
