/**
 * `onnx-fit search model.onnx --sensitivity s.json (--avg-bits B | --bytes N | --bops N)`: the
 * per-layer bit widths with the least FIT under the budget (exact), a table on stdout, and with
 * --json { config, fit, bytes, averageBits, bops, budget, layers, frontier }.
 */
import type { Command } from 'commander';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { InvalidInputError, InvalidOptionError } from '../errors.js';
import { SensitivityReport } from '../fisher/report.js';
import type { Budget, SearchResult } from '../search/mixed-precision.js';
import { parseShapes } from './index.js';
import { table } from './inspect.js';
import { compact } from './sensitivity.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const positiveNumber = (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidOptionError(`Expected a positive number for option ${name} but received '${v}'`);
  return n;
};

export const bitList = (name: string) => (v: string): number[] => {
  const parts = v.split(',').map((s) => s.trim());
  const bits = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || bits.some((b) => b < 2 || b > 16))
    throw new InvalidOptionError(`Expected a comma-separated list of integer bit widths in [2, 16] for option ${name} but received '${v}'`);
  return bits;
};

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new InvalidInputError(`Cannot read the sensitivity JSON ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidInputError(`The sensitivity JSON ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The --json output: pretty, except one line per frontier point (there can be thousands, each
 * with a bit width per layer). Written to a temp file and renamed.
 */
export function writeSearchJson(path: string, value: Record<string, unknown> & { frontier: unknown[] }): void {
  const head = JSON.stringify({ ...value, frontier: [] }, null, 2);
  // a raw newline cannot occur inside a JSON string, so this is the top-level key
  const lines = value.frontier.map((p) => `    ${JSON.stringify(p)}`).join(',\n');
  const text = head.replace('\n  "frontier": []', () => `\n  "frontier": [${lines ? `\n${lines}\n  ` : ''}]`);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text + '\n');
  renameSync(tmp, path);
}

export interface SearchCliOptions {
  sensitivity?: string;
  avgBits?: number;
  bytes?: number;
  bops?: number;
  weightBits?: number[];
  activationBits?: number[];
  shape: string[];
  json?: string;
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');

/** The readable result: per layer (report order) and totals. */
export function formatSearch(model: string, r: SearchResult): string {
  const out: string[] = [];
  const manyAct = new Set(r.layers.map((l) => l.activationBits)).size > 1 || r.budget.kind === 'bops';
  const header = ['layer', 'op', 'weights', 'Tr F_w', 'weight bits', ...(manyAct ? ['activation bits'] : []), 'FIT'];
  const rows = r.layers.map((l) => [
    l.name,
    l.op,
    String(l.weightCount),
    compact(l.weightTrace),
    String(l.weightBits),
    ...(manyAct ? [String(l.activationBits)] : []),
    compact(l.fit),
  ]);
  const budget = r.budget.kind === 'averageBits' ? `${r.budget.value} average bits` : r.budget.kind === 'bytes' ? `${int(r.budget.value)} bytes` : `${int(r.budget.value)} BOPs`;
  out.push(`Model ${basename(model)}: least-FIT bit widths under a budget of ${budget} (exact)`);
  out.push('');
  out.push(table(rows, header));
  out.push('');
  const weights = r.layers.reduce((a, l) => a + l.weightCount, 0);
  const act = manyAct ? '' : `, activations at ${r.layers[0]?.activationBits ?? 8} bits`;
  out.push(`FIT            ${compact(r.fit)}${act}`);
  out.push(`weight bytes   ${int(r.bytes)} (${((100 * r.bytes) / (4 * weights || 1)).toFixed(1)}% of float32)`);
  out.push(`average bits   ${r.averageBits.toFixed(3)}`);
  if (r.bops !== null) out.push(`BOPs           ${int(r.bops)} per sample`);
  out.push(`frontier       ${r.frontier.length} points (--json writes them); searched in ${r.stats.ms.toFixed(1)} ms`);
  return out.join('\n');
}

export async function runSearch(model: string, o: SearchCliOptions): Promise<void> {
  if (o.sensitivity === undefined) throw new InvalidOptionError('Expected --sensitivity FILE.json, the JSON written by onnx-fit sensitivity --json');
  const given = (['avgBits', 'bytes', 'bops'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1)
    throw new InvalidOptionError(
      `Expected exactly one budget, --avg-bits B, --bytes N or --bops N, but received ${given.length === 0 ? 'none' : given.map((k) => (k === 'avgBits' ? '--avg-bits' : `--${k}`)).join(' and ')}`,
    );
  const budget: Budget = o.avgBits !== undefined ? { averageBits: o.avgBits } : o.bytes !== undefined ? { bytes: o.bytes } : { bops: o.bops! };
  const report = SensitivityReport.fromJSON(readJson(o.sensitivity), o.sensitivity);

  // the sensitivity JSON must describe this model
  const { readModel } = await import('../onnx/read.js');
  const m = readModel(model);
  const tensors = new Set<string>();
  for (const t of m.proto.graph?.initializer ?? []) if (t.name) tensors.add(t.name);
  for (const n of m.proto.graph?.node ?? []) for (const out of n.output ?? []) tensors.add(out);
  const missing = report.layers.filter((l) => !tensors.has(l.weight.name));
  if (missing.length)
    throw new InvalidInputError(
      `${o.sensitivity} does not describe ${model}: the weight${missing.length > 1 ? 's' : ''} ${missing
        .slice(0, 4)
        .map((l) => `'${l.weight.name}' (layer '${l.name}')`)
        .join(', ')}${missing.length > 4 ? ', ...' : ''} ${missing.length > 1 ? 'are' : 'is'} not in the model; run onnx-fit sensitivity on this model`,
    );

  let macs: Record<string, number> | undefined;
  if ('bops' in budget) {
    const { layerMacs } = await import('../search/macs.js');
    const inputShapes = parseShapes(o.shape);
    macs = layerMacs(m, Object.keys(inputShapes).length ? { inputShapes } : {});
  }
  const { searchMixedPrecision } = await import('../search/mixed-precision.js');
  const result = await searchMixedPrecision(report, {
    budget,
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    ...(macs && { macs }),
  });
  if (o.json)
    writeSearchJson(o.json, {
      config: result.config,
      fit: result.fit,
      bytes: result.bytes,
      averageBits: result.averageBits,
      bops: result.bops,
      budget: result.budget,
      layers: result.layers.map((l) => l.name),
      frontier: result.frontier,
    });
  process.stdout.write(formatSearch(model, result) + '\n');
}

export function registerSearch(p: Command): void {
  p.command('search')
    .description('per-layer bit widths with the least FIT under a budget (exact), from a sensitivity JSON')
    .argument('<model>', 'model.onnx')
    .option('--sensitivity <file>', 'sensitivity JSON written by onnx-fit sensitivity --json')
    .option('--avg-bits <b>', 'budget: average weight bits (weighted by weight count)', positiveNumber('--avg-bits'))
    .option('--bytes <n>', 'budget: total weight bytes', positiveNumber('--bytes'))
    .option('--bops <n>', 'budget: bit-operations per sample, sum of MACs x weight bits x activation bits', positiveNumber('--bops'))
    .option('--weight-bits <list>', 'candidate weight bit widths (default 2,3,4,5,6,8)', bitList('--weight-bits'))
    .option('--activation-bits <list>', 'candidate activation bit widths (default 8)', bitList('--activation-bits'))
    .option('--shape <spec>', 'concrete input shape for counting MACs (--bops) when dims are dynamic: NAME=1x3x48x192', collect, [])
    .option('--json <file>', 'write { config, fit, bytes, averageBits, bops, budget, layers, frontier } as JSON')
    .action(runSearch);
}
