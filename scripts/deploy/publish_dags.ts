/**
 * Publishes the DAG package folder written by `etl dags` to s3://$DAG_BUCKET/$ENV/$PACKAGE_NAME/
 * (`bun run publish:dags`, or `etl publish-dags` from the binary). Run through the job runner:
 * the same flags-or-environment parsing, JSON logs, run summary and exit codes as any job.
 */
import { join, resolve } from "node:path";
import { arg } from "../../core/runtime/args";
import { UsageError } from "../../core/errors";
import { defineJob } from "../../core/runtime/job";
import { PACKAGE_ARGS, packagePrefix } from "../../processors/core/dags/dag_package";
import { publishPackage, readPackageFolder } from "../../processors/core/dags/dag_publisher";

export const PUBLISH_DAGS = defineJob({
  name: "publish_dags",
  description: "Publish the Airflow DAG package written by `etl dags` to <env>/<package>/ in the DAG bucket",
  lane: "core",
  args: {
    ...PACKAGE_ARGS,
    dir: arg.optionalText("folder written by `etl dags` (default: dags/<package>)", { placeholder: "<dir>" }),
  },
  async run(args, ctx) {
    const files = await readPackageFolder(resolve(args.dir ?? join("dags", args.package)), args.package);
    const store = await ctx.objectStore(args.dagBucket);
    if (!(await store.exists())) throw new UsageError(`--dag-bucket ${store.url} does not exist`);
    return publishPackage({ store, prefix: packagePrefix(args.env, args.package), files, dryRun: ctx.dryRun, log: ctx.log });
  },
});

if (import.meta.main) process.exit(await PUBLISH_DAGS.entrypoint(process.argv.slice(2)));
