import { hostname, userInfo } from "node:os";
import { listQuarantined, releaseQuarantined, RELEASED_SUFFIX, type ReleaseRecord } from "./quarantine";
import { DeadLetterAdmin } from "../../../core/ledger/dead_letters";
import type { CliIo } from "../../../core/cli/io";
import type { PlatformConfig } from "../../../core/config";
import type { Sql } from "../../../core/db/db";
import { parseLocation, type ObjectStore } from "../../../core/storage/object_store";
import { ObjectStores } from "../../../core/storage/object_stores";
import { CommandUsageError, formatTable, parseCommandArgs, runOperatorCommand } from "../../../core/cli/commands/operator";

const USAGE = `etl quarantine list --bucket B [--job J] [--released] [--json]
       etl quarantine release <quarantine key> --bucket B --reason TEXT`;

/** `etl quarantine`: the files file_processing jobs refused (DESIGN.md "file_processing"): list them, put one back. */
export async function quarantineCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list":
      return runOperatorCommand("etl quarantine list", io, (_sql, config) => withStore("etl quarantine list", rest, config, (store, values, positionals) => list(store, values, positionals, io)), { needsDatabase: false });
    case "release":
      return runOperatorCommand("etl quarantine release", io, (sql, config) => withStore("etl quarantine release", rest, config, (store, values, positionals) => release(store, values, positionals, sql, io)), { needsDatabase: "optional" });
    case "-h":
    case "--help":
    case "help":
      io.out(`usage: ${USAGE}\nthe files file_processing jobs refused, with the rule each broke; release puts one back for its job's next run\n`);
      return 0;
    default:
      io.err(`etl quarantine: ${sub ? `unknown command "${sub}"` : "name a command"}\nusage: ${USAGE}\n`);
      return 2;
  }
}

type Values = { bucket?: string; job?: string; released?: boolean; json?: boolean; reason?: string };

async function withStore(command: string, args: string[], config: PlatformConfig, body: (store: ObjectStore, values: Values, positionals: string[]) => Promise<number>): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    command,
    args,
    { bucket: { type: "string" }, job: { type: "string" }, released: { type: "boolean" }, json: { type: "boolean" }, reason: { type: "string" } },
    USAGE,
  );
  if (!values.bucket) throw new CommandUsageError(`${command}: name the bucket or directory with --bucket (s3://name or file:///path)\nusage: ${USAGE}`);
  let location;
  try {
    location = parseLocation(values.bucket);
  } catch (error) {
    throw new CommandUsageError(`${command}: --bucket ${(error as Error).message}`);
  }
  const stores = new ObjectStores({ s3Endpoint: config.s3Endpoint, awsRegion: config.awsRegion, s3TimeoutMs: config.s3TimeoutMs });
  try {
    const store = await stores.open(location);
    // A mistyped bucket or directory is said so, not listed as "nothing quarantined".
    if (!(await store.exists())) throw new CommandUsageError(`${command}: --bucket ${store.url} does not exist`);
    return await body(store, values, positionals);
  } finally {
    await stores.close();
  }
}

async function list(store: ObjectStore, values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (values.reason !== undefined) throw new CommandUsageError(`etl quarantine list: --reason belongs to release\nusage: ${USAGE}`);
  if (positionals.length) throw new CommandUsageError(`etl quarantine list: unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const records = await listQuarantined(store, { job: values.job, released: values.released === true });
  if (values.json) {
    io.out(`${JSON.stringify(records, null, 2)}\n`);
    return 0;
  }
  if (!records.length) {
    io.out(`nothing quarantined in ${store.url}${values.job ? ` by ${values.job}` : ""}\n`);
    return 0;
  }
  const released = (r: object): r is ReleaseRecord => "releasedAt" in r;
  io.out(
    formatTable(
      ["QUARANTINED", "JOB", "RULE", "SIZE", ...(values.released ? ["RELEASED"] : []), "KEY", "DETAIL"],
      records.map((r) => [
        r.quarantinedAt.replace(/\.\d+Z$/, "Z"),
        r.job,
        r.rule,
        String(r.size),
        ...(values.released ? [released(r) ? `${r.releasedAt.replace(/\.\d+Z$/, "Z")} by ${r.releasedBy}` : "-"] : []),
        released(r) ? r.quarantineKey + RELEASED_SUFFIX : r.quarantineKey,
        r.detail.length > 120 ? `${r.detail.slice(0, 117)}...` : r.detail,
      ]),
    ),
  );
  return 0;
}

async function release(store: ObjectStore, values: Values, positionals: string[], sql: Sql | undefined, io: CliIo): Promise<number> {
  const [key, ...extra] = positionals;
  if (!key || extra.length) throw new CommandUsageError(`etl quarantine release: name one quarantined key (etl quarantine list shows them)\nusage: ${USAGE}`);
  const reason = values.reason?.trim();
  if (!reason) throw new CommandUsageError(`etl quarantine release: say why with --reason TEXT; it is kept with the release record`);
  if (values.job !== undefined || values.released !== undefined || values.json !== undefined) throw new CommandUsageError(`etl quarantine release: takes only --bucket and --reason\nusage: ${USAGE}`);
  const by = `${io.env.USER ?? safeUser()}@${hostname()}`;
  const record = await releaseQuarantined(store, key, { reason, by });
  const resolved = sql ? await new DeadLetterAdmin(sql).release(record.job, record.key, reason) : false;
  io.out(`released ${store.url}/${key} to ${record.key}${resolved ? "; its dead letter is resolved as released" : ""}; ${record.job} processes it on its next run\n`);
  return 0;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}
