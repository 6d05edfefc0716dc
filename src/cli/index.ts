/** The onnx-fit command. */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { OnnxFitError, InvalidOptionError } from '../errors.js';
import { inspect } from '../inspect.js';
import { collect, nonNegativeInt, parseShapes, positiveInt, writeJsonAtomic } from './options.js';
import { readNpy, toFloat32 } from '../data/npy.js';
import type { Inputs } from '../engine/model.js';
import { formatInspect } from './inspect.js';
import { registerScore, registerSensitivity } from './sensitivity.js';
import { registerExport } from './export.js';
import { registerEvaluate } from './evaluate.js';
import { registerSearch } from './search.js';
import { registerReport } from './report.js';
import { registerDemo } from './demo.js';
import { registerValidate } from './validate.js';
import { registerLayerwise } from './layerwise.js';
import { registerCompress } from './compress.js';

/** --input x.npy (the only input) or --input name=x.npy */
export function parseInputs(specs: string[], inputNames?: string[]): Inputs {
  const out: Inputs = {};
  for (const s of specs) {
    const eq = s.indexOf('=');
    let name: string | undefined;
    let path = s;
    if (eq > 0 && !existsSync(s)) {
      name = s.slice(0, eq);
      path = s.slice(eq + 1);
    }
    const arr = readNpy(path);
    out[name ?? '\0'] = { dims: arr.dims, data: toFloat32(arr) };
  }
  if (out['\0']) {
    if (specs.length > 1) throw new InvalidOptionError('With several --input options, name each one: --input NAME=FILE.npy');
    if (inputNames && inputNames.length !== 1)
      throw new InvalidOptionError(`The model has ${inputNames.length} inputs (${inputNames.join(', ')}); name them: --input NAME=FILE.npy`);
    const only = out['\0'];
    delete out['\0'];
    out[inputNames?.[0] ?? ''] = only;
  }
  return out;
}

async function runInspect(model: string, o: { input: string[]; shape: string[]; batch: number; json?: string; seed: number }) {
  const { readModel } = await import('../onnx/read.js');
  const { declaredInputs } = await import('../engine/load.js');
  const m = readModel(model);
  const inputs = o.input.length ? parseInputs(o.input, declaredInputs(m).map((i) => i.name)) : undefined;
  const report = await inspect(model, { inputs, inputShapes: parseShapes(o.shape), batch: o.batch, seed: o.seed });
  process.stdout.write(formatInspect(report) + '\n');
  if (o.json) writeJsonAtomic(o.json, report);
}

export function program(): Command {
  const p = new Command();
  p.name('onnx-fit').description('Quantization and pruning sensitivity (FIT) for ONNX models, on a native engine').showHelpAfterError();
  p.command('inspect')
    .description('list inputs, outputs and quantizable layers; run the engine beside onnxruntime-node and report their agreement')
    .argument('<model>', 'model.onnx')
    .option('--input <file>', 'input .npy (NAME=FILE.npy for several inputs); random when omitted', collect, [])
    .option('--shape <spec>', 'concrete shape for an input with dynamic dims: NAME=1x3x48x192', collect, [])
    .addOption(new Option('--batch <n>', 'batch size for a dynamic first dim').default(2).argParser(positiveInt('--batch')))
    .addOption(new Option('--seed <n>', 'seed of the random input').default(1).argParser(nonNegativeInt('--seed')))
    .option('--json <file>', 'write the report as JSON')
    .action(runInspect);
  registerSensitivity(p);
  registerScore(p);
  registerEvaluate(p);
  registerExport(p);
  registerSearch(p);
  registerReport(p);
  registerValidate(p);
  registerLayerwise(p);
  registerCompress(p);
  registerDemo(p, (model, x) => runInspect(model, { input: [`input=${x}`], shape: [], batch: 2, seed: 1 }));
  return p;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    if (e instanceof OnnxFitError) {
      process.stderr.write(`onnx-fit: ${e.message} [${e.code}]\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}
