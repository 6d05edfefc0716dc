/**
 * `onnx-fit export` (write the quantized model: QDQ or fake-quant) and the configuration-file
 * loader shared with `onnx-fit evaluate`.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../errors.js';
import type { QuantConfig } from '../onnx/quantize.js';
import type { ExportFormat, ExportSummary } from '../onnx/write.js';
import { table } from './inspect.js';
import { collect, positiveInt, writeJsonAtomic } from './options.js';
import { dataSpec } from './sensitivity.js';

/**
 * Reads a configuration file: the DESIGN.md configuration `{ "weights": {...}, "activations": {...} }`
 * or the JSON `onnx-fit search` writes, which wraps it as `{ "config": {...}, ... }`.
 */
export function readConfigFile(path: string): QuantConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InvalidOptionError(`Expected a readable configuration JSON file for option --config but could not read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InvalidOptionError(`Expected JSON in the configuration file ${path} but it does not parse: ${(e as Error).message}`, { cause: e });
  }
  const obj = json as Record<string, unknown>;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new InvalidOptionError(`Expected a configuration object { "weights": {...}, "activations": {...} } in ${path} but received ${Array.isArray(obj) ? 'an array' : String(obj)}`);
  const inner = !('weights' in obj) && !('activations' in obj) && obj.config && typeof obj.config === 'object' ? (obj.config as Record<string, unknown>) : obj;
  if (!('weights' in inner) && !('activations' in inner))
    throw new InvalidOptionError(`Expected "weights" and/or "activations" in the configuration file ${path} (or a "config" object holding them) but received keys ${Object.keys(obj).map((k) => `"${k}"`).join(', ') || 'none'}`);
  return { weights: inner.weights as Record<string, number> | undefined, activations: inner.activations as Record<string, number> | undefined };
}

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
  if (o.format !== 'qdq' && o.format !== 'fake-quant')
    throw new InvalidOptionError(`Expected 'qdq' or 'fake-quant' for option --format but received '${o.format}'`);
  const config = readConfigFile(o.config);
  const calibration = o.input.length || o.inputName.length ? dataSpec(o.input, o.inputName) : undefined;
  const { exportModel } = await import('../onnx/write.js');
  let summary: ExportSummary;
  try {
    summary = await exportModel(model, config, o.out, {
      format: o.format,
      perChannel: o.perChannel ?? false,
      foldBatchNorm: o.foldBn,
      raiseOpset: o.raiseOpset ?? false,
      calibration,
      batchSize: o.batch,
      maxSamples: o.maxSamples,
    });
  } catch (e) {
    if (e instanceof InvalidOptionError && /option calibration/.test(e.message) && !calibration)
      throw new InvalidOptionError('The configuration quantizes activations: pass calibration data with --input FILE.npy (or --input-name NAME=FILE.npy)', { cause: e });
    throw e;
  }
  process.stdout.write(formatExport(summary) + '\n');
  if (o.json) writeJsonAtomic(o.json, summary);
}

export function registerExport(p: Command): void {
  p.command('export')
    .description('write the quantized model: QDQ (integer weights + DequantizeLinear) or fake-quant (float weights on the grid), activations as QuantizeLinear/DequantizeLinear')
    .argument('<model>', 'model.onnx')
    .option('--config <file>', 'configuration JSON ({ "weights": {...}, "activations": {...} }, or the JSON of onnx-fit search)')
    .option('--out <file>', 'the model to write (atomically)')
    .option('--format <format>', 'qdq | fake-quant', 'qdq')
    .option('--per-channel', 'quantize weights per output channel')
    .option('--input <file>', 'calibration inputs .npy for activation ranges (needed when the configuration quantizes activations)', collect, [])
    .option('--input-name <spec>', 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, [])
    .option('--no-fold-bn', 'do not fold BatchNormalization into the preceding Conv')
    .option('--raise-opset', 'raise the opset to 21 (where safe) to store <= 4-bit weights as int4')
    .option('--batch <n>', 'calibration batch size (default 32)', positiveInt('--batch'))
    .option('--max-samples <n>', 'calibrate on at most this many samples', positiveInt('--max-samples'))
    .option('--json <file>', 'write the export summary as JSON')
    .action(runExport);
}
