/** Plain-text tables for the summary on stdout. */

export type Align = 'left' | 'right';

/** Renders rows under headers, columns padded; a row of one cell starting with '#' is a section title. */
export function renderTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.filter((row) => row.length > 1).map((row) => (row[column] ?? '').length)));
  const pad = (cell: string, column: number) => ((align[column] ?? (column === 0 ? 'left' : 'right')) === 'left' ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0));
  const line = (cells: string[]) => cells.map((cell, column) => pad(cell, column)).join('  ').trimEnd();
  const out = [line(headers), widths.map((width) => '─'.repeat(width)).join('  ')];
  for (const row of rows) out.push(row.length === 1 ? (row[0] ?? '').replace(/^#/, '') : line(row));
  return out.join('\n');
}

export const fixed = (value: number | undefined, digits = 1): string => (value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits));

export const usd = (value: number): string => (Number.isFinite(value) ? `$${value.toFixed(value >= 100 ? 0 : value >= 10 ? 2 : 3)}` : '–');

export const mb = (bytes: number | undefined): string => (bytes === undefined ? '–' : `${(bytes / 1024 / 1024).toFixed(0)} MB`);

export const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

export const triple = (summary: { p50: number; p95: number; p99: number } | undefined, digits = 1): string =>
  summary ? `${fixed(summary.p50, digits)} / ${fixed(summary.p95, digits)} / ${fixed(summary.p99, digits)}` : '–';

/** A verdict: undefined where the run's settings do not test the target. */
export const mark = (pass: boolean | undefined): string => (pass === undefined ? ' n/a' : pass ? 'PASS' : 'FAIL');
