/**
 * Layer-wise analysis ("Exploring Neural Networks Quantization via Layer-Wise Quantization
 * Analysis"): quantize one layer at a time, measure the damage with onnxruntime-node, set it beside
 * the layer's FIT prediction, flag the layers whose measured damage is far above what FIT predicts,
 * and try local fixes on them (one more bit; clipping the layer's range at a percentile).
 *
 * Damage is the mean KL divergence from the float model (a classifier head) or the output MSE
 * against it (anything else): continuous, label-free and sensitive to a single layer's noise, where
 * an accuracy drop on a few hundred samples is mostly ties. The accuracy drop is reported beside it
 * when labels are given. FIT and damage are in different units; their ratio is calibrated as the
 * median over layers, and a layer is flagged when its damage exceeds `flagRatio` times the damage
 * that median predicts for it.
 */
import { InvalidOptionError } from '../errors.js';
import type { FitConfig, SensitivityReport } from '../fisher/report.js';
import { createEvaluator, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
import { spearman } from './rank.js';

export type LayerTarget = 'weights' | 'activations' | 'both';

export interface LayerwiseOptions extends EvaluateOptions {
  /** the width each layer is quantized to in turn (default 4) */
  bits?: number;
  /** what is quantized in each layer (default 'weights') */
  target?: LayerTarget;
  /** flag a layer whose damage is above this many times its calibrated prediction (default 4) */
  flagRatio?: number;
  /** percentile of |w| (weights) or of the activation range kept by the clipping fix (default 0.999) */
  clipPercentile?: number;
  /** try the fixes on flagged layers (default true) */
  fix?: boolean;
}

export interface LayerFix {
  fix: string;
  config: FitConfig;
  /** FIT of the fix (null for clipping: FIT's noise model does not cover clipping error) */
  fit: number | null;
  damage: number;
  accuracyDrop: number | null;
}

export interface LayerAnalysis {
  name: string;
  op: string;
  config: FitConfig;
  /** FIT prediction of quantizing this layer alone */
  fit: number;
  /** measured damage (KL or output MSE) */
  damage: number;
  /** damage / (scale * fit): 1 = as predicted */
  ratio: number;
  accuracyDrop: number | null;
  flagged: boolean;
  fixes: LayerFix[];
}

export interface LayerwiseResult {
  model: string;
  samples: number;
  bits: number;
  target: LayerTarget;
  /** 'KL' or 'output MSE' */
  damageMetric: string;
  /** median damage / FIT over the layers: the calibration of FIT to this damage */
  scale: number;
  /** Spearman's rho between per-layer FIT and damage */
  spearman: number;
  layers: LayerAnalysis[];
}

function layerConfig(name: string, bits: number, target: LayerTarget, clip?: number): FitConfig {
  const c: FitConfig & { weightClip?: Record<string, number>; activationClip?: Record<string, number> } = {};
  if (target !== 'activations') c.weights = { [name]: bits };
  if (target !== 'weights') c.activations = { [name]: bits };
  if (clip !== undefined) {
    if (target !== 'activations') c.weightClip = { [name]: clip };
    if (target !== 'weights') c.activationClip = { [name]: clip };
  }
  return c;
}

const damageOf = (r: EvaluationResult): number => r.kl ?? r.outputMse;
const dropOf = (r: EvaluationResult): number | null => (r.accuracy !== null && r.floatAccuracy !== null ? r.floatAccuracy - r.accuracy : null);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function layerwise(model: string | Uint8Array, report: SensitivityReport, opts: LayerwiseOptions): Promise<LayerwiseResult> {
  const bits = opts.bits ?? 4;
  if (!Number.isInteger(bits) || bits < 2 || bits > 15) throw new InvalidOptionError(`Expected an integer bit width in [2, 15] for option bits but received ${String(opts.bits)}`);
  const target = opts.target ?? 'weights';
  if (!['weights', 'activations', 'both'].includes(target))
    throw new InvalidOptionError(`Expected 'weights', 'activations' or 'both' for option target but received ${String(opts.target)}`);
  const flagRatio = opts.flagRatio ?? 4;
  if (typeof flagRatio !== 'number' || !(flagRatio > 1)) throw new InvalidOptionError(`Expected a number > 1 for option flagRatio but received ${String(opts.flagRatio)}`);
  const clip = opts.clipPercentile ?? 0.999;
  if (typeof clip !== 'number' || !(clip > 0 && clip < 1)) throw new InvalidOptionError(`Expected a number in (0, 1) for option clipPercentile but received ${String(opts.clipPercentile)}`);

  const evaluator = await createEvaluator(model, opts);
  try {
    const configs = report.layers.map((l) => layerConfig(l.name, bits, target));
    const results = await evaluator.evaluateMany(configs);
    const fits = configs.map((c) => report.fit(c));
    const damages = results.map(damageOf);
    const ratios = fits.map((f, i) => (f > 0 ? damages[i]! / f : NaN)).filter((r) => Number.isFinite(r));
    const scale = median(ratios);
    const floor = 1e-3 * Math.max(0, ...damages);
    const layers: LayerAnalysis[] = report.layers.map((l, i) => {
      const ratio = scale > 0 && fits[i]! > 0 ? damages[i]! / (scale * fits[i]!) : damages[i]! > 0 ? Infinity : 1;
      return {
        name: l.name,
        op: l.op,
        config: configs[i]!,
        fit: fits[i]!,
        damage: damages[i]!,
        ratio,
        accuracyDrop: dropOf(results[i]!),
        flagged: ratio > flagRatio && damages[i]! > floor,
        fixes: [],
      };
    });
    const flagged = layers.filter((l) => l.flagged);
    if ((opts.fix ?? true) && flagged.length) {
      const fixes: { layer: LayerAnalysis; fix: string; config: FitConfig; fit: number | null }[] = [];
      for (const l of flagged) {
        const more = layerConfig(l.name, bits + 1, target);
        fixes.push({ layer: l, fix: `${bits + 1} bits`, config: more, fit: report.fit(more) });
        fixes.push({ layer: l, fix: `clip at ${(100 * clip).toPrecision(4)}%`, config: layerConfig(l.name, bits, target, clip), fit: null });
      }
      const res = await evaluator.evaluateMany(fixes.map((f) => f.config));
      fixes.forEach((f, i) => f.layer.fixes.push({ fix: f.fix, config: f.config, fit: f.fit, damage: damageOf(res[i]!), accuracyDrop: dropOf(res[i]!) }));
    }
    return {
      model: evaluator.model,
      samples: results[0]?.samples ?? 0,
      bits,
      target,
      damageMetric: results[0]?.kl !== null && results[0]?.kl !== undefined ? 'KL' : 'output MSE',
      scale,
      spearman: spearman(fits, damages),
      layers,
    };
  } finally {
    await evaluator.close();
  }
}
