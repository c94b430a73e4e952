/**
 * The report's one-word status and what makes it so, by the rules the monitors page by: a slot
 * schedule_audit counts as a breach (missed, doubled, lost, failed), a source at error or that
 * could not be measured, a completeness check that failed are `failing`; a late or healed slot,
 * a stale warning, a source never delivered, open dead letters and quarantined files are `warning`.
 */
import type { BacklogSection } from "./backlog";
import type { FreshnessSection } from "./freshness";
import type { CellKind, ScheduleRow } from "./slot_grid";

export type OverallStatus = "ok" | "warning" | "failing";

export const BREACH_KINDS: ReadonlySet<CellKind> = new Set(["missed", "doubled", "lost", "failed"]);
export const WARNING_KINDS: ReadonlySet<CellKind> = new Set(["late", "healed"]);

export interface Overall {
  status: OverallStatus;
  /** One line per finding, the worst first. */
  findings: Array<{ level: Exclude<OverallStatus, "ok">; text: string }>;
}

export function overallStatus(grid: readonly ScheduleRow[], freshness: FreshnessSection, backlog: BacklogSection): Overall {
  const findings: Overall["findings"] = [];
  // "3 schedules with slots missed or failed: 310 missed, 1 failed"
  const slotFindings = (kinds: ReadonlySet<CellKind>, level: Exclude<OverallStatus, "ok">, what: string) => {
    const counts = new Map<CellKind, number>();
    const schedules = new Set<string>();
    for (const row of grid) {
      for (const cell of row.days.flatMap((d) => d.cells)) {
        if (!kinds.has(cell.kind)) continue;
        counts.set(cell.kind, (counts.get(cell.kind) ?? 0) + 1);
        schedules.add(row.id);
      }
    }
    if (schedules.size) findings.push({ level, text: `${plural(schedules.size, "schedule")} with slots ${what}: ${[...counts].map(([kind, n]) => `${n} ${kind}`).join(", ")}` });
  };
  slotFindings(BREACH_KINDS, "failing", "not delivered");
  const failingSources = freshness.sources.filter((s) => s.result.status === "error" || s.result.status === "runtime error");
  if (failingSources.length) findings.push({ level: "failing", text: `freshness at error: ${failingSources.map((s) => s.source.name).join(", ")}` });
  const completeness = freshness.completeness;
  if (completeness && (completeness.run.status === "partial" || completeness.run.status === "failed")) {
    findings.push({ level: "failing", text: `the last completeness check ${completeness.run.status === "failed" ? "failed" : `found ${completeness.missing} missing and ${completeness.sizeMismatch} changed`}` });
  }
  slotFindings(WARNING_KINDS, "warning", "late or made up");
  const stale = freshness.sources.filter((s) => s.result.status === "warn" || s.result.status === "never delivered");
  if (stale.length) findings.push({ level: "warning", text: `freshness warnings: ${stale.map((s) => `${s.source.name} (${s.result.status})`).join(", ")}` });
  if (backlog.deadLetters.open) findings.push({ level: "warning", text: `${plural(backlog.deadLetters.open, "open dead letter")}` });
  const quarantined = backlog.quarantine.reduce((sum, q) => sum + q.files.length, 0);
  if (quarantined) findings.push({ level: "warning", text: `${plural(quarantined, "quarantined file")}` });
  const unreadable = backlog.quarantine.filter((q) => q.error);
  if (unreadable.length) findings.push({ level: "warning", text: `quarantine not read: ${unreadable.map((q) => q.bucket).join(", ")}` });
  return { status: findings[0]?.level ?? "ok", findings };
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
