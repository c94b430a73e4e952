/** The known name closest to `name`, when it is a likely typo of it (as git's and commander's "did you mean"). */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  // A third of the name may be wrong: "lsit" is "list", "ingest" is not "unzip_files".
  return best && best.distance <= Math.max(1, Math.floor(name.length / 3)) ? best.name : undefined;
}

/** `<command>: unknown job "x" (did you mean "y"?); known jobs: ...`, as every command that takes a job name says it. */
export function unknownJobMessage(command: string, name: string, known: readonly string[]): string {
  const likely = closestName(name, known);
  return `${command}: unknown job "${name}"${likely ? ` (did you mean "${likely}"?)` : ""}; known jobs: ${known.join(", ") || "(none)"}`;
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap of two neighbours is one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
