import type { Dataset } from "../core/dataset";
import { UsageError } from "../core/errors";
import { DATASETS } from "../core/registry.generated";

/** The datasets' names, as processors/datasets/ holds them (one file each). */
export function datasetNames(): string[] {
  return DATASETS.map((d) => d.name);
}

/** The dataset `name`; an unknown one is a usage error naming the known ones. */
export async function loadDataset(name: string, flag = "--dataset"): Promise<Dataset> {
  const entry = DATASETS.find((d) => d.name === name);
  if (!entry) throw new UsageError(`${flag} ${name}: no such dataset; known datasets: ${datasetNames().join(", ")}`);
  const { DATASET } = await entry.load();
  if (DATASET.name !== name) throw new Error(`processors/datasets/${name}.ts declares dataset "${DATASET.name}"; the name must be the file name`);
  return DATASET;
}
