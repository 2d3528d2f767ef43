/**
 * The latency chart, hand-written SVG: the cumulative distribution of each latency series on a
 * logarithmic time axis, so a 30 ms overhead and a 3 s tail both read clearly.
 */
export interface Series {
  label: string;
  /** Milliseconds. */
  values: number[];
  color: string;
  dashed?: boolean;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2, 5, 10, 20, 50, … covering [min, max]. */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let decade = 10 ** Math.floor(Math.log10(min)); decade <= max * 10; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const tick = decade * step;
      if (tick >= min && tick <= max) ticks.push(Number(tick.toPrecision(3)));
    }
  }
  return ticks;
}

export function cdfChart(title: string, series: Series[], options: { width?: number; height?: number; marks?: Array<{ at: number; label: string }> } = {}): string {
  const width = options.width ?? 960;
  const height = options.height ?? 540;
  const columns = 3;
  const legendRows = Math.ceil(series.length / columns);
  const margin = { left: 64, right: 24, top: 48 + legendRows * 18 + 8, bottom: 56 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && v > 0);
  const lo = all.length ? 10 ** Math.floor(Math.log10(Math.min(...all))) : 1;
  const hi = all.length ? 10 ** Math.ceil(Math.log10(Math.max(...all))) : 1000;
  const x = (ms: number) => margin.left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * plotW;
  const y = (fraction: number) => margin.top + (1 - fraction) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${margin.left}" y="28" font-size="16" font-weight="600" fill="#111">${escape(title)}</text>`);
  // Grid and axes.
  for (const tick of logTicks(lo, hi)) {
    const px = x(tick).toFixed(1);
    out.push(`<line x1="${px}" y1="${margin.top}" x2="${px}" y2="${margin.top + plotH}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${px}" y="${margin.top + plotH + 18}" text-anchor="middle" fill="#374151">${tick >= 1000 ? `${tick / 1000} s` : `${tick} ms`}</text>`);
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 0.95, 1]) {
    const py = y(fraction).toFixed(1);
    out.push(`<line x1="${margin.left}" y1="${py}" x2="${margin.left + plotW}" y2="${py}" stroke="${fraction === 0.5 || fraction === 0.95 ? '#d1d5db' : '#f3f4f6'}"/>`);
    out.push(`<text x="${margin.left - 8}" y="${Number(py) + 4}" text-anchor="end" fill="#374151">${fraction === 0.95 ? 'p95' : `${fraction * 100}%`}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9ca3af"/>`);
  out.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle" fill="#111">latency (log scale)</text>`);
  out.push(`<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111">fraction of jobs at or below</text>`);
  for (const mark of options.marks ?? []) {
    if (mark.at < lo || mark.at > hi) continue;
    const px = x(mark.at).toFixed(1);
    out.push(`<line x1="${px}" y1="${margin.top}" x2="${px}" y2="${margin.top + plotH}" stroke="#6b7280" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${Number(px) + 4}" y="${margin.top + 12}" fill="#6b7280">${escape(mark.label)}</text>`);
  }
  // One step line per series.
  series.forEach((s, index) => {
    const sorted = s.values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    if (sorted.length === 0) return;
    const points: string[] = [`${x(sorted[0] ?? lo).toFixed(1)},${y(0).toFixed(1)}`];
    sorted.forEach((value, i) => {
      const px = x(value).toFixed(1);
      points.push(`${px},${y(i / sorted.length).toFixed(1)}`, `${px},${y((i + 1) / sorted.length).toFixed(1)}`);
    });
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${points.join(' ')}"/>`);
    // The legend sits in a band above the plot, three entries a row, clear of the lines.
    const ly = 52 + Math.floor(index / columns) * 18;
    const lx = margin.left + (index % columns) * Math.floor(plotW / columns);
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" fill="#111">${escape(`${s.label} (n=${sorted.length})`)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
