/**
 * Progress on stderr: a redrawn bar on a terminal, plain lines (start, each quarter, end)
 * otherwise, so a log file or CI output stays readable. stdout is left to the results.
 */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export class Progress {
  private label = '';
  private total = 0;
  private started = 0;
  private lastDraw = 0;
  private lastQuarter = 0;
  private readonly tty: boolean;

  constructor(private readonly stream: ProgressStream = process.stderr) {
    this.tty = Boolean(stream.isTTY) && process.env['TERM'] !== 'dumb';
  }

  /** A phase with `total` steps (0: no count, just a spinner-less line). */
  start(label: string, total = 0): void {
    this.label = label;
    this.total = total;
    this.started = performance.now();
    this.lastDraw = 0;
    this.lastQuarter = 0;
    if (this.tty) this.draw(0, '');
    else this.stream.write(`[bench] ${label}${total ? ` (${total})` : ''}…\n`);
  }

  update(done: number, note = ''): void {
    if (this.tty) {
      const now = performance.now();
      if (now - this.lastDraw < 80 && done < this.total) return;
      this.lastDraw = now;
      this.draw(done, note);
      return;
    }
    if (this.total > 0) {
      const quarter = Math.floor((done / this.total) * 4);
      if (quarter > this.lastQuarter && quarter < 4) {
        this.lastQuarter = quarter;
        this.stream.write(`[bench] ${this.label}: ${done}/${this.total}${note ? ` ${note}` : ''} (${this.elapsed()})\n`);
      }
    }
  }

  /** Ends the phase with a one-line result. */
  done(summary = ''): void {
    const line = `[bench] ${this.label}: done in ${this.elapsed()}${summary ? ` — ${summary}` : ''}`;
    if (this.tty) this.stream.write(`\r\x1b[K${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  /** A message between phases (warnings), without breaking a drawn bar. */
  note(message: string): void {
    this.stream.write(`${this.tty ? '\r\x1b[K' : ''}[bench] ${message}\n`);
  }

  private elapsed(): string {
    return `${((performance.now() - this.started) / 1000).toFixed(1)} s`;
  }

  private draw(done: number, note: string): void {
    // Kept to one terminal line, or the carriage return would redraw only its last part.
    const columns = this.stream.columns ?? 80;
    const width = Math.max(5, Math.min(40, columns - this.label.length - 48));
    let bar = '';
    if (this.total > 0) {
      const filled = Math.round((Math.min(done, this.total) / this.total) * width);
      bar = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.floor((done / this.total) * 100)).padStart(3)}% ${done}/${this.total} `;
    }
    const line = `[bench] ${this.label} ${bar}${this.elapsed()}${note ? ` ${note}` : ''}`;
    this.stream.write(`\r\x1b[K${line.length > columns - 1 ? `${line.slice(0, columns - 2)}…` : line}`);
  }
}
