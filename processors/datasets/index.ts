import type { Dataset } from "../../core/dataset";
import { UsageError } from "../../core/errors";
import { discoverModules, type ModuleEntry } from "../../core/runtime/registry";
import { isCompiled } from "../../core/version";
import { DATASETS } from "./datasets.generated";

/** A dataset known by name (processors/datasets/<name>.ts), loaded only when a job asks for it. */
export type DatasetEntry = ModuleEntry<{ DATASET: Dataset }>;

/** The dataset files beside this catalog, found by file glob as the jobs are: every processors/datasets/<name>.ts is the dataset <name>. */
export const discoverDatasets = (): DatasetEntry[] => discoverModules(import.meta.dir);

/**
 * The datasets: from source, the files processors/datasets/ holds now (a dataset just added is
 * known without a build); in a compiled binary, which cannot glob its bundle, the build's list
 * (datasets.generated.ts, beside them).
 */
const datasets = (): DatasetEntry[] => (isCompiled() ? DATASETS : discoverDatasets());

/** The datasets' names, as processors/datasets/ holds them (one file each). */
export function datasetNames(): string[] {
  return datasets().map((d) => d.name);
}

/** The datasets an HTTP API feeds (their file declares `api`): the ones ingest_api pulls. */
export async function apiDatasetNames(): Promise<string[]> {
  const loaded = await Promise.all(datasetNames().map((name) => loadDataset(name)));
  return loaded.filter((dataset) => dataset.api).map((dataset) => dataset.name);
}

/** The dataset `name`; an unknown one is a usage error naming the known ones. */
export async function loadDataset(name: string, flag = "--dataset"): Promise<Dataset> {
  const entry = datasets().find((d) => d.name === name);
  if (!entry) throw new UsageError(`${flag} ${name}: no such dataset; known datasets: ${datasetNames().join(", ")}`);
  const { DATASET } = await entry.load();
  if (DATASET.name !== name) throw new Error(`processors/datasets/${name}.ts declares dataset "${DATASET.name}"; the name must be the file name`);
  return DATASET;
}
