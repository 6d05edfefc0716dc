/**
 * `onnx-fit demo`: the main job end to end on the CNN shipped with the package (trained on
 * Fashion-MNIST by scripts/train-demo.ts) and its 512 calibration images: inspect, Fisher
 * sensitivity, the least-FIT configuration at 4 average weight bits, its accuracy beside the float
 * model and uniform 4-bit weights (onnxruntime-node), and a QDQ export that onnxruntime runs.
 */
import type { Command } from 'commander';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../engine/addon.js';
import { pct } from './format.js';
import { writeJsonAtomic } from './options.js';
import { ProgressBar, samplesProgress } from './progress.js';
import { formatSensitivity } from './sensitivity.js';
import { table } from './inspect.js';

interface DemoOptions {
  json?: string;
  outDir?: string;
  quiet?: boolean;
}

export async function runDemo(o: DemoOptions, runInspect: (model: string, x: string) => Promise<void>): Promise<void> {
  const { sensitivity } = await import('../fisher/sensitivity.js');
  const { searchMixedPrecision } = await import('../search/mixed-precision.js');
  const { createEvaluator } = await import('../eval/evaluate.js');
  const { exportModel } = await import('../onnx/write.js');
  const dir = join(packageRoot, 'assets', 'demo');
  const model = join(dir, 'cnn.onnx');
  const data = { input: join(dir, 'calib_x.npy'), labels: join(dir, 'calib_y.npy') };
  const say = (s: string) => process.stdout.write(s + '\n');

  say(`onnx-fit demo: a CNN trained on Fashion-MNIST (${model}) and 512 calibration images\n`);
  await runInspect(model, data.input);

  say('\n1. Fisher sensitivity (FIT) of every quantizable layer:\n');
  let bar = new ProgressBar({ label: 'sensitivity', quiet: o.quiet });
  const report = await sensitivity(model, { data, tolerance: 0, onProgress: samplesProgress(bar) });
  bar.finish('done');
  if (o.json) writeJsonAtomic(o.json, report.toJSON());
  say(formatSensitivity(report.toJSON()));

  say('\n2. The least-FIT weight bit widths at 4 average bits (exact search; activations at 8 bits):\n');
  const search = await searchMixedPrecision(report, { budget: { averageBits: 4 } });
  const uniform4 = { weights: Object.fromEntries(report.layers.map((l) => [l.name, 4])), activations: Object.fromEntries(report.layers.map((l) => [l.name, 8])) };
  say(table(search.layers.map((l) => [l.name, l.op, String(l.weightCount), String(l.weightBits)]), ['layer', 'op', 'weights', 'bits']));
  say(`average ${search.averageBits.toFixed(3)} bits, ${search.bytes} weight bytes, predicted FIT ${search.fit.toExponential(3)} (uniform 4-bit: ${report.fit(uniform4).toExponential(3)})`);

  say('\n3. Measured with onnxruntime-node (QuantizeLinear/DequantizeLinear as deployed):\n');
  bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  const evaluator = await createEvaluator(model, { data, onProgress: samplesProgress(bar) });
  let results;
  try {
    results = await evaluator.evaluateMany([search.config, uniform4]);
  } finally {
    await evaluator.close();
  }
  bar.finish('done');
  const [mixed, uniform] = results;
  say(
    table(
      [
        ['float32', '32', pct(mixed!.floatAccuracy), '-', '-'],
        ['FIT mixed precision', search.averageBits.toFixed(2), pct(mixed!.accuracy), pct(mixed!.agreement), mixed!.kl!.toExponential(2)],
        ['uniform 4-bit', '4.00', pct(uniform!.accuracy), pct(uniform!.agreement), uniform!.kl!.toExponential(2)],
      ],
      ['model', 'avg weight bits', 'top-1', 'agrees with float', 'KL from float'],
    ),
  );

  const outDir = resolve(o.outDir ?? mkdtempSync(join(tmpdir(), 'onnx-fit-demo-')));
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, 'cnn.mixed4.qdq.onnx');
  const summary = await exportModel(model, search.config, out, { format: 'qdq', calibration: data });
  say(`\n4. Exported ${summary.path} (QDQ, opset ${summary.opset}; ${summary.layers.length} quantized layers): run it with onnxruntime-node as is.`);
}

export function registerDemo(p: Command, runInspect: (model: string, x: string) => Promise<void>): void {
  p.command('demo')
    .description('run the main job on the small model shipped with the package: sensitivity, 4-bit mixed precision, accuracy, export')
    .option('--json <file>', 'also write the sensitivity report as JSON')
    .option('--out-dir <dir>', 'where to write the exported model (default: a new temp directory)')
    .option('--quiet', 'no progress on stderr')
    .action((o: DemoOptions) => runDemo(o, runInspect));
}
