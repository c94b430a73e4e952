/**
 * The signals a run reacts to, and why:
 * - SIGTERM: Kubernetes stops the pod (eviction, node drain, activeDeadlineSeconds); exit 143.
 * - SIGINT: Ctrl-C on a laptop; exit 130.
 * The first signal aborts the run's signal: no new item starts and the ones in flight finish
 * (graceful drain). A second signal, or the grace period running out, forces the exit, because
 * Kubernetes sends SIGKILL after terminationGracePeriodSeconds (30 s by default) anyway.
 *
 * One Ctrl-C can arrive twice: under `bun run <script>` on a terminal, the terminal signals the
 * whole process group and `bun run` forwards its own copy to the child, within a millisecond. The
 * same signal again within ECHO_MS of the first is that echo, not a second Ctrl-C.
 */
export const SHUTDOWN_SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;
export type ShutdownSignal = keyof typeof SHUTDOWN_SIGNALS;

// Below Kubernetes' default terminationGracePeriodSeconds of 30 s, leaving time to log the summary.
export const DEFAULT_GRACE_MS = 25_000;
const ECHO_MS = 300;

export interface ShutdownHandlers {
  onSignal(signal: ShutdownSignal): void;
  onForce(signal: ShutdownSignal): void;
}

/** Installs the handlers; returns a function that removes them. */
export function handleShutdownSignals(handlers: ShutdownHandlers, graceMs = DEFAULT_GRACE_MS): () => void {
  let received: ShutdownSignal | undefined;
  let receivedAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners = (Object.keys(SHUTDOWN_SIGNALS) as ShutdownSignal[]).map((signal) => {
    const listener = () => {
      if (received === signal && performance.now() - receivedAt < ECHO_MS) return;
      if (received) return handlers.onForce(received);
      received = signal;
      receivedAt = performance.now();
      handlers.onSignal(signal);
      timer = setTimeout(() => handlers.onForce(signal), graceMs);
      timer.unref?.();
    };
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    clearTimeout(timer);
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}
