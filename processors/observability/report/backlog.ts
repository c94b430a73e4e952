/**
 * What waits for an operator, for `etl report`: the open dead letters (etl_dead_letters) and the
 * files file_processing quarantined (`quarantine/` of the buckets its jobs work in), counted and
 * listed with the command that acts on each.
 */
import type { DeadLetterAdmin, DeadLetterRow } from "../../../core/ledger/dead_letters";
import type { ScheduledJob } from "../../../core/runtime/contract";
import type { ObjectStore } from "../../../core/storage/object_store";
import type { DeadLetterBacklog, DeadLetterBacklogRepository } from "../../../repositories/dead_letter_backlog";
import { listQuarantined, type QuarantineRecord } from "../../file_processing/quarantine/quarantine";

// The page lists this many open dead letters (newest failure first per job); the counts are all of them.
export const DEAD_LETTERS_LISTED = 200;

export interface BacklogSection {
  deadLetters: { byJob: DeadLetterBacklog[]; listed: DeadLetterRow[]; open: number };
  /** Per bucket read: its quarantined files, oldest first, or why it could not be read. */
  quarantine: Array<{ bucket: string; url: string; files: QuarantineRecord[]; error?: string }>;
}

/**
 * The buckets whose quarantine the report reads: those a schedule works on in place (its `bucket`
 * argument), which is where decrypt_files and unzip_files quarantine what they refuse.
 */
export function quarantineBuckets(schedules: readonly ScheduledJob[]): string[] {
  return [...new Set(schedules.flatMap((s) => (typeof s.args.bucket === "string" ? [s.args.bucket] : [])))].sort();
}

export async function backlogSection(o: {
  backlog: DeadLetterBacklogRepository;
  deadLetters: DeadLetterAdmin;
  quarantines: ReadonlyArray<{ bucket: string; open: () => Promise<ObjectStore> }>;
}): Promise<BacklogSection> {
  const [byJob, listed] = await Promise.all([o.backlog.openByJob(), o.deadLetters.list({ includeResolved: false, limit: DEAD_LETTERS_LISTED })]);
  const quarantine = await Promise.all(
    o.quarantines.map(async ({ bucket, open }) => {
      let url = bucket;
      try {
        const store = await open();
        url = store.url;
        // Released files are back in their inbox: only what still waits is listed.
        return { bucket, url, files: (await listQuarantined(store)) as QuarantineRecord[] };
      } catch (error) {
        return { bucket, url, files: [], error: (error as Error).message };
      }
    }),
  );
  return { deadLetters: { byJob, listed, open: byJob.reduce((sum, row) => sum + row.open, 0) }, quarantine };
}
