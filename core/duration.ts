const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30s", "90m", "24h", "7d", "2w" in ms; undefined for anything else (the caller names the flag). */
export function durationMs(text: string): number | undefined {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2]!]! : undefined;
}

/**
 * How long something took, never rounded to nothing: "195ms", "4.2s" (tenths under ten seconds),
 * "31s", "3m10s", "3h7m", "2d5h". A 195 ms run printed "0.0s".
 */
export function formatDuration(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  if (whole < 1000) return `${whole}ms`;
  // 9,950 ms and up would print "10.0s": whole seconds from there.
  if (whole < 9950) return `${(whole / 1000).toFixed(1)}s`;
  const seconds = Math.round(whole / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
  const hours = Math.floor(minutes / 60);
  return `${Math.floor(hours / 24)}d${hours % 24}h`;
}
