/**
 * Keeps secrets out of logs, error messages and the audit trail, without mangling the text around
 * them. Two layers:
 * - where a value stands as a secret, it is replaced whatever it is: the password of a URL, the
 *   value after `NAME=` or of a JSON field `"NAME":` whose name says secret, an Authorization
 *   header's credentials, a field named like a secret in logged objects;
 * - the known secret values (secretsFromEnv) anywhere else, as whole words only: a secret "test"
 *   must not turn "latest" into "la[redacted]". A value that is a placeholder or a public default
 *   ("test", the usual AWS_SECRET_ACCESS_KEY for moto and LocalStack; "password"; "[redacted]") or
 *   shorter than 8 characters is left alone in free text: it is an ordinary word more often than
 *   a credential, and it stays redacted where it stands as a value.
 */
// "passed", "passes", "passing" are not names of secrets.
const SECRET_NAME = /pass(word|phrase|wd)?(?!ed|es|ing)|secret|token|credential|authorization|api[-_]?key|private[-_]?key/i;
const SECRET_ENV = /PASS(WORD|PHRASE)?|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_KEY/i;
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/\s]*)@/gi;
const AUTHORIZATION = /\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|digest|token)\s+)?)([^\s"',;]+)/gi;
const NAME_EQUALS = /\b([A-Za-z][\w.-]*)([ \t]*=[ \t]*)("[^"]*"|'[^']*'|[^\s"'&;,]+)/g;
const JSON_FIELD = /"([^"\\]*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
export const REDACTED = "[redacted]";

/** Free text below this length is not searched for a secret value (see above). */
const MIN_FREE_TEXT_SECRET = 8;
/** A secret this long is redacted even inside a longer word: no word of a log line is 20 characters of a credential by chance. */
const ALWAYS_SECRET = 20;
const PLACEHOLDER_WORDS = new Set(["test", "testing", "password", "passwd", "pass", "secret", "user", "username", "admin", "root", "postgres", "changeme", "example", "dummy", "fake", "localstack", "minioadmin", "redacted", "none", "null", "true", "false"]);
// <password>, [redacted], {{ secret }}, ${TOKEN} or $TOKEN, xxx, ***, ...
const PLACEHOLDER_SHAPE = /^(<[^<>]*>|\[[^[\]]*\]|\{\{[^{}]*\}\}|\$\{?\w+\}?|x+|\*+|\.+|…)$/i;

/** Whether `value` is a placeholder or a public default rather than a credential. */
export function isPlaceholder(value: string): boolean {
  const v = value.trim();
  return !v || PLACEHOLDER_WORDS.has(v.toLowerCase()) || PLACEHOLDER_SHAPE.test(v);
}

/** Secret values present in the environment, so they can be scrubbed wherever they appear. */
export function secretsFromEnv(env: Record<string, string | undefined>): string[] {
  // Any variable named like a secret (SERVICE_API_TOKEN, PGP_PASSPHRASE...); under 8 characters
  // such a value is more likely a flag ("true") than a credential.
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
  return [...new Set(secrets.filter((s): s is string => typeof s === "string" && s.length >= 4))];
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const isWord = (c: string | undefined) => c !== undefined && /\w/.test(c);

/** One pattern for the secrets that free text is searched for, longest first; cached per list (one per run). */
const freeTextPatterns = new WeakMap<readonly string[], RegExp | null>();
function freeTextPattern(secrets: readonly string[]): RegExp | null {
  if (freeTextPatterns.has(secrets)) return freeTextPatterns.get(secrets)!;
  const alternatives = secrets
    .filter((s) => s.length >= MIN_FREE_TEXT_SECRET && !isPlaceholder(s))
    .sort((a, b) => b.length - a.length)
    .map((s) => {
      if (s.length >= ALWAYS_SECRET) return escape(s);
      // Bounded only where the secret's own edge is a word character: "p@ss-word!" ends a word itself.
      return `${isWord(s[0]) ? "(?<!\\w)" : ""}${escape(s)}${isWord(s.at(-1)) ? "(?!\\w)" : ""}`;
    });
  const pattern = alternatives.length ? new RegExp(alternatives.join("|"), "g") : null;
  freeTextPatterns.set(secrets, pattern);
  return pattern;
}

export function redactText(text: string, secrets: readonly string[] = []): string {
  const known = (value: string) => secrets.includes(value) || secrets.includes(safeDecode(value));
  let out = text.replace(URL_PASSWORD, (match, head: string, password: string) =>
    // "postgres://user:password@host/db" in a hint is a placeholder, unless it is this deployment's password.
    isPlaceholder(password) && !known(password) ? match : `${head}${REDACTED}@`,
  );
  out = out.replace(AUTHORIZATION, `$1${REDACTED}`);
  out = out.replace(NAME_EQUALS, (match, name: string, equals: string, value: string) => (SECRET_NAME.test(name) && !/authorization$/i.test(name) && value !== REDACTED ? `${name}${equals}${REDACTED}` : match));
  out = out.replace(JSON_FIELD, (match, name: string, colon: string) => (SECRET_NAME.test(name) ? `"${name}"${colon}"${REDACTED}"` : match));
  const pattern = freeTextPattern(secrets);
  return pattern ? out.replace(pattern, REDACTED) : out;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function redactValue(value: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (typeof value === "string") return redactText(value, secrets);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_NAME.test(key) && v !== undefined && v !== null ? REDACTED : redactValue(v, secrets, depth + 1);
  }
  return out;
}
