/**
 * `onnx-fit validate`: the FIT paper's protocol on the user's model and data: N random
 * configurations, their FIT and measured metric, Spearman and Kendall rank correlations.
 */
import type { Command } from 'commander';
import { compact, dataSpec, reportForCommand } from './sensitivity.js';
import { bitList, collect, nonNegativeInt, positiveInt } from './options.js';
import { parseShapes, writeJsonAtomic } from './options.js';
import { table } from './inspect.js';
import { ProgressBar } from './progress.js';
import type { ValidationResult } from '../eval/validate.js';


interface ValidateCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  sensitivity?: string;
  configs: number;
  weightBits?: number[];
  activationBits?: number[];
  seed: number;
  batch?: number;
  maxSamples?: number;
  workers?: number;
  foldBn: boolean;
  json?: string;
  quiet?: boolean;
}

export function formatValidation(v: ValidationResult): string {
  const rows = v.configs.map((c, i) => [String(i + 1), c.averageBits.toFixed(2), compact(c.fit), v.metric === 'output MSE' ? compact(c.value) : (100 * c.value).toFixed(2) + '%', compact(c.damage), c.kl === null ? '-' : compact(c.kl)]);
  const floatText = v.metric === 'accuracy' ? ` (float model ${(100 * v.float).toFixed(2)}%)` : '';
  return [
    `${v.configs.length} random configurations on ${v.samples} samples; metric: ${v.metric}${floatText}`,
    '',
    table(rows, ['#', 'avg bits', 'FIT', v.metric, 'damage', 'KL']),
    '',
    `FIT vs damage: Spearman ${v.spearman.toFixed(3)}, Kendall ${v.kendall.toFixed(3)}` + (v.klSpearman !== null ? `; FIT vs KL: Spearman ${v.klSpearman.toFixed(3)}` : ''),
  ].join('\n');
}

export async function runValidate(model: string, o: ValidateCliOptions): Promise<void> {
  const data = dataSpec(o.input, o.inputName, o.labels);
  const inputShapes = parseShapes(o.shape);
  const { validate } = await import('../eval/validate.js');
  const report = await reportForCommand(model, o, data, inputShapes, 'validate');
  const bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  const result = await validate(model, report, {
    data,
    configs: o.configs,
    seed: o.seed,
    foldBatchNorm: o.foldBn,
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    ...(o.batch !== undefined && { batchSize: o.batch }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    ...(o.workers !== undefined && { workers: o.workers }),
    onProgress: (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' }),
  });
  bar.finish('done');
  if (o.json) writeJsonAtomic(o.json, result);
  process.stdout.write(formatValidation(result) + '\n');
}

export function registerValidate(p: Command): void {
  p.command('validate')
    .description("the FIT paper's protocol: N random configurations, their FIT and measured accuracy (onnxruntime-node), Spearman and Kendall")
    .argument('<model>', 'model.onnx')
    .option('--input <file>', 'inputs .npy, samples on axis 0 (a single-input model)', collect, [])
    .option('--input-name <spec>', 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, [])
    .option('--labels <file>', 'labels .npy (accuracy); without: agreement with the float model')
    .option('--shape <spec>', 'concrete shape for an input with dynamic non-batch dims: NAME=1x3x48x192', collect, [])
    .option('--sensitivity <file>', 'sensitivity JSON (default: computed first on the same data)')
    .option('--configs <n>', 'random configurations (default 20)', positiveInt('--configs'), 20)
    .option('--weight-bits <list>', 'weight bit widths to draw from (default 3,4,5,6,8)', bitList('--weight-bits'))
    .option('--activation-bits <list>', 'activation bit widths to draw from (default 8)', bitList('--activation-bits'))
    .option('--seed <n>', 'seed of the configurations (default 1)', nonNegativeInt('--seed'), 1)
    .option('--batch <n>', 'samples per batch', positiveInt('--batch'))
    .option('--max-samples <n>', 'use at most this many samples', positiveInt('--max-samples'))
    .option('--workers <n>', 'worker threads (default: one per core)', positiveInt('--workers'))
    .option('--no-fold-bn', 'do not fold BatchNormalization (must match the sensitivity report)')
    .option('--json <file>', 'write the configurations, their FIT and measurements, and the correlations as JSON')
    .option('--quiet', 'no progress on stderr')
    .action(runValidate);
}
