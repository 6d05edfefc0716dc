/**
 * Activation calibration: run the float model with onnxruntime-node over the data, the activation
 * tensors added as extra graph outputs, and keep each tensor's min and max.
 */
import { AbortError, InvalidInputError, InvalidOptionError } from '../errors.js';
import { openData, type DataSpec } from '../data/source.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';
import type { PreparedLayer, PreparedModel, QuantizeOptions } from '../onnx/write.js';
import { createSession, effectiveBatch, feeds, modelInputs, outputData } from './ort-io.js';

export type Range = { min: number; max: number };

export interface CalibrateOptions {
  batchSize?: number;
  maxSamples?: number;
  signal?: AbortSignal;
}

/** Min and max of each of `tensors` when the float model `bytes` runs over `data`. */
export async function calibrateRanges(bytes: Uint8Array, tensors: string[], data: DataSpec, opts: CalibrateOptions = {}): Promise<Map<string, Range>> {
  const proto = decodeModel(bytes);
  const g = proto.graph!;
  const inputs = modelInputs(proto);
  const inputNames = new Set(inputs.map((i) => i.name));
  const outputs = new Set(g.output.map((o) => o.name));
  const wanted = [...new Set(tensors)];
  for (const t of wanted) {
    if (!inputNames.has(t) && !outputs.has(t)) g.output.push({ name: t, type: { tensorType: { elemType: 1 } } } as never);
  }
  const session = await createSession(encodeModel(proto), 'the calibration model');
  const ranges = new Map<string, Range>(wanted.map((t) => [t, { min: Infinity, max: -Infinity }]));
  const update = (t: string, d: ArrayLike<number>) => {
    const r = ranges.get(t)!;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      if (v < r.min) r.min = v;
      if (v > r.max) r.max = v;
    }
  };
  const src = openData(data, { inputs }, { batchSize: effectiveBatch(inputs, opts.batchSize ?? 32), maxSamples: opts.maxSamples });
  const fetch = wanted.filter((t) => !inputNames.has(t));
  try {
    for await (const b of src.batches()) {
      if (opts.signal?.aborted) throw new AbortError('Calibration was aborted');
      for (const t of wanted) if (inputNames.has(t)) update(t, b.inputs[t]!.data);
      if (fetch.length) {
        const res = await session.run(feeds(b.inputs, inputs), fetch);
        for (const t of fetch) update(t, outputData(res[t]!));
      }
    }
  } finally {
    await session.release();
  }
  for (const [t, r] of ranges)
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max))
      throw new InvalidInputError(`Calibration found no finite values for activation tensor '${t}'; check the calibration data`);
  return ranges;
}

/** Resolves the activation range of each layer in `needed` from the calibration option. */
export async function resolveRanges(p: PreparedModel, needed: PreparedLayer[], opts: QuantizeOptions & CalibrateOptions): Promise<Map<string, Range>> {
  const out = new Map<string, Range>();
  if (!needed.length) return out;
  const cal = opts.calibration as Record<string, unknown> | undefined;
  if (cal === undefined || cal === null)
    throw new InvalidOptionError(
      `Expected calibration data or ranges for option calibration (the configuration quantizes the activations of ${needed.map((l) => `'${l.name}'`).join(', ')}) but received ${String(cal)}`,
    );
  const isRange = (v: unknown) => typeof v === 'object' && v !== null && typeof (v as Range).min === 'number' && typeof (v as Range).max === 'number';
  let given: Record<string, Range> | undefined;
  if (Array.isArray(cal.layers)) {
    given = {};
    for (const l of cal.layers as { name: string; activation: Range }[]) given[l.name] = { min: l.activation.min, max: l.activation.max };
  } else if (!(Symbol.asyncIterator in cal) && !(Symbol.iterator in cal) && Object.values(cal).every(isRange)) {
    given = cal as Record<string, Range>;
  }
  if (given) {
    const missing: string[] = [];
    for (const l of needed) {
      const r = given[l.activation] ?? given[l.name];
      if (!r) missing.push(`'${l.name}' (tensor '${l.activation}')`);
      else out.set(l.name, { min: r.min, max: r.max });
    }
    if (missing.length)
      throw new InvalidOptionError(`Expected activation ranges for ${missing.join(', ')} in option calibration but received none for them`);
    return out;
  }
  const ranges = await calibrateRanges(p.bytes, needed.map((l) => l.activation), cal as unknown as DataSpec, opts);
  for (const l of needed) out.set(l.name, ranges.get(l.activation)!);
  return out;
}
