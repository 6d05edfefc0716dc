/** The report's charts as inline SVG strings: sensitivity bars, Pareto frontier, scatter, curves. */
import { axes, esc, fmt, linearScale, logScale, svgOpen, type Frame } from './svg.js';

export const COLORS = {
  weight: '#1f77b4',
  activation: '#ff7f0e',
  frontier: '#2ca02c',
  chosen: '#d62728',
  point: '#9467bd',
  baseline: ['#8c564b', '#e377c2', '#7f7f7f', '#17becf'],
} as const;

export interface BarRow {
  name: string;
  weight: number;
  activation: number;
}

/** Horizontal paired bars (weight and activation Fisher traces) on a log scale, one row per layer. */
export function sensitivityBars(rows: BarRow[]): string {
  const rowH = 20;
  const labelW = Math.min(260, 12 + 7 * Math.max(8, ...rows.map((r) => r.name.length)));
  const fr: Frame = { width: 900, height: 60 + rows.length * rowH, left: labelW, right: 30, top: 24, bottom: 36 };
  const x = logScale(rows.flatMap((r) => [r.weight, r.activation]), fr.left, fr.width - fr.right);
  const out = [svgOpen(fr, 'sensitivity-chart', 'Fisher trace per layer (log scale)'), axes(fr, x, undefined, 'Fisher trace (log scale)', '')];
  out.push(
    `<rect x="${fr.left}" y="4" width="10" height="10" fill="${COLORS.weight}"/><text class="tick" x="${fr.left + 14}" y="13">weights</text>`,
    `<rect x="${fr.left + 80}" y="4" width="10" height="10" fill="${COLORS.activation}"/><text class="tick" x="${fr.left + 94}" y="13">activations</text>`,
  );
  rows.forEach((r, i) => {
    const y = fr.top + i * rowH;
    out.push(`<text class="tick" x="${fr.left - 6}" y="${y + rowH / 2}" dy="0.32em" text-anchor="end">${esc(r.name)}</text>`);
    for (const [k, v, dy] of [
      ['weight', r.weight, 2],
      ['activation', r.activation, rowH / 2],
    ] as const) {
      const w = Math.max(0, x(v) - fr.left);
      if (w > 0)
        out.push(
          `<rect class="bar-${k}" x="${fr.left}" y="${y + dy}" width="${w.toFixed(1)}" height="${rowH / 2 - 2}" fill="${COLORS[k]}"><title>${esc(r.name)} ${k}: ${fmt(v)}</title></rect>`,
        );
    }
  });
  out.push('</svg>');
  return out.join('');
}

export interface XYPoint {
  x: number;
  y: number;
  title?: string;
}

export interface Series {
  name: string;
  color: string;
  points: XYPoint[];
  line?: boolean;
}

export interface XYChartOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** a highlighted point (e.g. the chosen configuration) */
  mark?: XYPoint & { label: string };
  width?: number;
  height?: number;
}

/** A scatter/line chart of one or more series, optional log axes and a highlighted point. */
export function xyChart(series: Series[], o: XYChartOptions): string {
  const fr: Frame = { width: o.width ?? 640, height: o.height ?? 380, left: 70, right: 20, top: 30, bottom: 40 };
  const all = series.flatMap((s) => s.points).concat(o.mark ? [o.mark] : []);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const x = o.xLog ? logScale(xs, fr.left, fr.width - fr.right) : linearScale(Math.min(...xs), Math.max(...xs), fr.left, fr.width - fr.right);
  const y = o.yLog ? logScale(ys, fr.height - fr.bottom, fr.top) : linearScale(Math.min(...ys), Math.max(...ys), fr.height - fr.bottom, fr.top);
  const out = [svgOpen(fr, o.id, o.title), axes(fr, x, y, o.xLabel, o.yLabel)];
  let lx = fr.left + 6;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="6" width="10" height="10" fill="${s.color}"/><text class="tick" x="${lx + 14}" y="15">${esc(s.name)}</text>`);
    lx += 24 + 7 * s.name.length;
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (s.line && pts.length > 1)
      out.push(`<polyline class="series-line" fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts)
      out.push(
        `<circle class="point" cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="4" fill="${s.color}">${p.title ? `<title>${esc(p.title)}</title>` : ''}</circle>`,
      );
  }
  if (o.mark) {
    const cx = x(o.mark.x).toFixed(1);
    const cy = y(o.mark.y).toFixed(1);
    out.push(`<circle class="mark" cx="${cx}" cy="${cy}" r="8" fill="none" stroke="${COLORS.chosen}" stroke-width="3"/>`);
    out.push(`<circle cx="${cx}" cy="${cy}" r="4" fill="${COLORS.chosen}"/>`);
    out.push(`<text class="tick" x="${cx}" y="${Number(cy) - 12}" text-anchor="middle" fill="${COLORS.chosen}">${esc(o.mark.label)}</text>`);
  }
  out.push('</svg>');
  return out.join('');
}
