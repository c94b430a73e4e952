/**
 * The world the schedule simulation's jobs run against, changing between slots as production
 * does: service requests every hour in the application's API (some updated later, days after),
 * attachments uploaded every day for three agencies (one inactive), and one encrypted partner
 * delivery a day at its own hour. It keeps the truth the test checks the lake against.
 */
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type postgres from "postgres";
import { Readable } from "node:stream";
import type { ApiRecord, ApiServer } from "./api_server";

const HOUR = 3_600_000;
export const BUCKETS = { lake: "etl-lake", attachments: "etl-attachments", archive: "etl-attachments-archive" };
export const ACTIVE_AGENCIES = [10, 11];
const INACTIVE_AGENCY = 12;

export interface Delivery {
  at: number;
  name: string;
  /** payment_id to its CSV row. */
  rows: Array<Record<string, string>>;
}

export class ScheduleWorld {
  readonly s3: S3Client;
  private nextRequest = 1;
  private nextAttachment = 1;
  private hour: number;
  readonly deliveries: Delivery[];
  private readonly delivered = new Set<Delivery>();
  /** Every attachment the world uploaded: id, agency, key, when. */
  readonly attachments: Array<{ id: number; agency: number; key: string; at: number }> = [];

  constructor(
    private readonly o: { sql: postgres.Sql; api: ApiServer; endpoint: string; start: number; publicKey: string; deliveries: Array<{ at: number; rows: number }> },
  ) {
    this.s3 = new S3Client({ endpoint: o.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "sim", secretAccessKey: "sim-secret" } });
    this.hour = o.start;
    let payment = 1;
    const row = (id: number, at: number, amount: string) => ({ payment_id: `P${id}`, partner: "ACME", agency_id: String(ACTIVE_AGENCIES[id % 2]), amount, currency: "EUR", paid_on: new Date(at).toISOString().slice(0, 10), payer_email: "", reported_at: new Date(at - 60_000).toISOString() });
    this.deliveries = o.deliveries.map(({ at, rows }, d) => {
      const first = payment;
      const fresh = Array.from({ length: rows }, () => row(payment, at, `${10 + payment++}.50`));
      // Each delivery after the first also corrects the first payment of the one before it: a later report wins.
      const correction = d > 0 ? [row(first - o.deliveries[d - 1]!.rows, at, "99.00")] : [];
      return { at, name: `acme-${new Date(at).toISOString().slice(0, 10)}-${d}`, rows: [...fresh, ...correction] };
    });
  }

  /** The buckets, the agencies, and what the application held before the simulation: a week of attachments. */
  async setUp(): Promise<void> {
    for (const bucket of Object.values(BUCKETS)) await this.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await this.o.sql`insert into agency (id, name, is_active) values (10, 'Harbour Agency', true), (11, 'Hill Agency', true), (12, 'Closed Agency', false)`;
    await this.upload(this.o.start - 3 * 24 * HOUR, { 10: 6, 11: 2, 12: 2 });
  }

  /** Moves the world up to `at`: every hour's requests and updates, the day's uploads at 10:00, the deliveries due. */
  async advanceTo(at: number): Promise<void> {
    for (; this.hour + HOUR <= at; this.hour += HOUR) {
      const end = this.hour + HOUR;
      this.requestsOfHour(this.hour, end);
      if (new Date(end).getUTCHours() === 10) await this.upload(end, { 10: 4, 11: 1, 12: 1 });
    }
    for (const delivery of this.deliveries.filter((d) => d.at <= at && !this.delivered.has(d))) {
      await this.deliver(delivery);
      this.delivered.add(delivery);
    }
  }

  /** Three new requests an hour, and two changes to older ones (one of them days old). */
  private requestsOfHour(start: number, end: number): void {
    const records = this.o.api.records;
    for (let i = 0; i < 3; i++) {
      const at = new Date(start + (i + 1) * 15 * 60_000 - 1000).toISOString();
      const id = this.nextRequest++;
      records.push({ id, agency_id: ACTIVE_AGENCIES[id % 2]!, title: `request ${id}`, status: "open", reporter_email: null, priority: (id % 5) + 1, created_at: at, updated_at: at });
    }
    for (const [offset, status] of [[5, "in_progress"], [40, "closed"]] as const) {
      const record = records.find((r) => r.id === this.nextRequest - offset);
      if (record) Object.assign(record, { status, updated_at: new Date(end - 2 * 60_000).toISOString() });
    }
    records.sort((a, b) => (a.updated_at < b.updated_at ? -1 : a.updated_at > b.updated_at ? 1 : a.id - b.id));
  }

  private async upload(at: number, perAgency: Record<number, number>): Promise<void> {
    for (const [agency, count] of Object.entries(perAgency)) {
      for (let i = 0; i < count; i++) {
        const id = this.nextAttachment++;
        const key = `uploads/${agency}/${new Date(at).toISOString().slice(0, 10)}/doc-${id}.pdf`;
        const body = `attachment ${id}`;
        await this.s3.send(new PutObjectCommand({ Bucket: BUCKETS.attachments, Key: key, Body: body }));
        await this.o.sql`insert into attachment (id, agency_id, s3_key, file_name, size_bytes, created_at) values (${id}, ${Number(agency)}, ${key}, ${`doc-${id}.pdf`}, ${body.length}, ${new Date(at)})`;
        this.attachments.push({ id, agency: Number(agency), key, at });
      }
    }
  }

  /** A zip of one CSV, encrypted to the platform's key, into the lake's inbox. */
  private async deliver(delivery: Delivery): Promise<void> {
    const header = Object.keys(delivery.rows[0]!);
    const csv = [header.join(","), ...delivery.rows.map((r) => header.map((h) => r[h]).join(","))].join("\n") + "\n";
    const zip = new (await import("yazl")).ZipFile();
    zip.addBuffer(Buffer.from(csv), `${delivery.name}.csv`);
    zip.end();
    const { encryptForRecipient } = await import("../../processors/file_processing/decrypt/encrypt");
    const encrypted = await new Response(Readable.toWeb(await encryptForRecipient(zip.outputStream as never, this.o.publicKey)) as ReadableStream).bytes();
    await this.s3.send(new PutObjectCommand({ Bucket: BUCKETS.lake, Key: `inbox/partner_payments/${delivery.name}.zip.pgp`, Body: encrypted }));
  }

  /** The latest version of every request, as the application holds it now. */
  latestRequests(): Map<number, ApiRecord> {
    return new Map(this.o.api.records.map((r) => [r.id, r]));
  }

  async keys(bucket: string, prefix = ""): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return keys.sort();
  }

  async read(bucket: string, key: string): Promise<Uint8Array> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return object.Body!.transformToByteArray();
  }

  get inactiveAgency(): number {
    return INACTIVE_AGENCY;
  }
}
