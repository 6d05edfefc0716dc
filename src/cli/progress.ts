/**
 * Progress on stderr for long CLI work. On a TTY: one line redrawn in place with `\r` (at most
 * every `redrawMs`). Elsewhere (CI logs, pipes): a plain line at most every `intervalMs` (2 s), so
 * short runs print nothing. Whatever was drawn always ends with a newline (`finish()`), so an error
 * message or the next prompt starts on a fresh line. `quiet` disables it.
 */
import type { SensitivityProgress } from '../fisher/sensitivity.js';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** where to draw (default process.stderr) */
  stream?: ProgressStream;
  /** what is running, the start of every line */
  label: string;
  /** draw nothing */
  quiet?: boolean;
  /** minimum time between plain lines when the stream is not a TTY (default 2000 ms) */
  intervalMs?: number;
  /** minimum time between redraws on a TTY (default 100 ms) */
  redrawMs?: number;
  /** clock, for tests (default Date.now) */
  now?: () => number;
}

export interface ProgressState {
  /** units done */
  done: number;
  /** units in all, when known (draws a bar) */
  total?: number;
  /** unit name, plural ('samples') */
  unit: string;
  /** more to show after the count, e.g. '4 batches, max rel. s.e. 3.1%' */
  detail?: string;
}

const BAR = 20;

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressBar {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly start: number;
  private readonly intervalMs: number;
  private readonly redrawMs: number;
  private last: ProgressState | undefined;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawnWidth = 0;
  /** a TTY line is on screen without its newline */
  private open = false;
  private printed = false;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.intervalMs = opts.intervalMs ?? 2000;
    this.redrawMs = opts.redrawMs ?? 100;
  }

  get enabled(): boolean {
    return !this.opts.quiet;
  }

  update(state: ProgressState): void {
    if (!this.enabled || this.finished) return;
    this.last = state;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= this.redrawMs) this.drawTty(t);
    } else if (t - this.start >= this.intervalMs && t - this.lastDraw >= this.intervalMs) {
      this.stream.write(this.text(state, t, false) + '\n');
      this.lastDraw = t;
      this.printed = true;
    }
  }

  /**
   * Ends the progress output: on a TTY the final state and a newline; otherwise a final plain line
   * when periodic lines were printed. `note` (e.g. 'converged') is appended. Safe to call twice.
   */
  finish(note?: string): void {
    if (!this.enabled || this.finished) return;
    this.finished = true;
    const t = this.now();
    if (this.tty) {
      if (this.last) this.drawTty(t, note);
      if (this.open) this.stream.write('\n');
      this.open = false;
    } else if (this.printed && this.last) {
      this.stream.write(this.text(this.last, t, false, note) + '\n');
    }
  }

  private drawTty(t: number, note?: string): void {
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    let line = this.text(this.last!, t, true, note);
    if (line.length > width) line = line.slice(0, width - 1) + '…';
    const pad = Math.max(0, this.drawnWidth - line.length);
    this.stream.write('\r' + line + ' '.repeat(pad));
    this.drawnWidth = line.length;
    this.lastDraw = t;
    this.open = true;
  }

  private text(s: ProgressState, t: number, bar: boolean, note?: string): string {
    const parts: string[] = [];
    const known = s.total !== undefined && s.total > 0;
    if (bar && known) {
      const filled = Math.min(BAR, Math.round((BAR * s.done) / s.total!));
      parts.push(`${this.opts.label} [${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}]`);
    } else if (bar) parts.push(this.opts.label);
    const count = known ? `${s.done}/${s.total} ${s.unit}` : `${s.done} ${s.unit}`;
    parts.push(bar ? count : `${this.opts.label}: ${count}`);
    if (s.detail) parts.push(s.detail);
    parts.push(formatDuration(t - this.start));
    if (note) parts.push(note);
    return parts.join(bar ? '  ' : ', ');
  }
}

/** 3.1% / 0.012% / n/a (not yet estimable). */
export function formatRelError(rel: number): string {
  if (!Number.isFinite(rel)) return 'n/a';
  const pct = rel * 100;
  return `${pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toPrecision(2)}%`;
}

/** The progress state of a sensitivity() run. */
export function sensitivityState(p: SensitivityProgress, tolerance?: number): ProgressState {
  const target = tolerance === 0 ? '' : ` (target ${+((tolerance ?? 0.05) * 100).toPrecision(3)}%)`;
  return {
    done: p.samples,
    total: p.total,
    unit: 'samples',
    detail: `${p.batches} ${p.batches === 1 ? 'batch' : 'batches'}, max rel. s.e. ${formatRelError(p.maxRelStdError)}${target}`,
  };
}

/** onProgress for work counted in samples: draws the samples done of the total on `bar`. */
export function samplesProgress(bar: ProgressBar): (p: { samples: number; total?: number | undefined }) => void {
  return (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' });
}
