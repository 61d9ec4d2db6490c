// Plain-text tables in Markdown pipe syntax (as llama-bench prints them), readable in a terminal and
// pasted as is into BENCHMARKS.md.

export type Align = 'left' | 'right';

/** Renders rows under headers; `align` per column (default: left for the first, right for the rest). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const cols = headers.length;
  for (const r of rows) if (r.length !== cols) throw new RangeError(`table row has ${r.length} cells, headers have ${cols}`);
  const aligns = headers.map((_, c) => align?.[c] ?? (c === 0 ? 'left' : 'right'));
  const widths = headers.map((h, c) => Math.max(3, h.length, ...rows.map((r) => r[c]!.length)));
  const cell = (s: string, c: number) => (aligns[c] === 'right' ? s.padStart(widths[c]!) : s.padEnd(widths[c]!));
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (aligns[c] === 'right' ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n') + '\n';
}

/** 1234567 → "1.23 MiB"-style sizes, binary units as llama-bench prints model sizes. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}

/** 134515008 → "134.52 M", parameter counts as llama-bench prints them. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

/** A rate with enough digits to compare: 3 significant digits, at least one decimal. */
export function formatRate(x: number): string {
  if (x >= 100) return x.toFixed(1);
  if (x >= 10) return x.toFixed(2);
  return x.toFixed(3);
}
