import { arg } from "../core/runtime/args";
import { defineJob } from "../core/runtime/job";
import { requireExists } from "../core/storage/object_store";
import { PACKAGE_ARGS, packagePrefix } from "../processors/core/dags/dag_package";
import { mirrorPackage } from "../processors/core/dags/dag_mirror";

export const JOB = defineJob({
  name: "sync_dags",
  description: "Mirror a published Airflow DAG package from the DAG bucket into the local DAG folder",
  lane: "core",
  args: {
    ...PACKAGE_ARGS,
    dagFolder: arg.text("Airflow's DAG folder; the package goes into its <package> subfolder", { env: "AIRFLOW__CORE__DAGS_FOLDER", placeholder: "<dir>" }),
  },
  example: "--dag-bucket etl-dags --env prod --package etl --dag-folder /opt/airflow/dags",
  async run(args, ctx) {
    const store = await ctx.objectStore(args.dagBucket);
    await requireExists(store, "--dag-bucket");
    return mirrorPackage({
      store,
      prefix: packagePrefix(args.env, args.package),
      packageName: args.package,
      dagFolder: args.dagFolder,
      dryRun: ctx.dryRun,
      log: ctx.log,
      signal: ctx.signal,
    });
  },
});

if (import.meta.main) process.exit(await JOB.entrypoint(process.argv.slice(2)));
