/** `onnx-fit evaluate`: accuracy, agreement and KL of quantization configurations with onnxruntime-node. */
import type { Command } from 'commander';
import { basename } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { EvaluationResult } from '../eval/evaluate.js';
import { readConfigFile } from './export.js';
import { collect, positiveInt, writeJsonAtomic } from './options.js';
import { table } from './inspect.js';
import { ProgressBar } from './progress.js';
import { dataSpec } from './sensitivity.js';

const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
const num = (v: number | null) => (v === null ? 'n/a' : v === 0 ? '0' : v.toExponential(2).replace('e+', 'e'));

export function formatEvaluation(model: string, names: string[], results: EvaluationResult[]): string {
  const r0 = results[0]!;
  const out = [`Model ${model}: ${r0.samples} samples, ${r0.likelihood} output '${r0.output}'`];
  if (r0.floatAccuracy !== null) out.push(`float accuracy ${pct(r0.floatAccuracy)}`);
  if (r0.floatMse !== null) out.push(`float MSE ${num(r0.floatMse)}`);
  out.push('');
  const classes = r0.likelihood !== 'gaussian';
  const header = ['config', ...(classes ? ['accuracy'] : ['MSE']), 'agreement', ...(classes ? ['KL(float||quant)'] : []), 'output MSE'];
  const rows = results.map((r, i) => [
    names[i]!,
    ...(classes ? [pct(r.accuracy)] : [num(r.mse)]),
    pct(r.agreement),
    ...(classes ? [num(r.kl)] : []),
    num(r.outputMse),
  ]);
  out.push(table(rows, header));
  return out.join('\n');
}

interface EvaluateCliOptions {
  config: string[];
  input: string[];
  inputName: string[];
  labels?: string;
  perChannel?: boolean;
  foldBn: boolean;
  batch?: number;
  maxSamples?: number;
  workers?: number;
  json?: string;
  quiet?: boolean;
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
      foldBatchNorm: o.foldBn,
      batchSize: o.batch,
      maxSamples: o.maxSamples,
      workers: o.workers,
      onProgress: (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' }),
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
  p.command('evaluate')
    .description('accuracy of quantization configurations with onnxruntime-node: top-1 vs labels, agreement with the float model, KL(float || quantized)')
    .argument('<model>', 'model.onnx')
    .option('--config <file>', 'configuration JSON (repeatable; the JSON of onnx-fit search works too)', collect, [])
    .option('--input <file>', 'inputs .npy with the samples on axis 0 (a single-input model)', collect, [])
    .option('--input-name <spec>', 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, [])
    .option('--labels <file>', 'labels .npy: class indices or regression targets; without them only agreement and KL are reported')
    .option('--per-channel', 'quantize weights per output channel')
    .option('--no-fold-bn', 'do not fold BatchNormalization into the preceding Conv')
    .option('--batch <n>', 'samples per batch (default 64)', positiveInt('--batch'))
    .option('--max-samples <n>', 'use at most this many samples', positiveInt('--max-samples'))
    .option('--workers <n>', 'worker threads (default: one per core; 1 runs on the main thread)', positiveInt('--workers'))
    .option('--json <file>', 'write { version, model, results: [...] } as JSON')
    .option('--quiet', 'no progress on stderr')
    .action(runEvaluate);
}
