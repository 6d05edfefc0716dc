/**
 * Labels: class indices (int64, for categorical / bernoulli heads) or float targets (gaussian),
 * converted and checked once, up front.
 */
import { checkFinite, isIntegerDtype, multiIndex, toFloat32, type NumericArray, inputError } from './columns.js';

export type LabelsKind = 'class' | 'target';

export interface LabelTensor {
  dims: number[];
  data: BigInt64Array | Float32Array;
}

export interface LabelOptions {
  /** 'class' (integer class indices -> BigInt64Array) or 'target' (-> Float32Array); default from the dtype */
  labelsKind?: LabelsKind;
  /** when given, class labels must lie in [0, numClasses) */
  numClasses?: number;
}

/** The kind labels of this dtype default to: integer arrays hold classes, float arrays targets. */
export function defaultLabelsKind(dtype: string, opts: LabelOptions): LabelsKind {
  return opts.labelsKind ?? (isIntegerDtype(dtype) ? 'class' : 'target');
}

const at = (dims: readonly number[], flat: number): string => `index [${multiIndex(dims, flat).join(', ')}]`;

/**
 * Converts raw label values of full dims `dims` (axis 0 = samples). Class labels of dims [N, 1]
 * become [N]. Throws InvalidInputError for non-integer, negative or out-of-range class labels and
 * for NaN/Inf targets, naming `where` and the first offending index.
 */
export function prepareLabels(raw: NumericArray, dims: number[], dtype: string, where: string, opts: LabelOptions): LabelTensor & { kind: LabelsKind } {
  const kind = defaultLabelsKind(dtype, opts);
  if (kind === 'target') {
    const data = toFloat32(raw);
    checkFinite(data, raw, dims, 0, where);
    return { kind, dims: [...dims], data };
  }
  const n = raw.length;
  const out = new BigInt64Array(n);
  const k = opts.numClasses;
  const range = k !== undefined ? ` (expected 0..${k - 1} for ${k} classes)` : '';
  for (let i = 0; i < n; i++) {
    const v = raw[i]!;
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else {
      if (!Number.isInteger(v))
        throw inputError(
          `${where} holds ${v} at ${at(dims, i)}, which is not an integer class label; save class labels as integers ` +
            `(e.g. numpy.int64) or pass labelsKind: 'target' for regression targets`,
        );
      b = BigInt(v);
    }
    if (b < 0n || (k !== undefined && b >= BigInt(k)))
      throw inputError(`${where} holds class label ${b} at ${at(dims, i)}, which is out of range${range}; class labels are 0-based indices`);
    out[i] = b;
  }
  const outDims = dims.length === 2 && dims[1] === 1 ? [dims[0]!] : [...dims];
  return { kind, dims: outDims, data: out };
}
