/** Tables for people, JSON for scripts: every command prints through these. */

export interface Out {
  readonly json: boolean;
  line(text?: string): void;
  table(headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[]): void;
  data(value: unknown): void;
}

export function createOut(
  json: boolean,
  write: (text: string) => void = (t) => process.stdout.write(t),
): Out {
  return {
    json,
    line: (text = "") => write(`${text}\n`),
    table(headers, rows) {
      const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? "-" : String(c))))];
      const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
      for (const row of cells) {
        write(`${row.map((c, i) => (i === row.length - 1 ? c : (c ?? "").padEnd(widths[i]!))).join("  ")}\n`);
      }
    },
    data: (value) => write(`${JSON.stringify(value, null, 2)}\n`),
  };
}

/** "2d 3h", "5h 12m", "42m", "-3h 5m" for the past. */
export function duration(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const minutes = Math.floor(Math.abs(ms) / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return `${sign}${days}d ${hours}h`;
  if (hours > 0) return `${sign}${hours}h ${mins}m`;
  return `${sign}${mins}m`;
}

export function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
