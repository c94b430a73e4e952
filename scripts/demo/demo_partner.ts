/**
 * The demo's partner delivery: a zip of payment CSVs, encrypted to the platform's demo key the way
 * a partner would, dropped once per day into the lake's inbox (`inbox/partner_payments/<day>.zip.pgp`).
 * The key pair is made on the first run and kept in .etl/demo/partner-key.asc (the demo's secret;
 * a deployment mounts its key from a Kubernetes Secret instead).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { encryptForRecipient } from "../../processors/file_processing/decrypt/encrypt";

/** The demo's private key, armored and without passphrase: made once, then reused. */
export async function demoPrivateKey(file: string): Promise<string> {
  if (existsSync(file)) return readFile(file, "utf8");
  const { generateKey } = await import("openpgp");
  const { privateKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "etl demo", email: "demo@etl.invalid" }], format: "armored" });
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, privateKey, { mode: 0o600 });
  return privateKey;
}

function paymentsCsv(day: string, partner: string, first: number, count: number): string {
  const lines = ["payment_id,partner,agency_id,amount,currency,paid_on,payer_email,reported_at"];
  for (let i = first; i < first + count; i++) {
    const amount = i % 17 === 0 ? "-12.50" : (25 + (i % 9) * 10.25).toFixed(2);
    const currency = i === first + 3 ? "XYZ" : ["EUR", "USD", "GBP"][i % 3];
    lines.push(`P-${i},${partner},10,${amount},${currency},${day},payer${i}@example.com,${day}T0${i % 9}:15:00Z`);
  }
  return lines.join("\n") + "\n";
}

/** Writes `<lakeDir>/inbox/partner_payments/<day>.zip.pgp` unless it is there; returns its key. */
export async function dropPartnerDelivery(lakeDir: string, day: string, privateKey: string): Promise<string> {
  const key = `inbox/partner_payments/${day}.zip.pgp`;
  const file = join(lakeDir, key);
  if (existsSync(file)) return key;
  const [{ ZipFile }, { readPrivateKey }] = await Promise.all([import("yazl"), import("openpgp")]);
  const zip = new ZipFile();
  zip.addBuffer(Buffer.from(paymentsCsv(day, "acme", 1, 40)), `acme-${day}.csv`);
  zip.addBuffer(Buffer.from(paymentsCsv(day, "globex", 100, 25)), `globex-${day}.csv`);
  zip.end();
  const publicKey = (await readPrivateKey({ armoredKey: privateKey })).toPublic().armor();
  const encrypted = await encryptForRecipient(zip.outputStream as unknown as Readable, publicKey);
  const chunks: Buffer[] = [];
  for await (const chunk of encrypted) chunks.push(Buffer.from(chunk as Uint8Array));
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, Buffer.concat(chunks));
  return key;
}
