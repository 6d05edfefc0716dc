/** `onnx-fit export`: write the quantized model (QDQ or fake-quant). */
import type { Command } from 'commander';
import { InvalidOptionError } from '../errors.js';
import type { ExportFormat, ExportSummary } from '../onnx/write.js';
import { table } from './inspect.js';
import { addDataOptions, addRunOptions, dataSpec, oneOf, readConfigFile, runOptions, writeJsonAtomic } from './options.js';

/** The exported layers as a table. */
export function formatExport(s: ExportSummary): string {
  const rows = s.layers.map((l) => [
    l.name,
    l.op,
    l.weight ? `${l.weight.bits} (${l.weight.storage}${l.weight.axis !== undefined ? `, axis ${l.weight.axis}` : ''})` : 'float',
    l.activation ? `${l.activation.bits} [${l.activation.min.toPrecision(4)}, ${l.activation.max.toPrecision(4)}]` : 'float',
  ]);
  const out = [
    `Wrote ${s.path} (${s.format}, opset ${s.opset}${s.foldedBatchNorm.length ? `, BatchNorm folded into ${s.foldedBatchNorm.join(', ')}` : ''})`,
    '',
    rows.length ? table(rows, ['layer', 'op', 'weight bits', 'activation bits [range]']) : 'No layer quantized (the configuration is empty): the model is written in float.',
  ];
  for (const w of s.warnings) out.push(`note: ${w}`);
  return out.join('\n');
}

interface ExportCliOptions {
  config?: string;
  out?: string;
  format: ExportFormat;
  perChannel?: boolean;
  input: string[];
  inputName: string[];
  foldBn: boolean;
  raiseOpset?: boolean;
  batch?: number;
  maxSamples?: number;
  json?: string;
}

export async function runExport(model: string, o: ExportCliOptions): Promise<void> {
  if (!o.config) throw new InvalidOptionError('Expected --config FILE.json, a configuration { "weights": { layer: bits }, "activations": { layer: bits } }');
  if (!o.out) throw new InvalidOptionError('Expected --out FILE.onnx, where to write the quantized model');
  const config = readConfigFile(o.config);
  const calibration = o.input.length || o.inputName.length ? dataSpec(o.input, o.inputName) : undefined;
  if (Object.keys(config.activations).length && !calibration)
    throw new InvalidOptionError('The configuration quantizes activations: pass calibration data with --input FILE.npy (or --input-name NAME=FILE.npy)');
  const { exportModel } = await import('../onnx/write.js');
  const summary = await exportModel(model, config, o.out, {
    format: o.format,
    perChannel: o.perChannel ?? false,
    raiseOpset: o.raiseOpset ?? false,
    calibration,
    ...runOptions(o),
  });
  process.stdout.write(formatExport(summary) + '\n');
  if (o.json) writeJsonAtomic(o.json, summary);
}

export function registerExport(p: Command): void {
  const cmd = p
    .command('export')
    .description('write the quantized model: QDQ (integer weights + DequantizeLinear) or fake-quant (float weights on the grid), activations as QuantizeLinear/DequantizeLinear')
    .argument('<model>', 'model.onnx')
    .option('--config <file>', 'configuration JSON ({ "weights": {...}, "activations": {...} }, or the JSON of onnx-fit search)')
    .option('--out <file>', 'the model to write (atomically)')
    .option('--format <format>', 'qdq | fake-quant', oneOf('--format', ['qdq', 'fake-quant'] as const), 'qdq')
    .option('--per-channel', 'quantize weights per output channel');
  addDataOptions(cmd, { input: 'calibration inputs .npy for activation ranges (needed when the configuration quantizes activations)' });
  addRunOptions(cmd, { batch: 'calibration batch size (default 32)', maxSamples: 'calibrate on at most this many samples', workers: false, quiet: false });
  cmd
    .option('--raise-opset', 'raise the opset to 21 (where safe) to store <= 4-bit weights as int4')
    .option('--json <file>', 'write the export summary as JSON')
    .action(runExport);
}
