/**
 * Preloaded by bun test (bunfig.toml): starts a real PostgreSQL and a real S3-compatible server
 * for the whole run, unless DATABASE_URL / S3_ENDPOINT point at servers already.
 */
import { afterAll } from "bun:test";
import { killTracked } from "./processes";
import { startPostgres } from "./postgres_server";
import { startS3 } from "./s3_server";

const stops: Array<() => void> = [];

if (!process.env.DATABASE_URL) {
  const pg = await startPostgres();
  process.env.DATABASE_URL = pg.url;
  stops.push(pg.stop);
}
if (!process.env.S3_ENDPOINT) {
  const s3 = await startS3();
  process.env.S3_ENDPOINT = s3.endpoint;
  stops.push(s3.stop);
  // moto accepts any credentials; these only have to be present for the SDK's chain.
  process.env.AWS_ACCESS_KEY_ID ??= "harness-access-key";
  process.env.AWS_SECRET_ACCESS_KEY ??= "harness-secret-key-9c1e";
}
process.env.AWS_REGION ??= "us-east-1";
process.env.LOG_FORMAT = "json";

afterAll(() => {
  for (const stop of stops) stop();
  killTracked();
});
