/** The sensitivity report: per-layer Fisher traces and ranges, FIT of a configuration, JSON v1. */
import { InvalidInputError, InvalidOptionError } from '../errors.js';

export interface TraceStats {
  /** tensor name (initializer for weights, activation tensor for inputs) */
  name: string;
  /** elements (weights) or elements per sample (activations) */
  count: number;
  min: number;
  max: number;
  fisherTrace: number;
  /** standard error of fisherTrace (null when it cannot be estimated yet) */
  stdError: number | null;
}

export interface LayerSensitivity {
  name: string;
  op: string;
  weight: TraceStats & {
    /** the full Fisher diagonal, in the weight's layout */
    fisherDiagonal: Float64Array;
    /** trace per output channel */
    channelTraces: number[];
    dims: number[];
  };
  activation: TraceStats;
}

export interface FitConfig {
  weights?: Record<string, number>;
  activations?: Record<string, number>;
}

export interface SensitivityJson {
  version: 1;
  model: string;
  estimator: string;
  likelihood: string;
  samples: number;
  foldBatchNorm: boolean;
  layers: {
    name: string;
    op: string;
    weight: { name: string; count: number; min: number; max: number; fisherTrace: number; stdError: number | null };
    activation: { name: string; count: number; min: number; max: number; fisherTrace: number; stdError: number | null };
  }[];
}

/** Weight step: symmetric per-tensor, Delta = max|w| / (2^(b-1) - 1). */
export function weightStep(min: number, max: number, bits: number): number {
  return Math.max(Math.abs(min), Math.abs(max)) / (2 ** (bits - 1) - 1);
}

/** Activation step: asymmetric per-tensor, Delta = (max - min) / (2^b - 1). */
export function activationStep(min: number, max: number, bits: number): number {
  return (max - min) / (2 ** bits - 1);
}

function checkBits(what: string, layer: string, bits: unknown): number {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 16)
    throw new InvalidOptionError(`Expected an integer bit width in [2, 16] for ${what} of layer '${layer}' but received ${String(bits)}`);
  return bits;
}

export class SensitivityReport {
  constructor(
    readonly model: string,
    readonly estimator: string,
    readonly likelihood: string,
    readonly samples: number,
    readonly foldBatchNorm: boolean,
    readonly layers: LayerSensitivity[],
  ) {}

  /** Layers by descending weight Fisher trace (the most sensitive first). */
  rank(by: 'weight' | 'activation' = 'weight'): LayerSensitivity[] {
    return [...this.layers].sort((a, b) => b[by].fisherTrace - a[by].fisherTrace);
  }

  /**
   * FIT(config) = sum_l Tr F_w,l Delta_w,l(b)^2 / 12 + sum_l Tr F_a,l Delta_a,l(b)^2 / 12; layers
   * left out of the configuration stay in float and add nothing.
   */
  fit(config: FitConfig): number {
    const byName = new Map(this.layers.map((l) => [l.name, l]));
    let total = 0;
    for (const [kind, entries] of [['weights', config.weights ?? {}], ['activations', config.activations ?? {}]] as const) {
      for (const [name, bits] of Object.entries(entries)) {
        const layer = byName.get(name);
        if (!layer)
          throw new InvalidOptionError(`The configuration's ${kind} name layer '${name}', which the report does not have (layers: ${[...byName.keys()].slice(0, 8).join(', ')}${byName.size > 8 ? ', ...' : ''})`);
        const b = checkBits(kind === 'weights' ? 'the weight' : 'the activation', name, bits);
        if (kind === 'weights') total += (layer.weight.fisherTrace * weightStep(layer.weight.min, layer.weight.max, b) ** 2) / 12;
        else total += (layer.activation.fisherTrace * activationStep(layer.activation.min, layer.activation.max, b) ** 2) / 12;
      }
    }
    return total;
  }

  /**
   * A report rebuilt from its JSON (version 1, as toJSON() / `onnx-fit sensitivity --json` write
   * it; non-finite numbers may be the strings "Infinity", "-Infinity", "NaN"). It has the traces,
   * counts and ranges that fit() and the search need; the Fisher diagonal and channel traces are
   * not in the JSON, so they are empty. Throws InvalidInputError naming the first bad field.
   */
  static fromJSON(json: unknown, source = 'the sensitivity JSON'): SensitivityReport {
    const bad = (field: string, expected: string, got: unknown): never => {
      throw new InvalidInputError(
        `${source}: expected ${field} to be ${expected} but received ${got === undefined ? 'nothing' : JSON.stringify(got)}; pass the JSON written by onnx-fit sensitivity --json`,
      );
    };
    const obj = (v: unknown, field: string) =>
      typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(field, 'an object', v);
    const str = (v: unknown, field: string) => (typeof v === 'string' ? v : bad(field, 'a string', v));
    const num = (v: unknown, field: string): number => {
      if (typeof v === 'number') return v;
      if (v === 'Infinity' || v === '-Infinity' || v === 'NaN') return Number(v);
      return bad(field, 'a number', v);
    };
    const count = (v: unknown, field: string) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : bad(field, 'a non-negative integer', v));
    const top = obj(json, 'the top level');
    if (top.version !== 1) bad('"version"', '1', top.version);
    if (!Array.isArray(top.layers)) bad('"layers"', 'an array', top.layers);
    const stats = (v: unknown, field: string): TraceStats => {
      const o = obj(v, field);
      return {
        name: str(o.name, `${field}.name`),
        count: count(o.count, `${field}.count`),
        min: num(o.min, `${field}.min`),
        max: num(o.max, `${field}.max`),
        fisherTrace: num(o.fisherTrace, `${field}.fisherTrace`),
        stdError: o.stdError === null || o.stdError === undefined ? null : num(o.stdError, `${field}.stdError`),
      };
    };
    const seen = new Set<string>();
    const layers = (top.layers as unknown[]).map((l, i): LayerSensitivity => {
      const at = `layers[${i}]`;
      const o = obj(l, at);
      const name = str(o.name, `${at}.name`);
      if (seen.has(name)) bad(`${at}.name`, 'a layer name not listed before', name);
      seen.add(name);
      return {
        name,
        op: str(o.op, `${at}.op`),
        weight: { ...stats(o.weight, `${at}.weight`), fisherDiagonal: new Float64Array(0), channelTraces: [], dims: [] },
        activation: stats(o.activation, `${at}.activation`),
      };
    });
    const samples = top.samples === undefined ? 0 : count(top.samples, '"samples"');
    const fold = top.foldBatchNorm === undefined ? true : typeof top.foldBatchNorm === 'boolean' ? top.foldBatchNorm : bad('"foldBatchNorm"', 'a boolean', top.foldBatchNorm);
    const text = (k: string) => (top[k] === undefined ? '' : str(top[k], `"${k}"`));
    return new SensitivityReport(text('model'), text('estimator'), text('likelihood'), samples, fold, layers);
  }

  toJSON(): SensitivityJson {
    const stats = (s: TraceStats) => ({ name: s.name, count: s.count, min: s.min, max: s.max, fisherTrace: s.fisherTrace, stdError: s.stdError });
    return {
      version: 1,
      model: this.model,
      estimator: this.estimator,
      likelihood: this.likelihood,
      samples: this.samples,
      foldBatchNorm: this.foldBatchNorm,
      layers: this.layers.map((l) => ({ name: l.name, op: l.op, weight: stats(l.weight), activation: stats(l.activation) })),
    };
  }
}
