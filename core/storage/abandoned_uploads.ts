import { errorMessage } from "../errors";
import type { Logger } from "../log";
import type { MultipartUpload, ObjectStore } from "./object_store";
import { S3RequestError } from "./s3_request";

/**
 * Aborts the incomplete multipart uploads that runs killed while writing to S3 left under
 * `prefix` (an object over 8 MiB streamed there, core/storage/s3_upload.ts): S3 keeps their parts, and
 * bills them, until they are aborted. `isAbandoned` tells a dead run's from a live one's by what
 * the caller knows of the key; the store never aborts an upload of this process's writes.
 * Returns how many it aborted; a directory has none.
 *
 * Housekeeping, so a role without s3:ListBucketMultipartUploads or s3:AbortMultipartUpload (403)
 * or a server without the operations (501) is a warning, and the run goes on: the uploads stay
 * for a lifecycle rule (AbortIncompleteMultipartUpload). Any other failure is the run's.
 */
export async function abortAbandonedUploads(
  store: ObjectStore,
  prefix: string,
  isAbandoned: (upload: MultipartUpload) => Promise<boolean>,
  log: Logger,
): Promise<number> {
  if (!store.abortIncompleteUploads) return 0;
  try {
    return await store.abortIncompleteUploads(prefix, isAbandoned);
  } catch (error) {
    if (!(error instanceof S3RequestError && (error.status === 403 || error.status === 501))) throw error;
    log.warn("could not abort the multipart uploads killed runs left; they stay until a lifecycle rule (AbortIncompleteMultipartUpload) removes them", {
      prefix: `${store.url}/${prefix}`,
      error: errorMessage(error),
    });
    return 0;
  }
}
