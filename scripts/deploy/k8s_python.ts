/**
 * Python source for values of generated DAGs: scalars, lists and dicts as literals, and Kubernetes
 * API objects (as scripts/deploy/pod_spec.ts gives them) as kubernetes-client model constructors, e.g.
 * {runAsUser: 65532} as k8s.V1PodSecurityContext(run_as_user=65532).
 */
type Value = string | number | boolean | Value[] | { [key: string]: Value };

/**
 * Per model, the model each object-valued field takes ("dict": a plain dict), as the client's
 * openapi_types declare them. An object field not listed is refused rather than passed as a dict
 * the client would not turn into its model.
 */
const FIELDS: Record<string, Record<string, string>> = {
  V1ResourceRequirements: { requests: "dict", limits: "dict" },
  V1PodSecurityContext: { seccompProfile: "V1SeccompProfile" },
  V1SeccompProfile: {},
  V1SecurityContext: { capabilities: "V1Capabilities", seccompProfile: "V1SeccompProfile" },
  V1Capabilities: {},
  V1Volume: { emptyDir: "V1EmptyDirVolumeSource" },
  V1EmptyDirVolumeSource: {},
  V1VolumeMount: {},
  V1EnvFromSource: { configMapRef: "V1ConfigMapEnvSource", secretRef: "V1SecretEnvSource" },
  V1ConfigMapEnvSource: {},
  V1SecretEnvSource: {},
};

/** A Python literal: strings as JSON strings (valid Python), True/False, lists, dicts. */
export function py(value: Value): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return `[${value.map(py).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(", ")}}`;
}

/** `value` (Kubernetes API field names) as a constructor call of the client's `model`. */
export function pyModel(model: string, value: object): string {
  const fields = FIELDS[model];
  if (!fields) throw new Error(`no kubernetes-client model ${model} in scripts/deploy/k8s_python.ts`);
  const args = Object.entries(value as Record<string, Value>).map(([key, v]) => {
    const nested = fields[key];
    const isObject = typeof v === "object" && !Array.isArray(v);
    if (isObject && !nested) throw new Error(`${model}.${key}: an object field with no model in scripts/deploy/k8s_python.ts`);
    return `${snakeCase(key)}=${isObject && nested !== "dict" ? pyModel(nested!, v) : py(v)}`;
  });
  return `k8s.${model}(${args.join(", ")})`;
}

/** The client's attribute name for an API field: runAsNonRoot -> run_as_non_root. */
function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
