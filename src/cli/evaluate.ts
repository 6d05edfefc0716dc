/** `onnx-fit evaluate`: accuracy, agreement and KL of quantization configurations with onnxruntime-node. */
import type { Command } from 'commander';
import { basename } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { EvaluationResult } from '../eval/evaluate.js';
import { addDataOptions, addRunOptions, collect, dataSpec, readConfigFile, runOptions, writeJsonAtomic, type RunCliOptions } from './options.js';
import { compact, pct } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress } from './progress.js';

export function formatEvaluation(model: string, names: string[], results: EvaluationResult[]): string {
  const r0 = results[0]!;
  const out = [`Model ${model}: ${r0.samples} samples, ${r0.likelihood} output '${r0.output}'`];
  if (r0.floatAccuracy !== null) out.push(`float accuracy ${pct(r0.floatAccuracy)}`);
  if (r0.floatMse !== null) out.push(`float MSE ${compact(r0.floatMse)}`);
  out.push('');
  const classes = r0.likelihood !== 'gaussian';
  const header = ['config', ...(classes ? ['accuracy'] : ['MSE']), 'agreement', ...(classes ? ['KL(float||quant)'] : []), 'output MSE'];
  const rows = results.map((r, i) => [
    names[i]!,
    ...(classes ? [pct(r.accuracy, 'n/a')] : [compact(r.mse)]),
    pct(r.agreement, 'n/a'),
    ...(classes ? [compact(r.kl)] : []),
    compact(r.outputMse),
  ]);
  out.push(table(rows, header));
  return out.join('\n');
}

interface EvaluateCliOptions extends RunCliOptions {
  config: string[];
  input: string[];
  inputName: string[];
  labels?: string;
  perChannel?: boolean;
  json?: string;
}

export async function runEvaluate(model: string, o: EvaluateCliOptions): Promise<void> {
  if (!o.config.length) throw new InvalidOptionError('Expected --config FILE.json (repeatable), a configuration { "weights": { layer: bits }, "activations": { layer: bits } }');
  const configs = o.config.map(readConfigFile);
  const data = dataSpec(o.input, o.inputName, o.labels);
  const { evaluateMany } = await import('../eval/evaluate.js');
  const bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  let results: EvaluationResult[];
  try {
    results = await evaluateMany(model, configs, {
      data,
      perChannel: o.perChannel ?? false,
      ...runOptions(o),
      onProgress: samplesProgress(bar),
    });
  } finally {
    bar.finish();
  }
  process.stdout.write(formatEvaluation(basename(model), o.config.map((c) => basename(c)), results) + '\n');
  if (o.json) {
    const rows = results.map((r, i) => ({ file: o.config[i], ...r }));
    writeJsonAtomic(o.json, { version: 1, model: basename(model), results: rows });
  }
}

export function registerEvaluate(p: Command): void {
  const cmd = p
    .command('evaluate')
    .description('accuracy of quantization configurations with onnxruntime-node: top-1 vs labels, agreement with the float model, KL(float || quantized)')
    .argument('<model>', 'model.onnx')
    .option('--config <file>', 'configuration JSON (repeatable; the JSON of onnx-fit search works too)', collect, []);
  addDataOptions(cmd, {
    input: 'inputs .npy with the samples on axis 0 (a single-input model)',
    labels: 'labels .npy: class indices or regression targets; without them only agreement and KL are reported',
  });
  cmd.option('--per-channel', 'quantize weights per output channel');
  addRunOptions(cmd, { batch: 'samples per batch (default 64)', workers: 'worker threads (default: one per core; 1 runs on the main thread)' });
  cmd.option('--json <file>', 'write { version, model, results: [...] } as JSON').action(runEvaluate);
}
