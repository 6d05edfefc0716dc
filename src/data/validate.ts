/** Checks of calibration data against the model and of the data options (DESIGN.md "Data"). */
import { InvalidOptionError } from '../errors.js';
import { inputError } from './columns.js';

export interface ModelInputInfo {
  name: string;
  /** declared dims: numbers, symbolic names or null (dynamic); axis 0 is the batch */
  dims: readonly (number | string | null)[];
}

/** What openData needs to know about the model: its (non-constant) inputs. A Graph fits. */
export interface DataModel {
  inputs: readonly ModelInputInfo[];
}

export const fmtDims = (dims: readonly (number | string | null)[]): string =>
  `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;

export const quoteList = (names: readonly string[]): string => names.map((n) => `'${n}'`).join(', ');

/** A positive integer option (or undefined when optional and absent). */
export function positiveInt(name: string, v: unknown, optional: boolean): number | undefined {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new InvalidOptionError(`Expected a positive integer for option ${name} but received ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  return v;
}

export function checkModel(model: DataModel): void {
  if (!model || !Array.isArray(model.inputs) || model.inputs.some((i) => typeof i?.name !== 'string' || !Array.isArray(i.dims)))
    throw new InvalidOptionError('Expected a model description { inputs: { name, dims }[] } (e.g. a normalized Graph) for openData');
  if (model.inputs.length === 0) throw inputError('The model has no (non-constant) inputs, so there is nothing to feed calibration data to');
}

/**
 * Checks dims (axis 0 = samples) of the data for model input `input` against its declared dims:
 * same rank (when declared) and equal fixed dims after the batch dim; dynamic dims match anything.
 */
export function checkInputDims(input: ModelInputInfo, dims: readonly number[], where: string): void {
  const decl = input.dims;
  const declared = `model input '${input.name}' is declared ${fmtDims(decl)}, samples first`;
  if (dims.length === 0)
    throw inputError(`${where} is a scalar; it needs a sample axis first (dims [samples, ...]) as ${declared}`);
  if (decl.length > 0 && dims.length !== decl.length) {
    const hint =
      dims.length === decl.length - 1
        ? `; add the sample axis (a single sample has dims [1, ${dims.join(', ')}])`
        : '; reshape the data to the declared rank';
    throw inputError(`Expected ${where} to have rank ${decl.length} (${declared}) but received dims ${fmtDims(dims)}${hint}`);
  }
  for (let i = 1; i < decl.length; i++) {
    const d = decl[i];
    if (typeof d === 'number' && d !== dims[i])
      throw inputError(
        `Expected dim ${i} of ${where} to be ${d} (${declared}) but received dims ${fmtDims(dims)}; ` +
          'resize or transpose the data to the model\'s layout',
      );
  }
}

/** Every given name is a model input and every model input is given. */
export function checkInputNames(model: DataModel, given: readonly string[], where: string): void {
  const names = model.inputs.map((i) => i.name);
  const unknown = given.filter((g) => !names.includes(g));
  if (unknown.length)
    throw inputError(
      `${where} names input ${quoteList(unknown)}, which the model does not have; its inputs are ${quoteList(names)}`,
    );
  const missing = names.filter((n) => !given.includes(n));
  if (missing.length)
    throw inputError(
      `${where} gives no values for model input ${quoteList(missing)}; the model's inputs are ${quoteList(names)}, ` +
        `pass input: { ${names.map((n) => `${JSON.stringify(n)}: ...`).join(', ')} }`,
    );
}
