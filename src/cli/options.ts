/**
 * Option parsers, option blocks and file helpers shared by the commands. Parsers throw
 * InvalidOptionError ("Expected X for option Y but received Z"), so main() prints one line and exits 1.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic.js';
import type { DataSpec } from '../data/source.js';
import type { FitConfig } from '../fisher/report.js';
import { InvalidInputError, InvalidOptionError } from '../errors.js';

/** Repeatable option: collects every value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A number parser: `numberOption('a positive number', ok)('--flag')`. Rejects '' and whatever `ok` rejects. */
export const numberOption = (what: string, ok: (n: number) => boolean) => (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !ok(n)) throw new InvalidOptionError(`Expected ${what} for option ${name} but received '${v}'`);
  return n;
};

export const positiveInt = numberOption('a positive integer', (n) => Number.isInteger(n) && n >= 1);
export const nonNegativeInt = numberOption('a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
export const positiveNumber = numberOption('a positive number', (n) => Number.isFinite(n) && n > 0);
export const nonNegativeNumber = numberOption('a non-negative number', (n) => Number.isFinite(n) && n >= 0);

export const oneOf = <T extends string>(name: string, values: readonly T[]) => (v: string): T => {
  if (!(values as readonly string[]).includes(v)) {
    const list = values.map((x) => `'${x}'`);
    throw new InvalidOptionError(`Expected ${list.slice(0, -1).join(', ')} or ${list[list.length - 1]} for option ${name} but received '${v}'`);
  }
  return v as T;
};

/** --weight-bits 2,3,4 */
export const bitList = (name: string) => (v: string): number[] => {
  const parts = v.split(',').map((s) => s.trim());
  const bits = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || bits.some((b) => b < 2 || b > 16))
    throw new InvalidOptionError(`Expected a comma-separated list of integer bit widths in [2, 16] for option ${name} but received '${v}'`);
  return bits;
};

/** --shape name=1x3x48x192 */
export function parseShapes(specs: string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const s of specs) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(s);
    if (!m) throw new InvalidOptionError(`Expected NAME=DxDxD for option --shape but received '${s}'`);
    out[m[1]!] = m[2]!.split('x').map(Number);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// option blocks

/** Help texts of the data options. --labels and --shape are registered only when their text is given. */
export interface DataOptionsHelp {
  input: string;
  /** default: 'NAME=FILE.npy for each input of a model with several (repeatable)' */
  inputName?: string;
  labels?: string;
  /** true: the usual text */
  shape?: true | string;
}

/** --input, --input-name (repeatable; read with dataSpec()), --labels, --shape (read with parseShapes()). */
export function addDataOptions(cmd: Command, help: DataOptionsHelp): Command {
  cmd.option('--input <file>', help.input, collect, []);
  cmd.option('--input-name <spec>', help.inputName ?? 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, []);
  if (help.labels !== undefined) cmd.option('--labels <file>', help.labels);
  if (help.shape !== undefined)
    cmd.option('--shape <spec>', help.shape === true ? 'concrete shape for an input with dynamic non-batch dims: NAME=1x3x48x192' : help.shape, collect, []);
  return cmd;
}

/** Help texts of the run options: a text replaces the usual one, false leaves the option out. */
export interface RunOptionsHelp {
  batch?: string | false;
  maxSamples?: string | false;
  workers?: string | false;
  foldBn?: string | false;
  quiet?: false;
}

/** --batch, --max-samples, --workers, --no-fold-bn, --quiet (read the first four with runOptions()). */
export function addRunOptions(cmd: Command, help: RunOptionsHelp = {}): Command {
  if (help.batch !== false) cmd.option('--batch <n>', help.batch ?? 'samples per batch', positiveInt('--batch'));
  if (help.maxSamples !== false) cmd.option('--max-samples <n>', help.maxSamples ?? 'use at most this many samples', positiveInt('--max-samples'));
  if (help.workers !== false) cmd.option('--workers <n>', help.workers ?? 'worker threads (default: one per core)', positiveInt('--workers'));
  if (help.foldBn !== false) cmd.option('--no-fold-bn', help.foldBn ?? 'do not fold BatchNormalization into the preceding Conv');
  if (help.quiet !== false) cmd.option('--quiet', 'no progress on stderr');
  return cmd;
}

/** The run options as commander parses them. */
export interface RunCliOptions {
  foldBn: boolean;
  batch?: number;
  maxSamples?: number;
  workers?: number;
  quiet?: boolean;
}

/** The library options of the run options; those not given are left out (the library's defaults). */
export function runOptions(o: RunCliOptions): { foldBatchNorm: boolean; batchSize?: number; maxSamples?: number; workers?: number } {
  return {
    foldBatchNorm: o.foldBn,
    ...(o.batch !== undefined && { batchSize: o.batch }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    ...(o.workers !== undefined && { workers: o.workers }),
  };
}

/**
 * The data spec from --input / --input-name / --labels. Paths are handed to the library as they are
 * (it reads .npy files lazily, a batch at a time, and names the file in its errors).
 */
export function dataSpec(input: string[], inputName: string[], labels?: string): DataSpec {
  const unnamed: string[] = [];
  const named: Record<string, string> = {};
  const addNamed = (spec: string, option: string) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new InvalidOptionError(`Expected NAME=FILE.npy for option ${option} but received '${spec}'`);
    const name = spec.slice(0, eq);
    if (name in named) throw new InvalidOptionError(`Input '${name}' is given twice; pass one ${option} ${name}=FILE.npy`);
    named[name] = spec.slice(eq + 1);
  };
  for (const s of input) {
    // like inspect: --input NAME=FILE.npy names the input unless a file has that very name
    if (s.indexOf('=') > 0 && !existsSync(s)) addNamed(s, '--input');
    else unnamed.push(s);
  }
  for (const s of inputName) addNamed(s, '--input-name');
  if (unnamed.length === 0 && Object.keys(named).length === 0)
    throw new InvalidOptionError('Expected calibration data: pass --input FILE.npy (a single-input model) or --input-name NAME=FILE.npy for each input');
  if (unnamed.length > 1 || (unnamed.length === 1 && Object.keys(named).length > 0))
    throw new InvalidOptionError('With several inputs, name each one: --input-name NAME=FILE.npy (repeat it for every input)');
  const spec: DataSpec = { input: unnamed.length ? unnamed[0]! : named };
  if (labels !== undefined) spec.labels = labels;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// files

type ErrorClass = new (message: string, options?: { cause?: unknown }) => Error;

/** A JSON file, with an error (InvalidInputError unless `error` says otherwise) naming the file when it cannot be read or parsed. */
export function readJsonFile(path: string, what: string, error: ErrorClass = InvalidInputError): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new error(`Cannot read the ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new error(`The ${what} ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === undefined ? 'missing' : JSON.stringify(v));

/** Checks a configuration: { "weights"?: { layer: bits }, "activations"?: { layer: bits } }. */
function parseConfigJson(value: unknown, file: string): Required<FitConfig> {
  if (!isObject(value))
    throw new InvalidOptionError(`${file}: expected a configuration object { "weights": { layer: bits }, "activations": { layer: bits } } but it is ${describe(value)}`);
  const part = (key: 'weights' | 'activations'): Record<string, number> => {
    const p = value[key];
    if (p === undefined) return {};
    if (!isObject(p)) throw new InvalidOptionError(`${file}: expected "${key}" to be an object of layer name -> bits but it is ${describe(p)}`);
    return p as Record<string, number>;
  };
  const weights = part('weights');
  const activations = part('activations');
  if (value.weights === undefined && value.activations === undefined)
    throw new InvalidOptionError(
      `${file}: the configuration has neither "weights" nor "activations"; expected { "weights": { layer: bits }, "activations": { layer: bits } } (or the JSON of onnx-fit search, which holds it as "config")`,
    );
  return { weights, activations };
}

/**
 * A configuration file (--config; errors are InvalidOptionError naming the file): the configuration
 * `{ "weights": {...}, "activations": {...} }` or a JSON that holds it, as `onnx-fit search` writes
 * it (`{ "config": {...}, ... }`). The bit widths are checked where they are used.
 */
export function readConfigFile(path: string): Required<FitConfig> {
  const json = readJsonFile(path, 'configuration', InvalidOptionError);
  const inner = isObject(json) && json.weights === undefined && json.activations === undefined && isObject(json.config) ? json.config : json;
  return parseConfigJson(inner, path);
}

/** JSON (non-finite numbers as the strings "Infinity", "-Infinity", "NaN"), written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n', '--json');
}
