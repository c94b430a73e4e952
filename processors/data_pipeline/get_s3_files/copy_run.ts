/**
 * One get_s3_files run: one agency (`--agency-id`), or every active agency (`--all-agencies`),
 * each to its own prefix `agency_id=<id>/` with its own manifest, one agency after the other. With
 * `--shard i/n` (a pod of the Indexed Job) a run does the attachments with id % n = i of every
 * agency, so n pods share the work evenly whatever the agencies' sizes: a big agency is split
 * n ways as a small one is. Counts are the run's totals; each agency's are in the summary's and
 * the ledger's `metrics.byAgency` and in the gauge etl_get_s3_files_items{agency_id,kind}.
 */
import type { Counts, JobContext } from "../../../core/runtime/job";
import { SkippedRun } from "../../../core/runtime/contract";
import { UsageError } from "../../../core/errors";
import { addCounts } from "../../../core/runtime/counts";
import { locationUrl, type Location, type ObjectStore } from "../../../core/storage/object_store";
import type { Shard } from "../../../core/runtime/args";
import { DeadLetterRepository } from "../../../core/ledger/dead_letters";
import { AgencyRepository, type Agency } from "../../../repositories/agencies";
import { copyAgencyAttachments } from "./agency_copy";
import { attachmentItemKey } from "./attachment_sync";

export interface CopyRunArgs {
  agencyId: number | undefined;
  allAgencies: boolean;
  sourceBucket: Location;
  destinationBucket: Location;
  destinationPrefix: string | undefined;
  concurrency: number;
  batchSize: number;
  shard: Shard | undefined;
}

export async function runCopy(args: CopyRunArgs, ctx: JobContext, replayIds?: string[]): Promise<Counts | SkippedRun> {
  if (args.allAgencies === (args.agencyId !== undefined)) throw new UsageError("give --agency-id N, or --all-agencies for every active agency");
  if (args.allAgencies && args.destinationPrefix !== undefined) throw new UsageError("--destination-prefix applies to one agency; with --all-agencies each agency goes to agency_id=<id>/");
  const sql = await ctx.db();
  const agencies = new AgencyRepository(sql);
  const [selected, [source, destination]] = await Promise.all([
    args.allAgencies ? agencies.listActiveAgencies() : agencies.findAgency(args.agencyId!).then((a) => (a ? [a] : [])),
    Promise.all([ctx.objectStore(args.sourceBucket), ctx.objectStore(args.destinationBucket)]),
  ]);
  if (!args.allAgencies && !selected.length) throw new UsageError(`--agency-id ${args.agencyId}: no such agency`);
  const [sourceExists, destinationExists] = await Promise.all([source.exists(), args.destinationBucket.kind === "s3" ? destination.exists() : true]);
  if (!sourceExists) throw new UsageError(`--source-bucket ${source.url} does not exist`);
  if (!destinationExists) throw new UsageError(`--destination-bucket ${destination.url} does not exist`);

  const replays = replayIds && (await replayByAgency(agencies, replayIds, args, ctx));
  const total: Counts = {};
  let skipped: SkippedRun | undefined;
  for (const agency of selected) {
    if (ctx.signal.aborted) break;
    const ids = replays?.get(agency.id);
    if (replays && !ids) continue;
    const counts = await copyOne(agency, { args, ctx, source, destination, replayIds: ids });
    if (counts instanceof SkippedRun) {
      skipped = counts;
      continue;
    }
    addCounts(total, counts);
    Object.assign(ctx.counts, total);
    if (args.allAgencies) {
      ctx.metrics.breakdown("byAgency", agency.id, counts);
      for (const [kind, value] of Object.entries(counts)) ctx.metrics.gauge("etl_get_s3_files_items", "Attachments of the agency the last run handled, by what became of them", { agency_id: agency.id, kind }, value);
    }
  }
  // One agency whose run another holds is a skip; over every agency, the others' work stands.
  if (skipped && (!args.allAgencies || Object.keys(total).length === 0)) return skipped;
  return args.allAgencies ? { agencies: selected.length, ...total } : total;
}

async function copyOne(agency: Agency, o: { args: CopyRunArgs; ctx: JobContext; source: ObjectStore; destination: ObjectStore; replayIds?: string[] }): Promise<Counts | SkippedRun> {
  const { args, ctx } = o;
  const prefix = args.destinationPrefix ?? `agency_id=${agency.id}/`;
  const shard = args.shard ? `${args.shard.index}-of-${args.shard.count}` : undefined;
  const lease = ctx.dryRun ? undefined : await ctx.lease(`get_s3_files:${agency.id}:${locationUrl(args.destinationBucket)}/${prefix}:${shard ?? "all"}`);
  if (lease && "heldBy" in lease) return new SkippedRun(`run ${lease.heldBy.runId} on ${lease.heldBy.host} is copying agency ${agency.id} to this destination`);
  try {
    return await copyAgencyAttachments({
      ...ctx,
      ...args,
      agencyId: Number(agency.id),
      counts: args.allAgencies ? {} : ctx.counts,
      log: args.allAgencies ? ctx.log.child({ agencyId: agency.id }) : ctx.log,
      sql: await ctx.db(),
      source: o.source,
      destination: o.destination,
      prefix,
      manifestKey: `${prefix}_manifest${shard ? `.${shard}` : ""}.csv`,
      replayIds: o.replayIds,
      signal: lease ? AbortSignal.any([ctx.signal, lease.signal]) : ctx.signal,
    });
  } finally {
    await lease?.release();
  }
}

/**
 * A replay's attachments by agency. In a one-agency run they are all that agency's; over every
 * agency each goes to its own, and one that no longer exists at all fails again here, its dead
 * letter kept open with that reason for `etl dlq discard`.
 */
async function replayByAgency(agencies: AgencyRepository, ids: string[], args: CopyRunArgs, ctx: JobContext): Promise<Map<string, string[]>> {
  if (!args.allAgencies) return new Map([[String(args.agencyId), ids]]);
  const agencyOf = await agencies.agenciesOfAttachments(ids);
  const byAgency = new Map<string, string[]>();
  const gone: string[] = [];
  for (const id of ids) {
    const agency = agencyOf.get(id);
    if (agency === undefined) gone.push(id);
    else byAgency.set(agency, [...(byAgency.get(agency) ?? []), id]);
  }
  if (gone.length) {
    await new DeadLetterRepository(await ctx.db(), ctx.job, ctx.runId, "replayed").recordDeadLetters(
      gone.map((id) => ({ itemKey: attachmentItemKey(id), error: `attachment ${id} does not exist any more; discard it with etl dlq discard`, payload: { attachmentId: id } })),
    );
    ctx.counts.failed = (ctx.counts.failed ?? 0) + gone.length;
  }
  return byAgency;
}
