/**
 * The operator commands' tables (`etl runs`, `etl dlq list`), kubectl-style: columns under a
 * header that fit the terminal's width (120 columns unless COLUMNS says otherwise), the widest
 * free-text cells cut with an ellipsis; ages and durations short; status in colour on a terminal.
 */

/** Where a line may not pass: 120 columns, or COLUMNS when it is set (as `ls` and git read it). */
export const DEFAULT_WIDTH = 120;

export interface Column {
  header: string;
  align?: "left" | "right";
  /**
   * A column that may be cut to fit, down to `shrink` characters. Columns of the lowest `shrinkOrder`
   * are cut first, the widest of them first, so free text goes before what names a row.
   */
  shrink?: number;
  shrinkOrder?: number;
  /**
   * In a row whose later cells are all empty ("" or "-"), the cell runs on to the end of the line,
   * as a spreadsheet lets text run into empty neighbours: `etl runs`' COUNTS take REASON's room in
   * the rows that have no reason, most of them.
   */
  overflow?: boolean;
  /** The colour of a cell, from its text (e.g. a status). */
  colour?: (cell: string) => Colour | undefined;
}

export type Colour = "red" | "green" | "yellow" | "blue" | "magenta" | "grey";

const SGR: Record<Colour, string> = { red: "31", green: "32", yellow: "33", blue: "34", magenta: "35", grey: "90" };

/** The width lines fit: COLUMNS when it is a sensible number, else 120. */
export function tableWidth(env: Record<string, string | undefined>): number {
  const columns = Number(env.COLUMNS);
  return Number.isInteger(columns) && columns >= 40 ? columns : DEFAULT_WIDTH;
}

/** Colour only on a terminal, and never with NO_COLOR set to anything (no-color.org). */
export function useColour(io: { env: Record<string, string | undefined>; stdoutIsTTY?: boolean }): boolean {
  return io.stdoutIsTTY === true && io.env.NO_COLOR === undefined && io.env.TERM !== "dumb";
}

/**
 * Rows as aligned columns under a header, each line at most `width` columns wide when the
 * columns' `shrink` minimums allow it. Cells are made one line first (control characters and
 * runs of whitespace become one space).
 */
export function formatTable(columns: readonly Column[], rows: readonly string[][], options: { width?: number; colour?: boolean } = {}): string {
  const width = options.width ?? Number.POSITIVE_INFINITY;
  const cells = rows.map((row) => row.map(oneLine));
  const overflowsAt = cells.map((row) => columns.findIndex((column, i) => column.overflow && row.slice(i + 1).every(isEmpty)));
  const natural = columns.map((column, i) =>
    Math.max(textWidth(column.header), ...cells.filter((_, r) => overflowsAt[r] !== i).map((row) => textWidth(row[i]!))),
  );
  const widths = fitWidths(columns, natural, width);
  const starts = widths.map((_, i) => widths.slice(0, i).reduce((sum, w) => sum + w + GAP.length, 0));
  const line = (row: string[], overflowAt: number, header: boolean) => {
    const shown = overflowAt >= 0 ? row.slice(0, overflowAt + 1) : row;
    return shown
      .map((cell, i) => {
        const column = columns[i]!;
        const last = i === shown.length - 1;
        const room = i === overflowAt ? Math.max(widths[i]!, width - starts[i]!) : widths[i]!;
        const text = truncate(cell, room);
        const pad = " ".repeat(Math.max(0, widths[i]! - textWidth(text)));
        const colour = header || !options.colour ? undefined : column.colour?.(cell);
        const painted = colour ? `\u001b[${SGR[colour]}m${text}\u001b[0m` : text;
        return column.align === "right" ? pad + painted : last ? painted : painted + pad;
      })
      .join(GAP)
      .trimEnd();
  };
  return [line(columns.map((c) => c.header), -1, true), ...cells.map((row, r) => line(row, overflowsAt[r]!, false))].join("\n") + "\n";
}

const isEmpty = (cell: string) => cell === "" || cell === "-";

// Two spaces between columns, as kubectl's tabwriter (padding 3) would cost another column each.
const GAP = "  ";

/** Natural widths, cut until the line fits: lowest shrinkOrder first, widest first, never below `shrink`. */
function fitWidths(columns: readonly Column[], natural: number[], width: number): number[] {
  const widths = [...natural];
  let over = widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1) - width;
  const orders = [...new Set(columns.filter((c) => c.shrink !== undefined).map((c) => c.shrinkOrder ?? 0))].sort((a, b) => a - b);
  for (const order of orders) {
    const cuttable = columns.flatMap((c, i) => (c.shrink !== undefined && (c.shrinkOrder ?? 0) === order ? [i] : []));
    while (over > 0) {
      // The widest column of this order that may still lose a character.
      let widest = -1;
      for (const i of cuttable) if (widths[i]! > Math.max(columns[i]!.shrink!, textWidth(columns[i]!.header)) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      if (widest < 0) break;
      widths[widest]!--;
      over--;
    }
  }
  return widths;
}

/** One line: control characters and whitespace runs as one space, trimmed. */
function oneLine(text: string): string {
  return text.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
}

/** Columns a text takes on a terminal (wide characters count two). */
export function textWidth(text: string): number {
  return Bun.stringWidth(text);
}

/** The text cut to `width` columns, its last one an ellipsis when anything was cut. */
export function truncate(text: string, width: number): string {
  if (textWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    const w = textWidth(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

/**
 * Time since an instant as kubectl's AGE column says it (apimachinery's HumanDuration):
 * "45s", "5m10s" under ten minutes, "42m", "5h3m" under eight hours, "20h", "3d4h" under eight days, "90d", "2y3d".
 */
export function formatAge(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 ? `${minutes}m${seconds % 60}s` : `${minutes}m`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 ? `${hours}h${minutes % 60}m` : `${hours}h`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 ? `${days}d${hours % 24}h` : `${days}d`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 ? `${years}y${days % 365}d` : `${years}y`;
  return `${years}y`;
}

/** A count in at most four characters: 950, 9.9k, 13k (for 12,840), 311k, 1.2M, 3G. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n) || Math.abs(n) < 1000) return String(n);
  const units = ["k", "M", "G", "T"];
  let value = n / 1000;
  let unit = 0;
  // 999,500 would round to "1000k": the next unit then.
  while (Math.abs(value) >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const text = Math.abs(value) < 9.95 ? value.toFixed(1).replace(/\.0$/, "") : String(Math.round(value));
  return `${text}${units[unit]}`;
}
