# syntax=docker/dockerfile:1
# Build: docker build --target etl -t etl .                 (every job)
#        docker build --target etl-data-pipeline -t etl-data-pipeline .   (one lane; etl manifests points CronJobs at these)
#        docker build --target etl-file-processing -t etl-file-processing .
#        docker build --target etl-observability -t etl-observability .
# The binary needs glibc (ldd: libc, libpthread, libdl, libm); DuckDB, which the binary carries
# and loads for the jobs that use it (bronze_to_silver), also needs libstdc++ and libgcc_s. So the
# runtime image is distroless cc (base plus those two): no shell, no package manager, uid 65532.
# DuckDB's library is written to $TMPDIR (/tmp) when a job opens it: /tmp must be writable (the
# CronJobs mount an emptyDir there). tests/scripts/build/build.test.ts runs the same binaries in a root
# filesystem holding only them, the libraries ldd lists and /proc, as uid 65532 and PID 1.

FROM oven/bun:1.4.4 AS build
WORKDIR /src
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY . .
RUN bun run build

FROM gcr.io/distroless/cc-debian12:nonroot AS etl
COPY --from=build /src/dist/etl /etl
USER 65532:65532
# Two malloc arenas instead of one per thread: DuckDB's threads fragment the heap, and on a 10M-row
# partition the peak RSS fell from 675 to 602 MiB (scripts/bench/silver.ts).
ENV LOG_FORMAT=json MALLOC_ARENA_MAX=2
ENTRYPOINT ["/etl"]

# A lane image runs its default job when the arguments start with a flag:
#   docker run etl-data-pipeline --agency-id 10 --source-bucket A --destination-bucket B
FROM gcr.io/distroless/cc-debian12:nonroot AS etl-data-pipeline
COPY --from=build /src/dist/etl-data_pipeline /etl
USER 65532:65532
ENV LOG_FORMAT=json MALLOC_ARENA_MAX=2 ETL_DEFAULT_JOB=get_s3_files
ENTRYPOINT ["/etl"]

FROM gcr.io/distroless/cc-debian12:nonroot AS etl-file-processing
COPY --from=build /src/dist/etl-file_processing /etl
USER 65532:65532
ENV LOG_FORMAT=json MALLOC_ARENA_MAX=2 ETL_DEFAULT_JOB=unzip_files
ENTRYPOINT ["/etl"]

# The monitors carry no DuckDB and no default job: each CronJob names its job.
FROM gcr.io/distroless/cc-debian12:nonroot AS etl-observability
COPY --from=build /src/dist/etl-observability /etl
USER 65532:65532
ENV LOG_FORMAT=json MALLOC_ARENA_MAX=2
ENTRYPOINT ["/etl"]
