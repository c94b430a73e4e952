import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { decryptMessage } from "../../processors/file_processing/decrypt/decrypt_stream";
import { encryptForRecipient } from "../../processors/file_processing/decrypt/encrypt";
import { loadKeyring } from "../../processors/file_processing/decrypt/keys";
import { DecryptRefusal } from "../../processors/file_processing/decrypt/refusals";
import { startFaultProxy, type FaultProxy } from "../harness/fault_proxy";
import { ROOT, createBucket, createTestDatabase, insertLease, listKeys, putObject, runCommand, s3, type CliResult, type TestDatabase } from "../harness/fixtures";
import { GnuPG, badlySignedMessage, flipByte, type GpgKey } from "../harness/gpg";
import { LAKE_KINDS, createLake, type Lake } from "../harness/lakes";
import { track } from "../harness/processes";

let gpg: GnuPG;
/** Our key now (RSA, as most partners' tooling expects) and before a rotation (cv25519). */
let recipient: GpgKey;
let previous: GpgKey;
/** The partner whose signatures are pinned, a key we know but do not pin, and a stranger's. */
let partner: GpgKey;
let unpinned: GpgKey;
let outsider: GpgKey;

beforeAll(async () => {
  gpg = GnuPG.create();
  // One after another: one home's keyring takes one writer at a time.
  recipient = await gpg.generateKey("Data Platform <etl@example.com>", { type: "rsa" });
  previous = await gpg.generateKey("Data Platform 2025 <etl-2025@example.com>");
  partner = await gpg.generateKey("Partner <exports@partner.example>");
  unpinned = await gpg.generateKey("Partner Intern <intern@partner.example>");
  outsider = await gpg.generateKey("Someone Else <else@example.org>");
});
afterAll(() => gpg.close());

let db: TestDatabase;
let root: string;
beforeEach(async () => {
  db = await createTestDatabase();
  root = mkdtempSync(join(tmpdir(), "etl-decrypt-"));
});
afterEach(async () => {
  await db.drop();
  rmSync(root, { recursive: true, force: true });
});

const keyEnv = () => ({ ETL_PGP_PRIVATE_KEY: recipient.secretKey + previous.secretKey, ETL_PGP_SIGNER_KEYS: partner.publicKey + unpinned.publicKey });
const run = (argv: string[], env: Record<string, string | undefined> = keyEnv()) => runCommand(["jobs/decrypt_files.ts"], argv, { DATABASE_URL: db.url, ...env });
/** A directory for the tests that need no lake of each kind. */
const localLake = () => join(root, "lake");

/** What a run quarantined in `lake`: original key -> its reason.json. */
async function quarantined(lake: Lake): Promise<Record<string, Record<string, unknown>>> {
  const reasons = await Promise.all((await lake.keys("quarantine/")).filter((k) => k.endsWith(".reason.json")).map(async (k) => JSON.parse((await lake.read(k)).toString())));
  return Object.fromEntries(reasons.map((reason) => [reason.key, reason]));
}

/** No armored key body, nor a passphrase, in anything a run printed. */
function expectNoSecrets(result: CliResult, ...secrets: string[]): void {
  const printed = result.stdout + result.stderr;
  for (const key of [recipient, previous]) expect(printed).not.toContain(key.secretKey.split("\n").find((line) => line.length > 60)!);
  for (const secret of secrets) expect(printed).not.toContain(secret);
}

const csv = (rows: number, tag = "") => new TextEncoder().encode("order_id,amount,note\n" + Array.from({ length: rows }, (_, i) => `${i},${i * 3}.50,order ${tag}${i}\n`).join(""));

for (const kind of LAKE_KINDS) {
  describe(`decrypt_files on a ${kind === "s3" ? "bucket" : "directory"}`, () => {
    let lake: Lake;
    beforeEach(async () => {
      lake = await createLake(kind);
    });
    afterEach(() => lake.dispose());
    const sameBytes = async (key: string, expected: Uint8Array) => expect((await lake.read(key)).equals(Buffer.from(expected))).toBe(true);

    test("decrypts what gpg encrypts (compressed or not, signed or not, armored, to a rotated key), quarantines each broken message with its rule, publishes nothing of them, and a rerun skips", async () => {
      const orders = csv(3000);
      const binary = randomBytes(300_000);
      const inbox: Record<string, Uint8Array> = {
        "inbox/acme/orders.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint }),
        "inbox/acme/orders-zip.csv.gpg": await gpg.encrypt(orders, { recipient: recipient.fingerprint, compress: "zip", signer: partner.fingerprint }),
        "inbox/acme/payload.bin.pgp": await gpg.encrypt(binary, { recipient: previous.fingerprint, compress: "none" }),
        "inbox/acme/report.csv.asc": await gpg.encrypt(orders, { recipient: recipient.fingerprint, armor: true }),
        "inbox/acme/from-openpgp.bin.pgp": await new Response(Readable.toWeb(await encryptForRecipient(Readable.from([binary]), recipient.publicKey)) as ReadableStream).bytes(),
        "inbox/bad/wrong-key.csv.pgp": await gpg.encrypt(orders, { recipient: outsider.fingerprint }),
        "inbox/bad/no-mdc.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint, withoutMdc: true }),
        "inbox/bad/not-pgp.pgp": new TextEncoder().encode("order_id,amount\n1,2\n"),
        "inbox/bad/empty.pgp": new Uint8Array(),
      };
      const plainCipher = await gpg.encrypt(binary, { recipient: recipient.fingerprint, compress: "none" });
      const zlibCipher = await gpg.encrypt(orders, { recipient: recipient.fingerprint });
      inbox["inbox/bad/tampered.bin.pgp"] = flipByte(plainCipher, plainCipher.length >> 1);
      inbox["inbox/bad/tampered-zlib.csv.pgp"] = flipByte(zlibCipher, zlibCipher.length >> 1);
      inbox["inbox/bad/tampered-mdc.bin.pgp"] = flipByte(plainCipher, -3);
      inbox["inbox/bad/truncated.csv.pgp"] = zlibCipher.subarray(0, zlibCipher.length >> 1);
      inbox["inbox/bad/truncated-header.csv.pgp"] = zlibCipher.subarray(0, 40);
      for (const [key, bytes] of Object.entries(inbox)) await lake.write(key, bytes);
      await lake.write("inbox/acme/readme.txt", "not a message: left alone");
      // The key from a mounted Secret file rather than the environment.
      const keyFile = join(root, "private.asc");
      writeFileSync(keyFile, recipient.secretKey + previous.secretKey, { mode: 0o600 });
      const env = { ...keyEnv(), ETL_PGP_PRIVATE_KEY: undefined, ETL_PGP_PRIVATE_KEY_FILE: keyFile };

      const first = await run(["--bucket", lake.arg, "--stall-seconds", "2"], env);
      expect(first.exitCode).toBe(3);
      expectNoSecrets(first);

      expect(await lake.keys("decrypted/")).toEqual(["decrypted/acme/from-openpgp.bin", "decrypted/acme/orders-zip.csv", "decrypted/acme/orders.csv", "decrypted/acme/payload.bin", "decrypted/acme/report.csv"]);
      for (const name of ["orders.csv", "orders-zip.csv", "report.csv"]) await sameBytes(`decrypted/acme/${name}`, orders);
      for (const name of ["payload.bin", "from-openpgp.bin"]) await sameBytes(`decrypted/acme/${name}`, binary);
      expect(first.summary!.counts).toMatchObject({ bytes: 3 * orders.length + 2 * binary.length });

      const reasons = await quarantined(lake);
      expect(Object.fromEntries(Object.entries(reasons).map(([key, r]) => [key, r.rule]))).toEqual({
        "inbox/bad/wrong-key.csv.pgp": "decryption_failed",
        "inbox/bad/no-mdc.csv.pgp": "no_integrity_protection",
        "inbox/bad/not-pgp.pgp": "malformed_message",
        "inbox/bad/empty.pgp": "malformed_message",
        "inbox/bad/tampered.bin.pgp": "integrity_check_failed",
        "inbox/bad/tampered-zlib.csv.pgp": "integrity_check_failed",
        "inbox/bad/tampered-mdc.bin.pgp": "integrity_check_failed",
        "inbox/bad/truncated.csv.pgp": "truncated",
        "inbox/bad/truncated-header.csv.pgp": "truncated",
      });
      expect(first.summary).toMatchObject({ status: "partial", counts: { inputs: 14, decrypted: 5, quarantined: 9, failed: 0, skipped: 0 } });
      const tampered = reasons["inbox/bad/tampered.bin.pgp"]!;
      expect(tampered).toMatchObject({ job: "decrypt_files", runId: first.summary!.runId, size: inbox["inbox/bad/tampered.bin.pgp"]!.length, sha256: new Bun.CryptoHasher("sha256").update(inbox["inbox/bad/tampered.bin.pgp"]!).digest("hex") });
      expect(String(tampered.detail)).toContain("Modification detected");
      // Refused on its packet type, before any decryption.
      expect(String(reasons["inbox/bad/no-mdc.csv.pgp"]!.detail)).toContain("Symmetrically Encrypted Data packet (tag 9)");
      // Each copy is the original, byte for byte; the inbox keeps only what was decrypted, and the unrelated file.
      await sameBytes(String(tampered.quarantineKey), inbox["inbox/bad/tampered.bin.pgp"]!);
      expect(await lake.keys("inbox/bad/")).toEqual([]);
      expect(await lake.keys("inbox/acme/")).toContain("inbox/acme/readme.txt");
      const letters = await db.sql`select item_key, error from etl_dead_letters where job = 'decrypt_files' order by item_key`;
      expect(letters.map((l) => l.item_key)).toEqual(Object.keys(reasons).sort());
      expect(letters.find((l) => l.item_key === "inbox/bad/no-mdc.csv.pgp")!.error).toStartWith("no_integrity_protection: ");

      const again = await run(["--bucket", lake.arg]);
      expect(again.exitCode).toBe(0);
      expect(again.summary!.counts).toMatchObject({ inputs: 5, skipped: 5, decrypted: 0, quarantined: 0 });

      // A message replaced under its key (a new ETag) is decrypted again; the others still skip.
      const updated = csv(10, "v2-");
      await lake.write("inbox/acme/orders.csv.pgp", await gpg.encrypt(updated, { recipient: recipient.fingerprint }));
      const changed = await run(["--bucket", lake.arg]);
      expect(changed.summary!.counts).toMatchObject({ inputs: 5, skipped: 4, decrypted: 1 });
      await sameBytes("decrypted/acme/orders.csv", updated);
    });

    test("--require-signature publishes only a message whose signature by a pinned key verifies", async () => {
      const orders = csv(500);
      const messages: Record<string, Uint8Array> = {
        "inbox/signed.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint, signer: partner.fingerprint }),
        "inbox/unsigned.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint }),
        "inbox/by-unpinned.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint, signer: unpinned.fingerprint }),
        "inbox/by-outsider.csv.pgp": await gpg.encrypt(orders, { recipient: recipient.fingerprint, signer: outsider.fingerprint }),
        "inbox/bad-signature.csv.pgp": await badlySignedMessage(orders, partner, recipient.publicKey),
      };
      for (const [key, bytes] of Object.entries(messages)) await lake.write(key, bytes);
      // The forged message is what gpg calls a BAD signature, not merely something gpg cannot read.
      expect((await gpg.decrypt(messages["inbox/bad-signature.csv.pgp"]!)).stderr).toContain("BAD signature");

      const args = ["--bucket", lake.arg, "--require-signature", "--signer-fingerprint", partner.fingerprint];
      const dry = await run([...args, "--dry-run"]);
      expect(dry.summary!.counts).toMatchObject({ inputs: 5, pending: 5 });
      expect([...(await lake.keys("decrypted/")), ...(await lake.keys("quarantine/"))]).toEqual([]);

      const result = await run(args);
      expect(result.exitCode).toBe(3);
      expect(result.summary!.counts).toMatchObject({ inputs: 5, decrypted: 1, quarantined: 4 });
      expect(await lake.keys("decrypted/")).toEqual(["decrypted/signed.csv"]);
      await sameBytes("decrypted/signed.csv", orders);
      const rules = Object.fromEntries(Object.entries(await quarantined(lake)).map(([key, r]) => [key, r.rule]));
      expect(rules).toEqual({
        "inbox/unsigned.csv.pgp": "signature_required",
        "inbox/by-unpinned.csv.pgp": "signer_not_pinned",
        "inbox/by-outsider.csv.pgp": "signer_not_pinned",
        "inbox/bad-signature.csv.pgp": "signature_invalid",
      });
      const [processed] = await db.sql`select key, output from etl_processed_files where job = 'decrypt_files'`;
      expect(processed).toMatchObject({ key: "inbox/signed.csv.pgp", output: { key: "decrypted/signed.csv", bytes: orders.length, signer: partner.fingerprint } });
    });

    test("other --prefix and --destination; --delete-source empties the inbox; on S3 the plaintext carries its source ETag and signer", async () => {
      const orders = csv(2000);
      const good = await gpg.encrypt(orders, { recipient: recipient.fingerprint, signer: partner.fingerprint });
      await lake.write("partner/in/day1.csv.pgp", good);
      await lake.write("partner/in/day2.csv.pgp", flipByte(good, good.length >> 1));
      await lake.write("partner/in/day3.csv.pgp", good.subarray(0, good.length - 100));
      const args = ["--bucket", lake.arg, "--prefix", "partner/in/", "--destination", "partner/plain/", "--require-signature", "--signer-fingerprint", partner.fingerprint, "--delete-source", "--stall-seconds", "2"];

      const result = await run(args);
      expect(result.exitCode).toBe(3);
      expect(result.summary!.counts).toMatchObject({ inputs: 3, decrypted: 1, quarantined: 2 });
      await sameBytes("partner/plain/day1.csv", orders);
      if (kind === "s3") {
        const head = await s3().send(new HeadObjectCommand({ Bucket: lake.arg, Key: "partner/plain/day1.csv" }));
        expect(head.Metadata).toMatchObject({ "etl-source-etag": new Bun.CryptoHasher("md5").update(good).digest("hex"), "etl-pgp-signer": partner.fingerprint });
      }
      const keys = await lake.keys();
      expect(keys.filter((k) => !k.startsWith("quarantine/"))).toEqual(["partner/plain/day1.csv"]);
      const rules = await quarantined(lake);
      expect(Object.fromEntries(Object.values(rules).map((r) => [r.key, r.rule]))).toEqual({ "partner/in/day2.csv.pgp": "integrity_check_failed", "partner/in/day3.csv.pgp": "truncated" });

      const again = await run(args);
      expect(again.exitCode).toBe(0);
      expect(again.summary!.counts).toMatchObject({ inputs: 0, decrypted: 0 });
    });

    test("a run killed while publishing leaves nothing beside the plaintext once the next run has published it; a live run's temp file stays", async () => {
      // On a directory the kill lands while the plaintext is copied to its key (about 270 ms for
      // 128 MiB here); on a bucket the proxy holds the upload, so 16 MiB (a multipart upload) do.
      const plaintext = randomBytes((kind === "file" ? 128 : 16) * 1024 * 1024);
      await lake.write("inbox/big.bin.pgp", await gpg.encrypt(plaintext, { recipient: recipient.fingerprint, compress: "none" }));
      // Long enough that decrypting (which holds the event loop for a second at times here) keeps
      // the lease renewed; the rerun waits at most this long for the killed run's lease.
      const env = { ...keyEnv(), ETL_LEASE_TTL_SECONDS: "10" };
      const killed = await killWhilePublishing(lake, ["--bucket", lake.arg], env);
      if (kind === "file") expect(killed.partials).toEqual([expect.stringMatching(new RegExp(`^decrypted/big\\.bin\\.etl-partial-${killed.runId}\\.`))]);
      expect(await lake.keys("decrypted/")).toEqual(killed.partials);

      // Another run, alive (it holds a lease), writing the same key.
      const live = await insertLease(db.sql, "decrypt_files:elsewhere", "pod-2", { expiresInSeconds: 60 });
      const liveFile = `decrypted/big.bin.etl-partial-${live}.def456`;
      if (kind === "file") await lake.write(liveFile, "in flight");
      // A write of another key that starts with this one (a quarantine release's, which holds no
      // lease): publishing big.bin must not take it for big.bin's.
      const otherKeyFile = `decrypted/big.bin.gz.etl-partial-pid1.abc123`;
      if (kind === "file") await lake.write(otherKeyFile, "another key in flight");

      const rerun = await run(["--bucket", lake.arg], env);
      expect(rerun.summary).toMatchObject({ exitCode: 0, counts: { decrypted: 1 } });
      await sameBytes("decrypted/big.bin", plaintext);
      expect(await lake.keys("decrypted/")).toEqual(kind === "file" ? ["decrypted/big.bin", otherKeyFile, liveFile].sort() : ["decrypted/big.bin"]);
    }, 180_000);
  });
}

/**
 * Starts a run and SIGKILLs it while it publishes: on a directory once its temp file beside the
 * key appears, on a bucket while the proxy holds its upload. Returns its run id and, for a
 * directory, the temp files it left.
 */
async function killWhilePublishing(lake: Lake, argv: string[], env: Record<string, string | undefined>): Promise<{ runId: string; partials: string[] }> {
  const runId = crypto.randomUUID();
  let proxy: FaultProxy | undefined;
  let publishing = async () => (await lake.keys("decrypted/")).some((k) => k.includes(`.etl-partial-${runId}.`));
  if (lake.kind === "s3") {
    proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    let seen = false;
    proxy.stall(true, (r) => {
      const upload = r.method === "PUT" && r.path.includes("/decrypted/");
      seen ||= upload;
      return upload;
    });
    publishing = async () => seen;
    env = { ...env, S3_ENDPOINT: proxy.url };
  }
  const child = track(Bun.spawn(["bun", "jobs/decrypt_files.ts", ...argv], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: "json", DATABASE_URL: db.url, ETL_RUN_ID: runId, ...env } as Record<string, string>, stdout: "pipe", stderr: "pipe" }));
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]).then((parts) => parts.join(""));
  try {
    const deadline = Date.now() + 90_000;
    while (!(await publishing())) {
      if (child.exitCode !== null) throw new Error(`the run exited with ${child.exitCode} before it could be killed publishing: ${(await output).slice(-2000)}`);
      if (Date.now() > deadline) throw new Error("the run never published");
      await Bun.sleep(5);
    }
    child.kill("SIGKILL");
    await child.exited;
    return { runId, partials: (await lake.keys("decrypted/")).filter((k) => k.includes(`.etl-partial-${runId}.`)) };
  } finally {
    await proxy?.stop();
  }
}

describe("decrypt_files on S3 that fails", () => {
  test("a message S3 will not serve is a failed item with a dead letter, left in the inbox, never quarantined", async () => {
    const proxy = await startFaultProxy(process.env.S3_ENDPOINT!);
    try {
      const bucket = await createBucket();
      await putObject(bucket, "inbox/a.csv.pgp", await gpg.encrypt(csv(10), { recipient: recipient.fingerprint }));
      proxy.failNext(100, 503, { when: (r) => r.method === "GET" && r.path.includes(".pgp") });
      const result = await run(["--bucket", bucket], { ...keyEnv(), S3_ENDPOINT: proxy.url });
      expect(result.exitCode).toBe(3);
      expect(result.summary!.counts).toMatchObject({ inputs: 1, decrypted: 0, quarantined: 0, failed: 1 });
      expect(await listKeys(bucket)).toEqual(["inbox/a.csv.pgp"]);
      const [letter] = await db.sql`select item_key, error from etl_dead_letters where job = 'decrypt_files'`;
      expect(letter).toMatchObject({ item_key: "inbox/a.csv.pgp", error: expect.stringContaining("503") });
    } finally {
      await proxy.stop();
    }
  });

  test("a source that breaks off or ends short is an I/O error, not a truncated message", async () => {
    const ciphertext = Buffer.from(await gpg.encrypt(csv(20_000), { recipient: recipient.fingerprint, compress: "none" }));
    const keyring = await loadKeyring({ ETL_PGP_PRIVATE_KEY: recipient.secretKey });
    const decrypt = (source: Readable, size: number) => decryptMessage(source, size, async () => {}, { keyring, maxOutputBytes: 1 << 30, stallMs: 5000 });
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const breaksOff = Readable.from((async function* () {
      yield ciphertext.subarray(0, ciphertext.length >> 1);
      throw reset;
    })());
    const failure = await decrypt(breaksOff, ciphertext.length).catch((error: unknown) => error);
    expect(failure).toBe(reset);
    const short = await decrypt(Readable.from([ciphertext.subarray(0, ciphertext.length >> 1)]), ciphertext.length).catch((error: unknown) => error);
    expect(short).not.toBeInstanceOf(DecryptRefusal);
    expect(String(short)).toContain(`the object's body ended after ${ciphertext.length >> 1} of ${ciphertext.length} bytes`);
    // The same bytes as a whole object are the message's fault.
    const truncated = await decrypt(Readable.from([ciphertext.subarray(0, ciphertext.length >> 1)]), ciphertext.length >> 1).catch((error: unknown) => error);
    expect(truncated).toMatchObject({ rule: "truncated" });
  });
});

describe("decrypt_files and AEAD", () => {
  test("a SEIPDv2 (AEAD) message, as openpgp writes to a key that announces it, decrypts; tampered or truncated, it is refused", async () => {
    const openpgp = await import("openpgp");
    const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ email: "aead@example.com" }], type: "curve25519", config: { aeadProtect: true } });
    const plaintext = randomBytes(100_000);
    const message = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: plaintext }), encryptionKeys: await openpgp.readKey({ armoredKey: publicKey }), format: "binary" });
    const seipd = (await openpgp.readMessage({ binaryMessage: message })).packets.find((p) => p instanceof openpgp.SymEncryptedIntegrityProtectedDataPacket);
    expect(seipd).toMatchObject({ version: 2 });
    const keyring = await loadKeyring({ ETL_PGP_PRIVATE_KEY: privateKey });
    const decrypt = async (bytes: Uint8Array) => {
      const chunks: Uint8Array[] = [];
      await decryptMessage(Readable.from([Buffer.from(bytes)]), bytes.length, async (chunk) => void chunks.push(chunk), { keyring, maxOutputBytes: 1 << 30, stallMs: 5000 });
      return Buffer.concat(chunks);
    };
    expect((await decrypt(message)).equals(plaintext)).toBe(true);
    expect(await decrypt(flipByte(message, message.length >> 1)).catch((error: unknown) => error)).toMatchObject({ rule: "integrity_check_failed" });
    expect(await decrypt(message.subarray(0, message.length >> 1)).catch((error: unknown) => error)).toMatchObject({ rule: "truncated" });
  });
});

describe("decrypt_files interoperates with gpg the other way", () => {
  test("what encryptForRecipient makes, signed or not, gpg decrypts and verifies", async () => {
    const plaintext = randomBytes(200_000);
    const encrypt = async (signingKey?: string) => new Response(Readable.toWeb(await encryptForRecipient(Readable.from([plaintext]), recipient.publicKey, { signingKey })) as ReadableStream).bytes();
    const unsigned = await gpg.decrypt(await encrypt());
    expect(unsigned.exitCode).toBe(0);
    expect(Buffer.from(unsigned.stdout).equals(plaintext)).toBe(true);
    const signed = await gpg.decrypt(await encrypt(partner.secretKey));
    expect(signed.exitCode).toBe(0);
    expect(Buffer.from(signed.stdout).equals(plaintext)).toBe(true);
    expect(signed.stderr).toContain(`Good signature from "${partner.uid}"`);
  });
});

describe("decrypt_files configuration", () => {
  test("missing or unusable key material and bad flags exit 2 naming the variable or flag, and never print a key or passphrase", async () => {
    const bucket = ["--bucket", `file:${localLake()}`];
    mkdirSync(localLake(), { recursive: true });
    const cases: Array<[string[], Record<string, string | undefined>, string]> = [
      [bucket, {}, "set ETL_PGP_PRIVATE_KEY (an armored OpenPGP private key) or ETL_PGP_PRIVATE_KEY_FILE"],
      [bucket, { ETL_PGP_PRIVATE_KEY: recipient.publicKey }, "ETL_PGP_PRIVATE_KEY does not hold an armored OpenPGP private key"],
      [bucket, { ETL_PGP_PRIVATE_KEY_FILE: join(root, "absent.asc") }, "ETL_PGP_PRIVATE_KEY_FILE: cannot read"],
      [[...bucket, "--require-signature"], keyEnv(), "--require-signature and --signer-fingerprint go together"],
      [[...bucket, "--require-signature", "--signer-fingerprint", "ABCD"], keyEnv(), "--signer-fingerprint must be fingerprints of 40 (v4) or 64 (v6) hex digits"],
      [[...bucket, "--require-signature", "--signer-fingerprint", outsider.fingerprint], keyEnv(), `--signer-fingerprint ${outsider.fingerprint}: no such primary key in ETL_PGP_SIGNER_KEYS`],
      [[...bucket, "--require-signature", "--signer-fingerprint", partner.fingerprint], { ETL_PGP_PRIVATE_KEY: recipient.secretKey }, "set ETL_PGP_SIGNER_KEYS"],
      [[...bucket, "--destination", "inbox/plain/"], keyEnv(), "--destination inbox/plain/ and --prefix inbox/ overlap"],
    ];
    for (const [argv, env, error] of cases) {
      const result = await run(argv, env);
      expect({ argv, exitCode: result.exitCode, error: String(result.summary?.error) }).toMatchObject({ argv, exitCode: 2, error: expect.stringContaining(error) });
      expectNoSecrets(result);
    }
  });

  test("a passphrase-protected key needs ETL_PGP_PASSPHRASE (or _FILE), and the right one", async () => {
    const passphrase = "correct horse battery staple";
    const locked = await gpg.generateKey("Locked <locked@example.com>", { passphrase });
    mkdirSync(localLake(), { recursive: true });
    const bucket = ["--bucket", `file:${localLake()}`];
    const withoutPassphrase = await run(bucket, { ETL_PGP_PRIVATE_KEY: locked.secretKey });
    expect(withoutPassphrase.exitCode).toBe(2);
    expect(withoutPassphrase.summary!.error).toContain(`ETL_PGP_PRIVATE_KEY holds the passphrase-protected key ${locked.fingerprint}: set ETL_PGP_PASSPHRASE or ETL_PGP_PASSPHRASE_FILE`);
    const wrong = await run(bucket, { ETL_PGP_PRIVATE_KEY: locked.secretKey, ETL_PGP_PASSPHRASE: "wrong horse battery staple" });
    expect(wrong.exitCode).toBe(2);
    expect(wrong.summary!.error).toContain(`ETL_PGP_PASSPHRASE does not unlock the key ${locked.fingerprint}`);
    expectNoSecrets(wrong, "wrong horse battery staple");

    const passphraseFile = join(root, "passphrase");
    writeFileSync(passphraseFile, passphrase + "\n", { mode: 0o600 });
    mkdirSync(join(localLake(), "inbox"));
    writeFileSync(join(localLake(), "inbox/locked.csv.pgp"), await gpg.encrypt(csv(5), { recipient: locked.fingerprint }));
    const unlocked = await run(bucket, { ETL_PGP_PRIVATE_KEY: locked.secretKey, ETL_PGP_PASSPHRASE_FILE: passphraseFile });
    expect(unlocked.exitCode).toBe(0);
    expect(unlocked.summary!.counts).toMatchObject({ decrypted: 1 });
    expect(readFileSync(join(localLake(), "decrypted/locked.csv")).equals(Buffer.from(csv(5)))).toBe(true);
    expectNoSecrets(unlocked, passphrase);
  });
});
