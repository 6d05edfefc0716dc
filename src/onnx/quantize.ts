/**
 * The quantizers export and evaluate apply (DESIGN.md "Numerical contract"), and the JS reference
 * of each, plus configuration checks.
 *
 * - Weights: symmetric, narrow range, per tensor (or per output channel):
 *     Delta = max|w| / (2^(b-1) - 1),  q = clamp(rint(w / Delta), -(2^(b-1) - 1), 2^(b-1) - 1),  w' = q * Delta
 * - Activations: asymmetric per tensor over the calibrated range widened to include 0 (so that 0 is
 *   exact; for the usual ranges with min <= 0 <= max this is the contract's range):
 *     Delta = (max - min) / (2^b - 1),  z = clamp(rint(-min / Delta), 0, 2^b - 1),
 *     q = clamp(rint(x / Delta) + z, 0, 2^b - 1),  x' = (q - z) * Delta
 * rint rounds half to even, like ONNX QuantizeLinear. Scales are float32 (as stored in the model),
 * and products are rounded to float32 like DequantizeLinear does, so the JS reference, the
 * fake-quant model and the QDQ model agree bit for bit on weights.
 */
import { InvalidOptionError } from '../errors.js';

export interface QuantConfig {
  weights?: Record<string, number>;
  activations?: Record<string, number>;
  /** per quantized layer: the quantile of |w| (per tensor or channel) that sets the weight range (e.g. 0.999; default 1 = max) */
  weightClip?: Record<string, number>;
  /** per quantized layer: the fraction of the calibrated activation range kept, [p min, p max] (default 1) */
  activationClip?: Record<string, number>;
}

/** Round half to even (ONNX QuantizeLinear / Round). */
export function rintEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface QuantizedWeight {
  /** integer grid values, in the weight's layout */
  q: Int32Array;
  /** one scale (per tensor) or one per channel along `axis` */
  scale: Float32Array;
  /** channel axis, or undefined for per-tensor */
  axis?: number;
  /** q * scale rounded to float32 (what DequantizeLinear computes) */
  values: Float32Array;
  qmax: number;
}

/** Symmetric quantization of a float weight to `bits` bits, per tensor or per channel along `axis`. */
export function quantizeWeight(data: ArrayLike<number>, dims: readonly number[], bits: number, axis?: number, clip = 1): QuantizedWeight {
  const qmax = 2 ** (bits - 1) - 1;
  const n = data.length;
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? n : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const chanOf = (i: number): number => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const amax = new Float64Array(channels);
  for (let i = 0; i < n; i++) {
    const c = chanOf(i);
    const a = Math.abs(data[i]!);
    if (a > amax[c]!) amax[c] = a;
  }
  if (clip < 1) {
    // the clip-quantile of |w| per channel instead of its max; larger weights saturate at +-qmax
    const abs: number[][] = Array.from({ length: channels }, () => []);
    for (let i = 0; i < n; i++) abs[chanOf(i)]!.push(Math.abs(data[i]!));
    abs.forEach((a, c) => {
      a.sort((x, y) => x - y);
      amax[c] = a[Math.max(0, Math.ceil(clip * a.length) - 1)]!;
    });
  }
  const scale = new Float32Array(channels);
  // an all-zero tensor or channel quantizes to 0 with any scale; 1 keeps DequantizeLinear well defined
  for (let c = 0; c < channels; c++) scale[c] = amax[c]! > 0 ? amax[c]! / qmax : 1;
  const q = new Int32Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = scale[chanOf(i)]!;
    const v = Math.min(qmax, Math.max(-qmax, rintEven(Math.fround(data[i]! / s))));
    q[i] = v;
    values[i] = v * s;
  }
  return { q, scale, axis, values, qmax };
}

export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
  /** 2^b - 1 */
  qmax: number;
  bits: number;
}

/** Asymmetric b-bit parameters from a calibrated range (widened to include 0). */
export function activationParams(min: number, max: number, bits: number): ActivationQuant {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max)
    throw new InvalidOptionError(`Expected a finite activation range with min <= max but received [${min}, ${max}]`);
  const qmax = 2 ** bits - 1;
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = hi > lo ? Math.fround((hi - lo) / qmax) : 1;
  const zeroPoint = Math.min(qmax, Math.max(0, rintEven(-lo / scale)));
  return { scale, zeroPoint, qmax, bits };
}

/** The JS reference of b-bit activation fake quantization (what the exported Q/DQ nodes compute). */
export function fakeQuantActivation(x: ArrayLike<number>, p: ActivationQuant): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(p.qmax, Math.max(0, rintEven(Math.fround(x[i]! / p.scale)) + p.zeroPoint));
    out[i] = (q - p.zeroPoint) * p.scale;
  }
  return out;
}

function checkBits(kind: 'weight' | 'activation', layer: string, bits: unknown): number {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 16)
    throw new InvalidOptionError(`Expected an integer bit width in [2, 16] for the ${kind} of layer '${layer}' but received ${JSON.stringify(bits)}`);
  return bits;
}

function checkClip(kind: string, layer: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1))
    throw new InvalidOptionError(`Expected a number in (0, 1] for ${kind} of layer '${layer}' but received ${JSON.stringify(v)}`);
  return v;
}

export interface CheckedConfig {
  weights: Map<string, number>;
  activations: Map<string, number>;
  weightClip: Map<string, number>;
  activationClip: Map<string, number>;
}

const KINDS = ['weights', 'activations', 'weightClip', 'activationClip'] as const;

/**
 * Validates a configuration against the model's quantizable layers: unknown top-level keys, bad
 * bit widths or clips, and every unknown layer name (all named in one InvalidOptionError). Accepts
 * the `{ config: {...}, ... }` wrapper `onnx-fit search` writes.
 */
export function checkConfig(
  config: unknown,
  layers: readonly string[],
  modelName: string,
  notQuantizable: ReadonlyMap<string, string> = new Map(),
): CheckedConfig {
  let c = config as Record<string, unknown>;
  if (c === null || typeof c !== 'object' || Array.isArray(c))
    throw new InvalidOptionError(`Expected a configuration { weights: {layer: bits}, activations: {layer: bits} } but received ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`);
  if (!('weights' in c) && !('activations' in c) && c.config && typeof c.config === 'object') c = c.config as Record<string, unknown>;
  const extra = Object.keys(c).filter((k) => !(KINDS as readonly string[]).includes(k));
  if (extra.length)
    throw new InvalidOptionError(`Expected only 'weights' and 'activations' (and optionally 'weightClip', 'activationClip') in the configuration but received ${extra.map((k) => `'${k}'`).join(', ')}`);
  const known = new Set(layers);
  const unknown: string[] = [];
  const out: CheckedConfig = { weights: new Map(), activations: new Map(), weightClip: new Map(), activationClip: new Map() };
  for (const kind of KINDS) {
    const entries = c[kind];
    if (entries === undefined) continue;
    if (entries === null || typeof entries !== 'object' || Array.isArray(entries))
      throw new InvalidOptionError(`Expected an object of layer name -> ${kind.endsWith('Clip') ? 'fraction' : 'bits'} for option ${kind} but received ${JSON.stringify(entries)}`);
    for (const [name, v] of Object.entries(entries as Record<string, unknown>)) {
      if (!known.has(name)) {
        if (!unknown.includes(name)) unknown.push(name);
        continue;
      }
      const value =
        kind === 'weights' ? checkBits('weight', name, v)
        : kind === 'activations' ? checkBits('activation', name, v)
        : checkClip(kind, name, v);
      out[kind].set(name, value);
    }
  }
  if (unknown.length) {
    const why = unknown.map((u) => (notQuantizable.has(u) ? `'${u}' (${notQuantizable.get(u)})` : `'${u}'`));
    const shown = layers.slice(0, 12).map((l) => `'${l}'`).join(', ');
    throw new InvalidOptionError(
      `The configuration names ${unknown.length} layer(s) that ${modelName} has no quantizable layer for: ${why.join(', ')}. ` +
        `Expected ONNX node names of Conv/ConvTranspose/Gemm/MatMul layers with constant weights (${layers.length}: ${shown}${layers.length > 12 ? ', ...' : ''}).`,
    );
  }
  return out;
}
