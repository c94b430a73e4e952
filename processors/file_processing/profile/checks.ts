import { checkColumns, checkName, type Dataset, type DatasetCheck } from "../../../core/dataset";
import type { DuplicatedValues } from "./duplicates";
import type { CheckResult } from "./profile_document";
import { DECLARED_DUCKDB_TYPE, quoteText, type ProfiledColumn } from "./relation";

/** A declared check, resolved against the profiled columns. */
export interface PlannedCheck {
  check: DatasetCheck;
  name: string;
  severity: "warn" | "error";
  mostly: number;
  columns: ProfiledColumn[];
  /** Why it cannot be evaluated on these files, if so. */
  skipped?: string;
  /** Why it fails before anything is counted (a column it reads is not there). */
  missing?: string;
  /** A condition on `profiled` true for the failing rows (row checks); set for unique once duplicates are known. */
  condition?: string;
}

/**
 * Resolves the dataset's checks. A column a check reads that is not in the files fails it,
 * except an enrichment column when raw files are profiled (`partition` false): only silver has those.
 */
export function planChecks(dataset: Dataset, columns: readonly ProfiledColumn[], partition: boolean): PlannedCheck[] {
  const enriched = new Set((dataset.enrich ?? []).flatMap((e) => Object.keys(e.columns)));
  return (dataset.checks ?? []).map((check) => {
    const names = checkColumns(check);
    const found = names.map((n) => columns.find((c) => c.name === n)).filter((c): c is ProfiledColumn => !!c);
    const absent = names.filter((n) => !columns.some((c) => c.name === n));
    const planned: PlannedCheck = { check, name: checkName(check), severity: check.severity ?? "error", mostly: "mostly" in check ? (check.mostly ?? 1) : 1, columns: found };
    if (absent.length && !partition && absent.every((n) => enriched.has(n))) planned.skipped = `${absent.join(", ")} is added by enrichment, in silver only`;
    else if (absent.length) planned.missing = `column ${absent.join(", ")} is not in the files`;
    else planned.condition = rowCondition(check, found);
    return planned;
  });
}

function literal(value: string | number | boolean): string {
  return typeof value === "string" ? quoteText(value) : String(value);
}

/** The failing rows' condition, for the row checks other than unique. */
function rowCondition(check: DatasetCheck, [column]: ProfiledColumn[]): string | undefined {
  if (!column) return undefined;
  const v = column.value;
  switch (check.kind) {
    case "not_null":
      return `${column.raw} is null`;
    case "in_set":
      return `${v} is not null and ${v} not in (${check.values.map(literal).join(", ")})`;
    case "regex":
      return `${v} is not null and not regexp_matches(${v}::varchar, ${quoteText(check.pattern)})`;
    case "between": {
      const outside = [check.min !== undefined ? `${v} < ${literal(check.min)}` : "", check.max !== undefined ? `${v} > ${literal(check.max)}` : ""].filter(Boolean);
      return `(${outside.join(" or ")})`;
    }
    default:
      return undefined;
  }
}

/** Aggregates for the profile's main scan: each row check's failing and evaluated rows, each freshness column's newest value. */
export function checkAggregates(planned: readonly PlannedCheck[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, p] of planned.entries()) {
    if (p.skipped || p.missing) continue;
    const [column] = p.columns;
    if (p.condition) out[`c${i}_failing`] = `count_if(${p.condition})::double`;
    switch (p.check.kind) {
      case "in_set":
      case "regex":
      case "between":
        out[`c${i}_evaluated`] = `count(${column!.value})::double`;
        break;
      case "unique":
        out[`c${i}_evaluated`] = `count_if(${p.columns.map((c) => `${c.raw} is not null`).join(" and ")})::double`;
        break;
      case "freshness":
        out[`c${i}_newest`] = `epoch(max(${column!.value}))::double`;
        break;
    }
  }
  return out;
}

export interface CheckInputs {
  rows: number;
  /** checkAggregates' values. */
  aggregates: Record<string, unknown>;
  /** Per unique check (by name), its columns' duplicated values. */
  duplicated: Map<string, DuplicatedValues>;
  columns: readonly ProfiledColumn[];
  /** The columns the schema check expects, with the DuckDB type where the files are typed. */
  expectedColumns: ReadonlyArray<{ name: string; type?: string }>;
  /** What freshness is measured against. */
  referenceTime: Date;
}

/** The checks counted in rows, whose `mostly` applies; the others are about the whole table. */
const ROW_KINDS = new Set<DatasetCheck["kind"]>(["not_null", "unique", "in_set", "regex", "between"]);

/** A passing share in %, floored to 0.01 so a share short of 100% never reads as 100%. */
export const passingPercent = (share: number) => `${Math.floor(share * 10_000 + 1e-9) / 100}%`;

/** Each planned check's outcome; samples and failures files are added for the failing ones afterwards. */
export function evaluateChecks(planned: readonly PlannedCheck[], inputs: CheckInputs): CheckResult[] {
  return planned.map((p, i) => {
    const range = p.check.kind === "between" ? { range: { ...(p.check.min !== undefined ? { min: p.check.min } : {}), ...(p.check.max !== undefined ? { max: p.check.max } : {}) } } : {};
    const base = { name: p.name, kind: p.check.kind, columns: [...checkColumns(p.check)], severity: p.severity, mostly: p.mostly, ...range };
    if (p.skipped) return { ...base, status: "skipped", failing: 0, evaluated: 0, passingShare: 1, detail: `skipped: ${p.skipped}` };
    const measured = p.missing ? { failing: 1, evaluated: 1, detail: p.missing } : measure(p, i, inputs);
    const passingShare = measured.evaluated ? (measured.evaluated - measured.failing) / measured.evaluated : 1;
    const rowCheck = ROW_KINDS.has(p.check.kind);
    const passed = rowCheck && !p.missing ? passingShare >= p.mostly : measured.failing === 0;
    const status = passed ? "passed" : p.severity === "error" ? "failed" : "warned";
    const detail = rowCheck && !p.missing && measured.failing ? `${measured.detail}; ${passingPercent(passingShare)} pass, ${passingPercent(p.mostly)} must` : measured.detail;
    return { ...base, status, failing: measured.failing, evaluated: measured.evaluated, passingShare, detail };
  });
}

function measure(p: PlannedCheck, i: number, inputs: CheckInputs): { failing: number; evaluated: number; detail: string } {
  const aggregate = (name: string) => Number(inputs.aggregates[`c${i}_${name}`] ?? 0);
  const check = p.check;
  const of = (failing: number, evaluated: number, what: string) => ({ failing, evaluated, detail: `${failing} of ${evaluated} ${what}` });
  switch (check.kind) {
    case "not_null":
      return of(aggregate("failing"), inputs.rows, "rows are null");
    case "in_set":
      return of(aggregate("failing"), aggregate("evaluated"), `values are not one of ${check.values.join(", ")}`);
    case "regex":
      return of(aggregate("failing"), aggregate("evaluated"), `values do not match ${check.pattern}`);
    case "between":
      return of(aggregate("failing"), aggregate("evaluated"), `values are outside [${check.min ?? "-∞"}, ${check.max ?? "∞"}]`);
    case "unique": {
      const duplicated = inputs.duplicated.get(p.name);
      return of(duplicated?.rows ?? 0, aggregate("evaluated"), `rows share their value with another (${duplicated?.values ?? 0} values repeated)`);
    }
    case "row_count_between": {
      const outside = (check.min !== undefined && inputs.rows < check.min) || (check.max !== undefined && inputs.rows > check.max);
      return { failing: outside ? 1 : 0, evaluated: 1, detail: `${inputs.rows} rows, expected ${check.min ?? 0} to ${check.max ?? "any number"}` };
    }
    case "freshness": {
      const newest = inputs.aggregates[`c${i}_newest`];
      if (typeof newest !== "number") return { failing: 1, evaluated: 1, detail: `${check.column} has no value` };
      const hours = (inputs.referenceTime.getTime() / 1000 - newest) / 3600;
      // A newest value later than the reference time (a clock ahead, a partition judged at its day's end) is "after" it, not "-8.3 h before".
      const when = `${Math.abs(hours).toFixed(1)} h ${hours < 0 ? "after" : "before"}`;
      const detail = `newest ${check.column} ${new Date(newest * 1000).toISOString()}, ${when} ${inputs.referenceTime.toISOString()} (at most ${check.maxAgeHours} h)`;
      return { failing: hours > check.maxAgeHours ? 1 : 0, evaluated: 1, detail };
    }
    case "schema": {
      const problems = schemaProblems(inputs.columns, inputs.expectedColumns, check.allowExtraColumns ?? false);
      return { failing: problems.length, evaluated: inputs.expectedColumns.length, detail: problems.length ? problems.join("; ") : "the declared columns and types" };
    }
  }
}

function schemaProblems(columns: readonly ProfiledColumn[], expected: ReadonlyArray<{ name: string; type?: string }>, allowExtra: boolean): string[] {
  const problems: string[] = [];
  const missing = expected.filter((e) => !columns.some((c) => c.name === e.name)).map((e) => e.name);
  if (missing.length) problems.push(`missing ${missing.join(", ")}`);
  const extra = columns.filter((c) => !expected.some((e) => e.name === c.name)).map((c) => c.name);
  if (extra.length && !allowExtra) problems.push(`not declared: ${extra.join(", ")}`);
  for (const e of expected) {
    const found = columns.find((c) => c.name === e.name);
    if (found && e.type && found.readType !== e.type) problems.push(`${e.name} is ${found.readType}, declared ${e.type}`);
  }
  return problems;
}

/**
 * The columns a dataset's files should have: the declared ones, with their silver types when the
 * files are typed (Parquet), and for a silver partition the enrichment's too (untyped here: the
 * lookup decides them).
 */
export function expectedColumns(dataset: Dataset, o: { partition: boolean; typed: boolean }): Array<{ name: string; type?: string }> {
  const declared = Object.entries(dataset.columns).map(([name, spec]) => ({ name, ...(o.typed ? { type: DECLARED_DUCKDB_TYPE[spec.type] } : {}) }));
  const enriched = o.partition ? (dataset.enrich ?? []).flatMap((e) => Object.keys(e.columns).map((name) => ({ name }))) : [];
  return [...declared, ...enriched];
}

/** The failing rows' condition of a check that failed and reads rows, for its sample and failures file. */
export function failingRowsCondition(p: PlannedCheck, duplicated: Map<string, DuplicatedValues>): string | undefined {
  if (p.check.kind === "unique") return duplicated.get(p.name)?.condition;
  return p.condition;
}
