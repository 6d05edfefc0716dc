/** `onnx-fit layers`: layer-wise analysis — one layer quantized at a time, measured beside its FIT. */
import type { Command } from 'commander';
import type { LayerTarget, LayerwiseResult } from '../eval/layerwise.js';
import { reportForCommand } from './sensitivity.js';
import { addDataOptions, addRunOptions, dataSpec, numberOption, oneOf, parseShapes, runOptions, writeJsonAtomic, type RunCliOptions } from './options.js';
import { compact, pct } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress } from './progress.js';

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

interface LayersCliOptions extends RunCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  sensitivity?: string;
  bits: number;
  target: LayerTarget;
  flagRatio?: number;
  clip?: number;
  json?: string;
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
    ...(o.flagRatio !== undefined && { flagRatio: o.flagRatio }),
    ...(o.clip !== undefined && { clipPercentile: o.clip }),
    ...runOptions(o),
    onProgress: samplesProgress(bar),
  });
  bar.finish('done');
  if (o.json) writeJsonAtomic(o.json, result);
  process.stdout.write(formatLayerwise(result) + '\n');
}

export function registerLayerwise(p: Command): void {
  const cmd = p
    .command('layers')
    .description('layer-wise analysis: quantize one layer at a time, measure the damage beside its FIT, flag outliers and try local fixes')
    .argument('<model>', 'model.onnx');
  addDataOptions(cmd, { input: 'inputs .npy, samples on axis 0 (a single-input model)', labels: 'labels .npy (adds the accuracy drop)', shape: true });
  cmd
    .option('--sensitivity <file>', 'sensitivity JSON (default: computed first on the same data)')
    .option('--bits <n>', 'the width each layer is quantized to (default 4)', numberOption('an integer in [2, 15]', (n) => Number.isInteger(n) && n >= 2 && n <= 15)('--bits'), 4)
    .option('--target <what>', 'weights | activations | both (default weights)', oneOf('--target', ['weights', 'activations', 'both'] as const), 'weights' as LayerTarget)
    .option('--flag-ratio <r>', 'flag a layer whose damage is this many times its calibrated FIT prediction (default 4)', numberOption('a number > 1', (n) => Number.isFinite(n) && n > 1)('--flag-ratio'))
    .option('--clip <p>', 'percentile kept by the clipping fix (default 0.999)', numberOption('a number in (0, 1)', (n) => n > 0 && n < 1)('--clip'));
  addRunOptions(cmd, { foldBn: 'do not fold BatchNormalization (must match the sensitivity report)' });
  cmd.option('--json <file>', 'write the analysis as JSON').action(runLayerwise);
}
