/** A size in binary units: 512 reads "512 B", 1536 "1.5 KiB", 69_990_000 "66.7 MiB" (progress lines, run summaries). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}
