/** `onnx-fit layers`: layer-wise analysis — one layer quantized at a time, measured beside its FIT. */
import type { Command } from 'commander';
import { InvalidOptionError } from '../errors.js';
import type { LayerTarget, LayerwiseResult } from '../eval/layerwise.js';
import { compact, dataSpec, reportForCommand } from './sensitivity.js';
import { collect, positiveInt } from './options.js';
import { parseShapes, writeJsonAtomic } from './options.js';
import { table } from './inspect.js';
import { ProgressBar } from './progress.js';

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(2)}%`);

export function formatLayerwise(r: LayerwiseResult): string {
  const rows = [...r.layers]
    .sort((a, b) => b.damage - a.damage)
    .map((l) => [
      l.name,
      l.op,
      compact(l.fit),
      compact(l.damage),
      Number.isFinite(l.ratio) ? l.ratio.toFixed(2) : String(l.ratio),
      pct(l.accuracyDrop),
      l.flagged ? 'FLAG' : '',
      l.fixes.map((f) => `${f.fix}: ${compact(f.damage)}${f.accuracyDrop !== null ? ` (${pct(f.accuracyDrop)})` : ''}`).join('; '),
    ]);
  const flagged = r.layers.filter((l) => l.flagged).length;
  return [
    `Each layer's ${r.target} quantized alone to ${r.bits} bits, on ${r.samples} samples; damage = ${r.damageMetric} from the float model`,
    '',
    table(rows, ['layer', 'op', 'FIT', `damage (${r.damageMetric})`, 'vs FIT', 'acc. drop', 'flag', 'fixes (damage)']),
    '',
    `FIT vs damage over layers: Spearman ${r.spearman.toFixed(3)}; calibration damage/FIT = ${compact(r.scale)}; ` +
      `${flagged} layer(s) flagged (damage far above the calibrated prediction)`,
  ].join('\n');
}

interface LayersCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  sensitivity?: string;
  bits: number;
  target: LayerTarget;
  flagRatio?: number;
  clip?: number;
  batch?: number;
  maxSamples?: number;
  workers?: number;
  foldBn: boolean;
  json?: string;
  quiet?: boolean;
}

export async function runLayerwise(model: string, o: LayersCliOptions): Promise<void> {
  const data = dataSpec(o.input, o.inputName, o.labels);
  const inputShapes = parseShapes(o.shape);
  const { layerwise } = await import('../eval/layerwise.js');
  const report = await reportForCommand(model, o, data, inputShapes, 'the analysis');
  const bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  const result = await layerwise(model, report, {
    data,
    bits: o.bits,
    target: o.target,
    foldBatchNorm: o.foldBn,
    ...(o.flagRatio !== undefined && { flagRatio: o.flagRatio }),
    ...(o.clip !== undefined && { clipPercentile: o.clip }),
    ...(o.batch !== undefined && { batchSize: o.batch }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    ...(o.workers !== undefined && { workers: o.workers }),
    onProgress: (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' }),
  });
  bar.finish('done');
  if (o.json) writeJsonAtomic(o.json, result);
  process.stdout.write(formatLayerwise(result) + '\n');
}

const number = (option: string, ok: (n: number) => boolean, what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new InvalidOptionError(`Expected ${what} for option ${option} but received '${v}'`);
  return n;
};

export function registerLayerwise(p: Command): void {
  p.command('layers')
    .description('layer-wise analysis: quantize one layer at a time, measure the damage beside its FIT, flag outliers and try local fixes')
    .argument('<model>', 'model.onnx')
    .option('--input <file>', 'inputs .npy, samples on axis 0 (a single-input model)', collect, [])
    .option('--input-name <spec>', 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, [])
    .option('--labels <file>', 'labels .npy (adds the accuracy drop)')
    .option('--shape <spec>', 'concrete shape for an input with dynamic non-batch dims: NAME=1x3x48x192', collect, [])
    .option('--sensitivity <file>', 'sensitivity JSON (default: computed first on the same data)')
    .option('--bits <n>', 'the width each layer is quantized to (default 4)', number('--bits', (n) => Number.isInteger(n) && n >= 2 && n <= 15, 'an integer in [2, 15]'), 4)
    .option('--target <what>', 'weights | activations | both (default weights)', (v: string) => {
      if (!['weights', 'activations', 'both'].includes(v)) throw new InvalidOptionError(`Expected weights, activations or both for option --target but received '${v}'`);
      return v as LayerTarget;
    }, 'weights' as LayerTarget)
    .option('--flag-ratio <r>', 'flag a layer whose damage is this many times its calibrated FIT prediction (default 4)', number('--flag-ratio', (n) => n > 1, 'a number > 1'))
    .option('--clip <p>', 'percentile kept by the clipping fix (default 0.999)', number('--clip', (n) => n > 0 && n < 1, 'a number in (0, 1)'))
    .option('--batch <n>', 'samples per batch', positiveInt('--batch'))
    .option('--max-samples <n>', 'use at most this many samples', positiveInt('--max-samples'))
    .option('--workers <n>', 'worker threads (default: one per core)', positiveInt('--workers'))
    .option('--no-fold-bn', 'do not fold BatchNormalization (must match the sensitivity report)')
    .option('--json <file>', 'write the analysis as JSON')
    .option('--quiet', 'no progress on stderr')
    .action(runLayerwise);
}
