/**
 * `onnx-fit report`: one self-contained HTML file (inline SVG and CSS, no script, no network) with
 * the per-layer sensitivity bars, the Pareto frontier with the chosen point, the validation
 * scatter (FIT vs measured metric) and the compression curves, from the JSON files the other
 * commands write.
 */
import { writeFileAtomic } from '../atomic.js';
import { InvalidInputError } from '../errors.js';
import type { SensitivityJson } from '../fisher/report.js';
import { COLORS, sensitivityBars, xyChart, type Series } from './charts.js';
import { esc, fmt } from './svg.js';

export interface FrontierPoint {
  fit: number;
  bytes: number;
  averageBits: number;
  bops?: number;
}

/** The JSON `onnx-fit search` writes (only the fields the report draws). */
export interface SearchJson extends FrontierPoint {
  config: { weights?: Record<string, number>; activations?: Record<string, number> };
  frontier: FrontierPoint[];
}

/** The JSON `onnx-fit validate` writes (only the fields the report draws). */
export interface ValidationJson {
  metric: string;
  float?: number;
  spearman: number;
  kendall: number;
  configs: { fit: number; value: number; averageBits?: number }[];
}

/** Accuracy/compression curves (FITCompress and its baselines). */
export interface CurvesJson {
  metric: string;
  curves: { name: string; points: { compression: number; value: number }[] }[];
}

export interface ReportInput {
  sensitivity: SensitivityJson;
  search?: SearchJson;
  validation?: ValidationJson;
  curves?: CurvesJson;
  title?: string;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:960px}
h1{font-size:22px}h2{font-size:17px;margin-top:32px}table{border-collapse:collapse;font-size:12px}
td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}
.grid{stroke:#eee}.axis{stroke:#444}.tick{font-size:11px;fill:#333}.label{font-size:12px;fill:#222}
.meta{color:#555}`;

function checkSensitivity(s: unknown): SensitivityJson {
  const j = s as SensitivityJson;
  if (!j || typeof j !== 'object' || j.version !== 1 || !Array.isArray(j.layers))
    throw new InvalidInputError('Expected a sensitivity JSON of version 1 (written by onnx-fit sensitivity --json) with a layers array');
  return j;
}

/** The report as an HTML string. */
export function renderReport(input: ReportInput): string {
  const s = checkSensitivity(input.sensitivity);
  const title = input.title ?? `onnx-fit report: ${s.model}`;
  const parts: string[] = [];
  parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head><body>`);
  parts.push(`<h1>${esc(title)}</h1>`);
  parts.push(
    `<p class="meta">${s.layers.length} quantizable layers; ${esc(s.estimator)} Fisher, ${esc(s.likelihood)} likelihood, ${s.samples} samples; BatchNorm ${s.foldBatchNorm ? 'folded' : 'not folded'}.</p>`,
  );
  const ranked = [...s.layers].sort((a, b) => b.weight.fisherTrace - a.weight.fisherTrace);
  parts.push('<h2>Sensitivity per layer</h2>');
  parts.push(sensitivityBars(ranked.map((l) => ({ name: l.name, weight: l.weight.fisherTrace, activation: l.activation.fisherTrace }))));

  const chosen = input.search?.config.weights ?? {};
  const chosenA = input.search?.config.activations ?? {};
  parts.push('<table><tr><th>layer</th><th>op</th><th>weights</th><th>Tr F (weights)</th><th>Tr F (activations)</th>');
  if (input.search) parts.push('<th>weight bits</th><th>activation bits</th>');
  parts.push('</tr>');
  for (const l of ranked) {
    parts.push(`<tr><td>${esc(l.name)}</td><td>${esc(l.op)}</td><td>${l.weight.count}</td><td>${fmt(l.weight.fisherTrace)}</td><td>${fmt(l.activation.fisherTrace)}</td>`);
    if (input.search) parts.push(`<td>${chosen[l.name] ?? 'float'}</td><td>${chosenA[l.name] ?? 'float'}</td>`);
    parts.push('</tr>');
  }
  parts.push('</table>');

  if (input.search) {
    const sr = input.search;
    if (!Array.isArray(sr.frontier)) throw new InvalidInputError('Expected the search JSON to hold a frontier array (written by onnx-fit search --json)');
    parts.push('<h2>Pareto frontier</h2>');
    parts.push(
      `<p class="meta">Chosen: ${fmt(sr.averageBits)} average weight bits, ${fmt(sr.bytes)} bytes, predicted FIT ${fmt(sr.fit)}; ${sr.frontier.length} frontier points.</p>`,
    );
    const pts = sr.frontier.map((p) => ({ x: p.averageBits, y: p.fit, title: `${fmt(p.averageBits)} bits, FIT ${fmt(p.fit)}` }));
    parts.push(
      xyChart([{ name: 'frontier', color: COLORS.frontier, points: pts, line: true }], {
        id: 'frontier-chart',
        title: 'Predicted FIT against average weight bits',
        xLabel: 'average weight bits',
        yLabel: 'FIT (log scale)',
        yLog: true,
        mark: { x: sr.averageBits, y: sr.fit, label: 'chosen' },
      }),
    );
  }

  if (input.validation) {
    const v = input.validation;
    if (!Array.isArray(v.configs)) throw new InvalidInputError('Expected the validation JSON to hold a configs array (written by onnx-fit validate --json)');
    parts.push('<h2>Validation: FIT against measured ' + esc(v.metric) + '</h2>');
    parts.push(
      `<p class="meta">${v.configs.length} configurations; Spearman ${fmt(v.spearman)}, Kendall ${fmt(v.kendall)}${v.float !== undefined ? `; float model ${fmt(v.float)}` : ''}.</p>`,
    );
    parts.push(
      xyChart([{ name: 'configurations', color: COLORS.point, points: v.configs.map((c) => ({ x: c.fit, y: c.value, title: `FIT ${fmt(c.fit)}: ${fmt(c.value)}` })) }], {
        id: 'validation-chart',
        title: `FIT against ${v.metric}`,
        xLabel: 'FIT (log scale)',
        yLabel: v.metric,
        xLog: true,
      }),
    );
  }

  if (input.curves) {
    const c = input.curves;
    const series: Series[] = c.curves.map((cv, i) => ({
      name: cv.name,
      color: i === 0 ? COLORS.chosen : COLORS.baseline[(i - 1) % COLORS.baseline.length]!,
      points: [...cv.points].sort((a, b) => a.compression - b.compression).map((p) => ({ x: p.compression, y: p.value, title: `${cv.name}: ${fmt(p.compression)} -> ${fmt(p.value)}` })),
      line: true,
    }));
    parts.push(`<h2>${esc(c.metric)} against compression</h2>`);
    parts.push(xyChart(series, { id: 'curves-chart', title: `${c.metric} against compression`, xLabel: 'compression (active bytes / fp32 bytes, log scale)', yLabel: c.metric, xLog: true }));
  }
  parts.push('</body></html>\n');
  return parts.join('\n');
}

export function writeReport(path: string, input: ReportInput): void {
  writeFileAtomic(path, renderReport(input), '--out');
}
