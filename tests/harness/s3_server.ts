import { freePort, track, waitUntil } from "./processes";

/**
 * Starts moto's S3-compatible server (python3 -m moto.server) on a free loopback port. It keeps
 * everything in memory and implements every S3 call the platform makes, server-side and
 * multipart copies included.
 */
/** `env`: more environment for the server (the schedule simulation's libfaketime clock). */
export async function startS3(options: { env?: Record<string, string> } = {}): Promise<{ endpoint: string; stop(): void }> {
  const port = await freePort();
  const server = track(
    Bun.spawn(["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      stdout: "ignore",
      stderr: "ignore",
      env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env },
    }),
  );
  const endpoint = `http://127.0.0.1:${port}`;
  // Any HTTP answer means it is serving.
  await waitUntil("moto S3 server", server, async () => Boolean(await fetch(endpoint)));
  return { endpoint, stop: () => server.kill("SIGKILL") };
}
