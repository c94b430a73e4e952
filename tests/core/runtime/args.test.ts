import { describe, expect, test } from "bun:test";
import { arg } from "../../../core/runtime/args";
import { UsageError } from "../../../core/errors";
import { parseJobArgv } from "../../../core/runtime/parse_args";

const job = {
  name: "example",
  description: "an example job",
  args: {
    agencyId: arg.integer("agency", { min: 1, placeholder: "<id>" }),
    limit: arg.integer("rows", { min: 1, max: 100, default: 10 }),
    bucket: arg.location("where"),
    label: arg.optionalText("label"),
    verbose: arg.flag("more output"),
    shard: arg.shard("shard"),
  },
};

const parse = (argv: string[], env: Record<string, string> = {}) => parseJobArgv(job, argv, env);

describe("parseJobArgv", () => {
  test("parses typed values, applies defaults and leaves optional flags undefined", () => {
    const parsed = parse(["--agency-id", "42", "--bucket", "s3://my-bucket", "--verbose"]);
    expect(parsed).toEqual({
      args: { agencyId: 42, limit: 10, bucket: { kind: "s3", bucket: "my-bucket" }, label: undefined, verbose: true, shard: undefined },
      dryRun: false,
      force: false,
      logicalDate: undefined,
    });
  });

  test("accepts --flag=value and --dry-run", () => {
    const parsed = parse(["--agency-id=7", "--bucket=file:/tmp/x", "--limit", "100", "--dry-run", "--shard", "1/4"]);
    if (parsed.help !== undefined) throw new Error("unexpected help");
    expect(parsed.args).toMatchObject({ agencyId: 7, limit: 100, bucket: { kind: "file", dir: "/tmp/x" }, shard: { index: 1, count: 4 } });
    expect(parsed.dryRun).toBe(true);
  });

  test("reads the shard from a Kubernetes Indexed Job's environment when the flag is absent", () => {
    const parsed = parse(["--agency-id", "1", "--bucket", "b-b"], { JOB_COMPLETION_INDEX: "2", JOB_COMPLETION_COUNT: "5" });
    expect(parsed.help === undefined && parsed.args.shard).toEqual({ index: 2, count: 5 });
    const flagWins = parse(["--agency-id", "1", "--bucket", "b-b", "--shard", "0/1"], { JOB_COMPLETION_INDEX: "2", JOB_COMPLETION_COUNT: "5" });
    expect(flagWins.help === undefined && flagWins.args.shard).toEqual({ index: 0, count: 1 });
  });

  test("--help returns help listing every flag with its default", () => {
    const parsed = parse(["--help"]);
    expect(parsed.help).toContain("an example job");
    for (const text of ["--agency-id <id>", "--limit <n>", "(default: 10)", "--verbose", "--dry-run", "JOB_COMPLETION_INDEX"]) {
      expect(parsed.help).toContain(text);
    }
  });

  test("every required flag that is missing is named at once, each with the variable that may stand for it", () => {
    const deploy = {
      name: "deploy",
      description: "three required flags, one from the environment",
      args: { source: arg.location("from"), target: arg.location("to"), env: arg.text("environment", { env: "ENV" }), note: arg.optionalText("note") },
    };
    const refusal = (argv: string[], env: Record<string, string> = {}) => {
      try {
        parseJobArgv(deploy, argv, env);
      } catch (error) {
        return error;
      }
    };
    expect(refusal([])).toEqual(new UsageError("deploy: --source, --target and --env (or set ENV) are required"));
    expect(refusal(["--source", "b-b"])).toEqual(new UsageError("deploy: --target and --env (or set ENV) are required"));
    expect(refusal(["--source", "b-b"], { ENV: "prod" })).toEqual(new UsageError("deploy: --target is required"));
    expect(refusal(["--source", "b-b", "--target", "c-c"])).toEqual(new UsageError("deploy: --env is required (or set ENV)"));
    expect(refusal(["--source", "b-b", "--target", "c-c"], { ENV: "prod" })).toBeUndefined();
    // A value given and refused is its own error, whatever else is missing.
    expect(refusal(["--source", "UPPER"])).toBeInstanceOf(UsageError);
    expect((refusal(["--source", "UPPER"]) as Error).message).toStartWith('deploy: --source "UPPER"');
    // --help marks them.
    const help = (parseJobArgv(deploy, ["--help"], {}) as { help: string }).help;
    expect(help).toMatch(/--source <bucket\|file:dir>\s+from \(required\)\n/);
    expect(help).toMatch(/--env <text>\s+environment \(required; or from ENV\)\n/);
    expect(help).toMatch(/--note <text>\s+note\n/);
  });

  test("arg.choice takes one of its values, lists them in help and in the error for another", () => {
    const pick = { name: "pick", description: "a choice", args: { color: arg.choice("the colour", ["red", "green"]) } };
    expect(parseJobArgv(pick, ["--color", "green"], {})).toMatchObject({ args: { color: "green" } });
    expect(() => parseJobArgv(pick, ["--color", "blue"], {})).toThrow(new UsageError('pick: --color must be one of: red, green (got "blue")'));
    expect((parseJobArgv(pick, ["--help"], {}) as { help: string }).help).toMatch(/--color <name>\s+the colour \(required; one of: red, green\)\n/);
  });

  const refusals: Array<[string[], string]> = [
    [["--bucket", "b-b"], "example: --agency-id is required"],
    [["--agency-id", "1.5", "--bucket", "b-b"], 'example: --agency-id must be a whole number (got "1.5")'],
    [["--agency-id", "0", "--bucket", "b-b"], 'example: --agency-id must be at least 1 (got "0")'],
    [["--agency-id", "99999999999999999999", "--bucket", "b-b"], 'example: --agency-id must be a whole number (got "99999999999999999999")'],
    [["--agency-id", "1", "--bucket", "b-b", "--limit", "101"], 'example: --limit must be at most 100 (got "101")'],
    [["--agency-id", "1", "--bucket", "file://host/x"], 'example: --bucket "file://host/x" names a host; use file:///absolute/path or file:relative/path (got "file://host/x")'],
    [["--agency-id", "1", "--bucket", "b-b", "--shard", "a/b"], "example: --shard must be i/n with whole numbers"],
    [["--agency-id", "1", "--bucket", "b-b", "extra"], "example: too many arguments. Expected 0 arguments but got 1: extra."],
  ];
  for (const [argv, message] of refusals) {
    test(`refuses ${argv.join(" ")}`, () => {
      let error: unknown;
      try {
        parse(argv);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message.startsWith(message)).toBe(true);
    });
  }
});
