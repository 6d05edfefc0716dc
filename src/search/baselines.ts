/**
 * The baselines compress() measures beside a FITCompress plan, each at a compression <= the target
 * (compression = active bytes / fp32 bytes = sum_l nnz_l b_l / (32 sum_l n_l), as the planner counts):
 *
 * - 'uniform+magnitude': every layer at one bit width b, plus global magnitude pruning (the smallest
 *   |w| over all layers, ties by layer then element) at level p. b runs over the planner's schedule
 *   (quantized widths, 32 excluded) and p over its pruning levels (the same grids FITCompress
 *   searches); the pair with the largest compression <= target wins, ties to the wider b.
 * - 'fit-mixed-precision': searchMixedPrecision with a bytes budget of target * fp32 bytes and the
 *   schedule's quantized widths, no pruning; unreachable when the target is below (smallest width) / 32.
 * - 'magnitude-pruning': float32 weights, global magnitude pruning of k = N - floor(target * N)
 *   weights (sparsity ~ 1 - target, since pruning alone at 32 bits compresses by the kept fraction).
 * Masks come from the engine's FITCompress kernels with a unit Fisher diagonal (importance w^2),
 * so ranks, ties and quantize-after-masking are exactly the planner's.
 */
import { CompressKernels, FLOAT_BITS, compressionRatio } from '../engine/compress.js';
import type { SensitivityReport } from '../fisher/report.js';
import { searchMixedPrecision } from './mixed-precision.js';

export type BaselineName = 'uniform+magnitude' | 'fit-mixed-precision' | 'magnitude-pruning';

export interface Baseline {
  name: BaselineName;
  /** readable description of the point, e.g. '4-bit, 29.8% pruned' */
  label: string;
  /** false when the baseline cannot reach the target; `reason` says why */
  reachable: boolean;
  reason?: string;
  compression: number | null;
  /** layer -> bits (layers left in float omitted): a configuration for evaluate/exportModel */
  weights: Record<string, number>;
  /** fraction of all weights pruned */
  sparsity: number;
  /** layer -> fraction of its weights pruned */
  layerSparsity: Record<string, number>;
  /** weight name -> keep mask (absent for the mixed-precision baseline) */
  masks?: Record<string, Uint8Array>;
}

export interface BaselineOptions {
  target: number;
  /** the weights the report was computed on, by weight name */
  weights: Record<string, Float32Array>;
  schedule: readonly number[];
  pruningLevels: readonly number[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Global magnitude masks (unit Fisher: importance w^2), computed once per weight set. */
export class MagnitudePruner {
  private readonly kernels: CompressKernels;
  readonly total: number;
  constructor(
    private readonly report: SensitivityReport,
    weights: Record<string, Float32Array>,
  ) {
    this.kernels = new CompressKernels(
      report.layers.map((l) => {
        const w = weights[l.weight.name]!;
        return { name: l.weight.name, weights: w, fisher: new Float64Array(w.length).fill(1) };
      }),
    );
    this.total = this.kernels.total;
  }

  /** Prunes `level`, quantizes every layer to `bits` (32 = float): the baseline point. */
  point(name: BaselineName, label: string, level: number, bits: number): Baseline {
    const all = this.report.layers.map(() => bits);
    const applied = this.kernels.apply(level, all);
    const nnz = Array.from(applied.nnz);
    const counts = this.kernels.counts;
    const masks: Record<string, Uint8Array> = {};
    const layerSparsity: Record<string, number> = {};
    const weights: Record<string, number> = {};
    this.report.layers.forEach((l, i) => {
      masks[l.weight.name] = applied.masks[i]!;
      layerSparsity[l.name] = counts[i]! ? 1 - nnz[i]! / counts[i]! : 0;
      if (bits !== FLOAT_BITS) weights[l.name] = bits;
    });
    const kept = nnz.reduce((a, b) => a + b, 0);
    return { name, label, reachable: true, compression: compressionRatio(nnz, all, counts), weights, sparsity: 1 - kept / this.total, layerSparsity, masks };
  }

  pruneCount(level: number): number {
    return this.kernels.pruneCount(level);
  }

  dispose(): void {
    this.kernels.dispose();
  }
}

const unreachable = (name: BaselineName, reason: string): Baseline => ({
  name, label: 'unreachable', reachable: false, reason, compression: null, weights: {}, sparsity: 0, layerSparsity: {},
});

/** Uniform b bits + global magnitude pruning on the planner's grids (see the module comment). */
export function uniformMagnitude(pruner: MagnitudePruner, o: BaselineOptions): Baseline {
  const levels = o.pruningLevels.includes(0) ? [...o.pruningLevels] : [0, ...o.pruningLevels];
  const widths = o.schedule.filter((b) => b !== FLOAT_BITS);
  let best: { bits: number; level: number; c: number } | undefined;
  const N = pruner.total;
  for (const bits of widths)
    for (const level of levels) {
      const c = ((N - pruner.pruneCount(level)) * bits) / (32 * N);
      if (c > o.target) continue;
      if (!best || c > best.c || (c === best.c && bits > best.bits)) best = { bits, level, c };
    }
  if (!best)
    return unreachable(
      'uniform+magnitude',
      `no bit width of the schedule (${widths.join(', ')}) with a pruning level up to ${levels.at(-1)} reaches compression ${o.target}`,
    );
  const p = pruner.point('uniform+magnitude', '', best.level, best.bits);
  p.label = `${best.bits}-bit, ${pct(p.sparsity)} pruned`;
  return p;
}

/** Float32 weights, global magnitude pruning to compression <= target. */
export function magnitudePruning(pruner: MagnitudePruner, o: BaselineOptions): Baseline {
  const N = pruner.total;
  let keep = Math.floor(o.target * N);
  while (keep > 0 && keep / N > o.target) keep--;
  if (keep < 1 || N - keep >= N) return unreachable('magnitude-pruning', `pruning alone cannot keep a fraction ${o.target} of ${N} weights`);
  const k = N - keep;
  const level = Math.min((k + 0.5) / N, 1 - 1e-12);
  if (pruner.pruneCount(level) !== k) throw new Error(`internal: pruning level ${level} prunes ${pruner.pruneCount(level)} weights, not ${k}`);
  const p = pruner.point('magnitude-pruning', '', level, FLOAT_BITS);
  p.label = `float32, ${pct(p.sparsity)} pruned`;
  return p;
}

/** FIT mixed precision under a bytes budget of target * fp32 bytes, no pruning. */
export async function mixedPrecision(report: SensitivityReport, o: BaselineOptions): Promise<Baseline> {
  const N = report.layers.reduce((a, l) => a + l.weight.count, 0);
  const widths = o.schedule.filter((b) => b !== FLOAT_BITS);
  const least = Math.min(...widths);
  if (o.target * 32 < least)
    return unreachable('fit-mixed-precision', `mixed precision alone reaches at best ${least}/32 = ${least / 32} (every layer at ${least} bits)`);
  const r = await searchMixedPrecision(report, { budget: { bytes: o.target * 4 * N }, weightBits: widths });
  const weights = { ...r.config.weights };
  const layerSparsity = Object.fromEntries(report.layers.map((l) => [l.name, 0]));
  const bits = report.layers.map((l) => weights[l.name]!);
  const avg = report.layers.reduce((a, l, i) => a + l.weight.count * bits[i]!, 0) / N;
  return {
    name: 'fit-mixed-precision',
    label: `${avg.toFixed(2)} average bits`,
    reachable: true,
    compression: (r.bytes * 8) / (32 * N),
    weights,
    sparsity: 0,
    layerSparsity,
  };
}

/** The three baselines at one target. */
export async function baselines(pruner: MagnitudePruner, report: SensitivityReport, o: BaselineOptions): Promise<Baseline[]> {
  return [uniformMagnitude(pruner, o), await mixedPrecision(report, o), magnitudePruning(pruner, o)];
}
