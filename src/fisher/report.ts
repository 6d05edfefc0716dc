/** The sensitivity report: per-layer Fisher traces and ranges, FIT of a configuration, JSON v1. */
import { InvalidOptionError } from '../errors.js';

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
