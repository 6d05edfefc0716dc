/** Small SVG building blocks for the HTML report: scales, ticks, axes, escaping. No dependencies. */

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export const fmt = (v: number): string => {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
};

export interface Scale {
  (v: number): number;
  ticks: number[];
  log: boolean;
}

/** A linear scale from [lo, hi] onto [a, b] with about `count` round ticks. */
export function linearScale(lo: number, hi: number, a: number, b: number, count = 5): Scale {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const t0 = Math.floor(lo / step) * step;
  const t1 = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let t = t0; t <= t1 + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  const f = ((v: number) => a + ((v - t0) / (t1 - t0)) * (b - a)) as Scale;
  f.ticks = ticks;
  f.log = false;
  return f;
}

/** A log10 scale over the positive values' decades onto [a, b]; non-positive values map to a. */
export function logScale(values: number[], a: number, b: number): Scale {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  // the lowest value sits above the axis' first decade, so that its bar is visible
  let d0 = pos.length ? Math.floor(Math.log10(Math.min(...pos)) - 1e-9) : 0;
  let d1 = pos.length ? Math.ceil(Math.log10(Math.max(...pos))) : 1;
  if (d1 === d0) d1 = d0 + 1;
  // at most ~8 labelled decades
  const every = Math.max(1, Math.ceil((d1 - d0) / 8));
  d0 = Math.floor(d0 / every) * every;
  const ticks: number[] = [];
  for (let d = d0; d <= d1; d += every) ticks.push(10 ** d);
  const top = Math.log10(ticks.at(-1)!);
  const f = ((v: number) => (v > 0 ? a + ((Math.log10(v) - d0) / (top - d0)) * (b - a) : a)) as Scale;
  f.ticks = ticks;
  f.log = true;
  return f;
}

export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Axis lines, tick marks, grid and labels for an x scale (bottom) and y scale (left). */
export function axes(fr: Frame, x: Scale | undefined, y: Scale | undefined, xLabel: string, yLabel: string): string {
  const out: string[] = [];
  const x0 = fr.left;
  const x1 = fr.width - fr.right;
  const y0 = fr.height - fr.bottom;
  const y1 = fr.top;
  if (x)
    for (const t of x.ticks) {
      const px = x(t).toFixed(1);
      out.push(`<line class="grid" x1="${px}" x2="${px}" y1="${y1}" y2="${y0}"/>`);
      out.push(`<text class="tick" x="${px}" y="${y0 + 14}" text-anchor="middle">${esc(fmt(t))}</text>`);
    }
  if (y)
    for (const t of y.ticks) {
      const py = y(t).toFixed(1);
      out.push(`<line class="grid" x1="${x0}" x2="${x1}" y1="${py}" y2="${py}"/>`);
      out.push(`<text class="tick" x="${x0 - 5}" y="${py}" dy="0.32em" text-anchor="end">${esc(fmt(t))}</text>`);
    }
  out.push(`<line class="axis" x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/>`);
  out.push(`<line class="axis" x1="${x0}" x2="${x0}" y1="${y1}" y2="${y0}"/>`);
  out.push(`<text class="label" x="${(x0 + x1) / 2}" y="${fr.height - 4}" text-anchor="middle">${esc(xLabel)}</text>`);
  if (yLabel)
    out.push(`<text class="label" transform="translate(12 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return out.join('');
}

export const svgOpen = (fr: Frame, id: string, title: string): string =>
  `<svg id="${esc(id)}" xmlns="http://www.w3.org/2000/svg" width="${fr.width}" height="${fr.height}" viewBox="0 0 ${fr.width} ${fr.height}" role="img"><title>${esc(title)}</title>`;
