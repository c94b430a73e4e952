import * as v from "valibot";
import { unsafePrefixReason } from "../storage/object_key";
import { parseLocation, type Location } from "../storage/object_store";

/**
 * One argument declaration gives the CLI flag, its help text, its default and its validation,
 * so `--help` and the error for a bad value come from the same place.
 */
export interface ArgSpec<T> {
  help: string;
  /**
   * "value" flags take one value (`--agency-id 10`); "switch" flags take none (`--verbose`);
   * "rest" is everything after a `--`, handed on untouched (backfill's arguments for its job).
   */
  kind: "value" | "switch" | "rest";
  /** Placeholder shown in help, e.g. "<id>". */
  placeholder: string;
  /** Raw text used when the flag is absent; shown in help. */
  default?: string;
  /** Environment variables read when the flag is absent, before the default. */
  fromEnv?: (env: Record<string, string | undefined>) => string | undefined;
  envHelp?: string;
  /** The values the flag takes, when it takes one of a list; shown in help. */
  choices?: readonly string[];
  /** Validates the raw text (undefined when absent and no default) into the typed value. */
  schema: v.GenericSchema<string | boolean | string[] | undefined, T>;
}

export type ArgSpecs = Record<string, ArgSpec<unknown>>;
export type ArgValues<S extends ArgSpecs> = { [K in keyof S]: S[K] extends ArgSpec<infer T> ? T : never };

export function kebabCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const REQUIRED = "is required";

interface Common {
  default?: string | number;
  /** Environment variable read when the flag is absent, before the default. */
  env?: string;
}

/** The fields every value flag shares: help, placeholder, default and the environment fallback. */
function valueFlag(help: string, placeholder: string, options: Common): Omit<ArgSpec<never>, "schema"> {
  const { env } = options;
  return {
    help,
    kind: "value",
    placeholder,
    default: options.default?.toString(),
    ...(env ? { fromEnv: (vars: Record<string, string | undefined>) => vars[env]?.trim() || undefined, envHelp: env } : {}),
  };
}

function integer(help: string, options: Common & { min?: number; max?: number; placeholder?: string } = {}): ArgSpec<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = options;
  return {
    ...valueFlag(help, options.placeholder ?? "<n>", options),
    schema: v.pipe(
      v.string(REQUIRED),
      v.regex(/^\s*-?\d+\s*$/, "must be a whole number"),
      v.transform(Number),
      v.safeInteger("must be a whole number"),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
  };
}

function number(help: string, options: Common & { min?: number; max?: number; placeholder?: string } = {}): ArgSpec<number> {
  const { min = -Number.MAX_VALUE, max = Number.MAX_VALUE } = options;
  return {
    ...valueFlag(help, options.placeholder ?? "<x>", options),
    schema: v.pipe(
      v.string(REQUIRED),
      v.regex(/^\s*-?(\d+(\.\d*)?|\.\d+)\s*$/, "must be a number such as 0.01"),
      v.transform(Number),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
  };
}

function text(help: string, options: Common & { placeholder?: string; pattern?: RegExp; patternHelp?: string } = {}): ArgSpec<string> {
  return {
    ...valueFlag(help, options.placeholder ?? "<text>", options),
    schema: v.pipe(v.string(REQUIRED), v.regex(options.pattern ?? /[^]*/, options.patternHelp ?? "is malformed")),
  };
}

/** One of `choices`: the help lists them, and so does the error for any other value. */
function choice(help: string, choices: readonly string[], options: Common & { placeholder?: string } = {}): ArgSpec<string> {
  const listed = choices.join(", ") || "(none)";
  return {
    ...valueFlag(help, options.placeholder ?? "<name>", options),
    choices,
    schema: v.pipe(v.string(REQUIRED), v.check((value) => choices.includes(value.trim()), `must be one of: ${listed}`), v.transform((value) => value.trim())),
  };
}

/** The same flag, left out when not given: `arg.optional(arg.integer(...))`. */
function optional<T>(spec: ArgSpec<T>): ArgSpec<T | undefined> {
  return { ...spec, schema: v.optional(spec.schema as v.GenericSchema<string, T>) };
}

function optionalText(help: string, options: { placeholder?: string; pattern?: RegExp; patternHelp?: string; env?: string } = {}): ArgSpec<string | undefined> {
  return optional(text(help, options));
}

/** A calendar day, YYYY-MM-DD (2026-02-30 is refused), kept as that text. */
function date(help: string, options: Common = {}): ArgSpec<string> {
  return {
    ...valueFlag(help, "<YYYY-MM-DD>", options),
    schema: v.pipe(
      v.string(REQUIRED),
      v.regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date YYYY-MM-DD"),
      v.check((s) => {
        const day = new Date(`${s}T00:00:00Z`);
        return !Number.isNaN(day.getTime()) && day.toISOString().startsWith(s);
      }, "must be a date YYYY-MM-DD that exists"),
    ),
  };
}

function optionalDate(help: string): ArgSpec<string | undefined> {
  return optional(date(help));
}

/** A bucket: `name` or `s3://name`, or a local directory: `file:///abs/path` or `file:relative/path`. */
function location(help: string, options: Common = {}): ArgSpec<Location> {
  return {
    ...valueFlag(help, "<bucket|file:dir>", options),
    schema: v.pipe(
      v.string(REQUIRED),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        try {
          return parseLocation(dataset.value);
        } catch (error) {
          addIssue({ message: (error as Error).message });
          return NEVER;
        }
      }),
    ),
  };
}

/** An optional key prefix: empty, or relative segments ending in "/" (core/storage/object_key.ts). */
function keyPrefix(help: string): ArgSpec<string | undefined> {
  return {
    ...valueFlag(help, "<prefix>", {}),
    schema: v.optional(v.pipe(v.string(), v.rawCheck(({ dataset, addIssue }) => {
      const reason = dataset.typed ? unsafePrefixReason(dataset.value) : undefined;
      if (reason) addIssue({ message: reason });
    }))),
  };
}

function flag(help: string): ArgSpec<boolean> {
  return { help, kind: "switch", placeholder: "", schema: v.pipe(v.optional(v.boolean(), false), v.boolean()) };
}

export interface Shard {
  index: number;
  count: number;
}

/** Whether a parsed argument value is a Shard (arg.shard's output). */
export function isShard(value: unknown): value is Shard {
  return typeof value === "object" && value !== null && "index" in value && "count" in value;
}

/**
 * `--shard i/n`: this run handles the items whose id % n = i. Without the flag, a Kubernetes
 * Indexed Job's JOB_COMPLETION_INDEX (with JOB_COMPLETION_COUNT) gives it.
 */
function shard(help: string): ArgSpec<Shard | undefined> {
  return {
    help,
    kind: "value",
    placeholder: "<i/n>",
    fromEnv: (env) => {
      const index = env.JOB_COMPLETION_INDEX?.trim();
      if (!index) return undefined;
      return `${index}/${env.JOB_COMPLETION_COUNT?.trim() ?? ""}`;
    },
    envHelp: "JOB_COMPLETION_INDEX/JOB_COMPLETION_COUNT",
    schema: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d+\/\d+$/, "must be i/n with whole numbers, e.g. 0/4 (JOB_COMPLETION_COUNT must be set with JOB_COMPLETION_INDEX)"),
        v.transform((s) => {
          const [index, count] = s.split("/").map(Number) as [number, number];
          return { index, count };
        }),
        v.check((s) => s.count >= 1 && s.index < s.count, "must have 0 <= i < n, e.g. 0/4"),
      ),
    ),
  };
}

function rest(help: string): ArgSpec<string[]> {
  return { help, kind: "rest", placeholder: "-- <args...>", schema: v.optional(v.array(v.string()), []) };
}

export const arg = { integer, number, text, choice, optionalText, date, optionalDate, keyPrefix, location, flag, shard, rest, optional };

/**
 * The argv that gives `values` back to a job whose arguments are `specs`: the inverse of parsing,
 * for a scheduled run's fixed arguments and for a recorded run replayed. Values are raw flag
 * values or parsed ones (a shard as {index, count}); absent and false ones are left out.
 */
export function argvOf(specs: ArgSpecs, values: Record<string, unknown>): string[] {
  const argv: string[] = [];
  const rest: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const value = values[key];
    if (value === undefined || value === null || value === false) continue;
    const flag = `--${kebabCase(key)}`;
    if (spec.kind === "rest") {
      if (Array.isArray(value) && value.length) rest.push("--", ...value.map(String));
    } else if (spec.kind === "switch") argv.push(flag);
    else if (isShard(value)) argv.push(flag, `${value.index}/${value.count}`);
    else argv.push(flag, String(value));
  }
  return [...argv, ...rest];
}

/** Validates one raw value; returns the typed value or the reason it was refused. */
export function validateArg<T>(spec: ArgSpec<T>, raw: string | boolean | string[] | undefined): { ok: true; value: T } | { ok: false; reason: string } {
  const result = v.safeParse(spec.schema, raw);
  return result.success ? { ok: true, value: result.output } : { ok: false, reason: result.issues[0].message };
}
