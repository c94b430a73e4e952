import { addCounts } from "../../../core/runtime/counts";
import { kebabCase } from "../../../core/runtime/args";
import type { Counts, JobContext } from "../../../core/runtime/job";
import { durationMs } from "../../../core/duration";
import { UsageError } from "../../../core/errors";
import { locationLabel, requireExists, type Location } from "../../../core/storage/object_store";
import { AgencyRepository } from "../../../repositories/agencies";
import { AttachmentListingRepository } from "../../../repositories/attachment_listing";
import { AttachmentRepository } from "../../../repositories/attachments";
import { checkCompleteness } from "./check";

/** freshness_monitor's flags that a completeness check reads. */
export interface CompletenessArgs {
  agencyId: number | undefined;
  allAgencies: boolean;
  destinationBucket: Location | undefined;
  destinationPrefix: string | undefined;
  minRatio: number;
  grace: string | undefined;
  batchSize: number;
  reportTo: Location | undefined;
  source: string | undefined;
  bucketMap: string | undefined;
  sourcesJson: Location | undefined;
}

/** get_s3_files's completeness for one agency, or every active one (its counts summed, each agency's in metrics.byAgency). */
export async function checkAgencies(args: CompletenessArgs, ctx: JobContext): Promise<Counts> {
  const { agencyId, destinationBucket } = args;
  if (args.allAgencies === (agencyId !== undefined) || !destinationBucket) {
    throw new UsageError("a completeness check needs --destination-bucket and one of --agency-id N or --all-agencies");
  }
  const sourcesFlag = (["source", "bucketMap", "sourcesJson"] as const).find((key) => args[key] !== undefined);
  if (sourcesFlag) throw new UsageError(`--${kebabCase(sourcesFlag)} belongs to a freshness check of the sources; a completeness check (--agency-id) runs on its own`);
  if (args.allAgencies && args.destinationPrefix !== undefined) throw new UsageError("--destination-prefix applies to one agency; with --all-agencies each is under agency_id=<id>/");
  const sql = await ctx.db();
  const agencyRows = new AgencyRepository(sql);
  const [agencies, destination, report] = await Promise.all([
    args.allAgencies ? agencyRows.listActiveAgencies() : agencyRows.findAgency(agencyId!).then((a) => (a ? [a] : [])),
    ctx.objectStore(destinationBucket),
    args.reportTo && ctx.objectStore(args.reportTo),
  ]);
  if (!agencies.length && !args.allAgencies) throw new UsageError(`--agency-id ${agencyId}: no such agency`);
  await requireExists(destination, "--destination-bucket");
  if (report) await requireExists(report, "--report-to");
  const attachments = new AttachmentListingRepository(sql);
  if (!(await attachments.hasKeyOrderIndex())) {
    ctx.log.warn("attachment has no index in key order: each page sorts the agency's rows again", { fix: AttachmentListingRepository.KEY_ORDER_INDEX });
  }
  const dueBefore = args.grace ? new Date(Date.now() - durationMs(args.grace)!) : undefined;
  const total: Counts = {};
  for (const agency of agencies) {
    if (ctx.signal.aborted) break;
    const id = Number(agency.id);
    ctx.progress.setTotal((await new AttachmentRepository(sql).summarizeAttachments(id)).count);
    const counts = await checkCompleteness({
      ...ctx,
      ...args,
      agencyId: id,
      attachments,
      destination,
      bucketLabel: locationLabel(destinationBucket),
      prefix: args.destinationPrefix ?? `agency_id=${id}/`,
      dueBefore,
      // A dry run writes nothing: the counts and the log event only.
      report: report && !ctx.dryRun ? { store: report, key: `completeness/agency_id=${id}/${ctx.runId}.csv` } : undefined,
    });
    if (args.allAgencies) ctx.metrics.breakdown("byAgency", agency.id, counts);
    Object.assign(ctx.counts, addCounts(total, counts));
  }
  return args.allAgencies ? { agencies: agencies.length, ...total } : total;
}
