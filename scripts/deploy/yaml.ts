/**
 * A small YAML writer for generated manifests: maps, lists, strings, numbers and booleans, in
 * insertion order, so the same input always gives the same bytes. Strings are written as JSON
 * strings, which YAML reads as double-quoted scalars: no value can be mistaken for a number, a
 * boolean or a YAML keyword.
 */
type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml | undefined };

export function toYaml(value: Yaml, indent = 0): string {
  return render(value, indent).join("\n") + "\n";
}

function render(value: Yaml, indent: number): string[] {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${pad}[]`];
    return value.flatMap((item) => {
      const lines = isScalar(item) ? [`${pad}  ${scalar(item)}`] : render(item, indent + 2);
      return [`${pad}- ${lines[0]!.trimStart()}`, ...lines.slice(1)];
    });
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined) as Array<[string, Yaml]>;
    if (entries.length === 0) return [`${pad}{}`];
    return entries.flatMap(([key, v]) => {
      const k = /^[A-Za-z0-9_.\/-]+$/.test(key) ? key : JSON.stringify(key);
      if (isScalar(v) || (Array.isArray(v) && v.length === 0) || (isMap(v) && Object.keys(v).length === 0)) {
        return [`${pad}${k}: ${isScalar(v) ? scalar(v) : Array.isArray(v) ? "[]" : "{}"}`];
      }
      return [`${pad}${k}:`, ...render(v, Array.isArray(v) ? indent : indent + 2)];
    });
  }
  return [`${pad}${scalar(value)}`];
}

function isScalar(v: Yaml): v is string | number | boolean | null {
  return v === null || typeof v !== "object";
}

function isMap(v: Yaml): v is { [key: string]: Yaml } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function scalar(v: string | number | boolean | null): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}
