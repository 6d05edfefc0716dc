/**
 * `onnx-fit validate`: the FIT paper's protocol on the user's model and data: N random
 * configurations, their FIT and measured metric, Spearman and Kendall rank correlations.
 */
import type { Command } from 'commander';
import { reportForCommand } from './sensitivity.js';
import { addDataOptions, addRunOptions, bitList, dataSpec, nonNegativeInt, parseShapes, positiveInt, runOptions, writeJsonAtomic, type RunCliOptions } from './options.js';
import { compact, metricValue, pct } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress } from './progress.js';
import type { ValidationResult } from '../eval/validate.js';

interface ValidateCliOptions extends RunCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  sensitivity?: string;
  configs: number;
  weightBits?: number[];
  activationBits?: number[];
  seed: number;
  json?: string;
}

export function formatValidation(v: ValidationResult): string {
  const rows = v.configs.map((c, i) => [String(i + 1), c.averageBits.toFixed(2), compact(c.fit), metricValue(v.metric, c.value), compact(c.damage), c.kl === null ? '-' : compact(c.kl)]);
  const floatText = v.metric === 'accuracy' ? ` (float model ${pct(v.float)})` : '';
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
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    ...runOptions(o),
    onProgress: samplesProgress(bar),
  });
  bar.finish('done');
  if (o.json) writeJsonAtomic(o.json, result);
  process.stdout.write(formatValidation(result) + '\n');
}

export function registerValidate(p: Command): void {
  const cmd = p
    .command('validate')
    .description("the FIT paper's protocol: N random configurations, their FIT and measured accuracy (onnxruntime-node), Spearman and Kendall")
    .argument('<model>', 'model.onnx');
  addDataOptions(cmd, { input: 'inputs .npy, samples on axis 0 (a single-input model)', labels: 'labels .npy (accuracy); without: agreement with the float model', shape: true });
  cmd
    .option('--sensitivity <file>', 'sensitivity JSON (default: computed first on the same data)')
    .option('--configs <n>', 'random configurations (default 20)', positiveInt('--configs'), 20)
    .option('--weight-bits <list>', 'weight bit widths to draw from (default 3,4,5,6,8)', bitList('--weight-bits'))
    .option('--activation-bits <list>', 'activation bit widths to draw from (default 8)', bitList('--activation-bits'))
    .option('--seed <n>', 'seed of the configurations (default 1)', nonNegativeInt('--seed'), 1);
  addRunOptions(cmd, { foldBn: 'do not fold BatchNormalization (must match the sensitivity report)' });
  cmd.option('--json <file>', 'write the configurations, their FIT and measurements, and the correlations as JSON').action(runValidate);
}
