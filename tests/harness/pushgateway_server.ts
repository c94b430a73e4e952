import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, track, waitUntil } from "./processes";

const BINARY = "/usr/bin/prometheus-pushgateway";

export interface PushgatewayServer {
  /** `http://127.0.0.1:<port>`, without credentials even when basic auth is on. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's Prometheus Pushgateway on a free loopback port, keeping metrics in memory only
 * (Debian's default persistence file is /var/lib/prometheus/pushgateway.data). Its state is one
 * namespace for everything pushed to it, so tests keep apart by pushing under job names of their own.
 *
 * With `basicAuth`, every request needs those credentials (the gateway's --web.config.file, with a
 * bcrypt hash made by Bun.password), so a test can push through a URL that carries a password.
 */
export async function startPushgateway(options: { basicAuth?: { username: string; password: string } } = {}): Promise<PushgatewayServer> {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: the Pushgateway tests need Debian's prometheus-pushgateway package, which .ci/run installs (apt-get install -y prometheus-pushgateway)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "etl-test-pushgateway-"));
  const flags = ["--persistence.file=", "--log.level=warn"];
  if (options.basicAuth) {
    // The lowest bcrypt cost: each authenticated request pays for a hash check.
    const hash = await Bun.password.hash(options.basicAuth.password, { algorithm: "bcrypt", cost: 4 });
    const config = join(dir, "web.yml");
    writeFileSync(config, `basic_auth_users:\n  ${JSON.stringify(options.basicAuth.username)}: ${JSON.stringify(hash)}\n`);
    flags.push(`--web.config.file=${config}`);
  }
  const port = await freePort();
  const server = track(Bun.spawn([BINARY, `--web.listen-address=127.0.0.1:${port}`, ...flags], { stdout: "ignore", stderr: "ignore" }));
  const url = `http://127.0.0.1:${port}`;
  const authorization = options.basicAuth ? `Basic ${btoa(`${options.basicAuth.username}:${options.basicAuth.password}`)}` : undefined;
  await waitUntil("pushgateway", server, async () => (await fetch(`${url}/-/ready`, { headers: authorization ? { authorization } : {} })).ok);
  return {
    url,
    async stop() {
      server.kill("SIGTERM");
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Just enough of the text exposition format to read the gateway's /metrics back. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name!] = value!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    const raw = match[3]!;
    samples.push({ name: match[1]!, labels, value: raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw) });
  }
  return samples;
}

/** The samples of one family whose labels include `labels`. */
export function find(samples: Sample[], name: string, labels: Record<string, string>): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

export function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = find(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

export async function scrape(gateway: PushgatewayServer): Promise<Sample[]> {
  return parseExposition(await (await fetch(`${gateway.url}/metrics`)).text());
}
