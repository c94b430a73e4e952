/**
 * Keeps secrets out of logs, error messages and the audit trail. Two layers: values of fields whose
 * name says "secret", and any occurrence of a known secret value or of a password inside a URL.
 */
const SECRET_FIELD = /pass(word)?|secret|token|credential|authorization|api[-_]?key/i;
const SECRET_ENV = /PASS(WORD|PHRASE)?|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_KEY/i;
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/\s]*)@/gi;
export const REDACTED = "[redacted]";

/** Secret values present in the environment, so they can be scrubbed wherever they appear. */
export function secretsFromEnv(env: Record<string, string | undefined>): string[] {
  // Any variable named like a secret (SERVICE_API_TOKEN, PGP_PASSPHRASE...); under 8 characters
  // such a value is more likely a flag ("true") than a credential, and blanking it would garble logs.
  // A `*_FILE` variable (ETL_PGP_PRIVATE_KEY_FILE) holds the path of a mounted Secret, not the
  // secret: an error naming the file it could not read must show the path.
  const named = Object.entries(env)
    .filter(([name, value]) => SECRET_ENV.test(name) && !name.endsWith("_FILE") && (value?.length ?? 0) >= 8)
    .map(([, value]) => value);
  const secrets = [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, ...named];
  if (env.DATABASE_URL) {
    try {
      const password = new URL(env.DATABASE_URL).password;
      if (password) secrets.push(password, decodeURIComponent(password));
    } catch {
      // An unparsable DATABASE_URL is reported by config validation, without its value.
    }
  }
  // Very short values would blank out ordinary words; they are not credentials anyone uses.
  return [...new Set(secrets.filter((s): s is string => typeof s === "string" && s.length >= 4))];
}

export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_PASSWORD, `$1${REDACTED}@`);
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out;
}

export function redactValue(value: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (typeof value === "string") return redactText(value, secrets);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_FIELD.test(key) && v !== undefined && v !== null ? REDACTED : redactValue(v, secrets, depth + 1);
  }
  return out;
}
