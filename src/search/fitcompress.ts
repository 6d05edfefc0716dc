/**
 * planCompression(): FITCompress (Zandonati et al. 2023, "Towards Optimal Compression: Joint
 * Pruning and Quantization") on a sensitivity report.
 *
 * State: a position per layer in a bit schedule (default 32 -> 8 -> 6 -> 5 -> 4 -> 3 -> 2) and one
 * global pruning level (default 1 - logspace(0, -3, 40)). Pruning masks come from the global
 * Fisher-weighted importance F_jj w_j^2; each layer is quantized after masking (symmetric per
 * tensor over its surviving weights), so pruned weights stay exactly 0. A move steps one layer
 * down its schedule or the model to the next level and costs sqrt(measured FIT between the
 * compressed weights before and after it). A* (or greedy) runs until compression <= target.
 * The native engine fills per-layer cost tables once (compress-state.ts explains why that is
 * exact), so a search step costs O(layers).
 *
 * Re-estimation ('every-k'): plan to the target, commit the first k moves, re-estimate the Fisher
 * diagonal on the compressed weights (options.fisher, e.g. modelFisher()), recompute importances,
 * masks and tables from the original weights and the new diagonal, and plan again from the
 * committed state. The masks follow the refreshed importance, so a weight pruned earlier can come
 * back and a step's compression can move at a re-estimation; the final state is always re-checked
 * against the target.
 */
import { InvalidInputError, InvalidOptionError } from '../errors.js';
import type { SensitivityReport } from '../fisher/report.js';
import { CompressKernels, FLOAT_BITS, type CompressLayerData } from '../engine/compress.js';
import { checkCompressOptions, type CompressMove, type CompressOptions } from './compress-options.js';
import { CompressSpace } from './compress-state.js';
import { astarSearch, greedySearch, materialize, stateOf, type SearchNode } from './compress-search.js';
import { reportWeights } from './compress-weights.js';

export type { CompressMove, CompressOptions, CompressProgress, FisherCallback } from './compress-options.js';
export { DEFAULT_PRUNING_LEVELS, DEFAULT_SCHEDULE } from './compress-options.js';
export { modelFisher } from './compress-fisher.js';
export { reportWeights } from './compress-weights.js';

export interface CompressStep {
  move: CompressMove;
  /** sqrt(measured FIT of the move) */
  cost: number;
  /** compression after the move */
  compression: number;
  /**
   * measured FIT of the state after the move against the original weights (under the Fisher
   * diagonal in use at that step when re-estimating)
   */
  fit: number;
}

export interface CompressPlan {
  plan: CompressStep[];
  final: {
    /** layer -> bits for every quantized layer; layers left in float are omitted (a configuration) */
    weights: Record<string, number>;
    /** layer -> fraction of its weights pruned */
    sparsity: Record<string, number>;
    pruningLevel: number;
    compression: number;
    fit: number;
  };
  /** weight name -> 1 kept / 0 pruned, in the weight's layout */
  masks: Record<string, Uint8Array>;
  /** weight name -> the compressed weights (pruned, then quantized) */
  weights: Record<string, Float32Array>;
  /** weight name -> quantizer step Delta (1 for float layers) */
  scales: Record<string, number>;
  /** the algorithm that produced the plan */
  algorithm: 'astar' | 'greedy';
  /** A* hit maxExpansions and the path was completed greedily (onLimit 'greedy') */
  fallback: boolean;
  /** sum of the step costs (with re-estimation, each under the Fisher of its time) */
  totalCost: number;
  expansions: number;
  /** Fisher re-estimations done (reestimate 'every-k') */
  reestimations: number;
  /** planning time (cost tables + search + the final weights), without the Fisher passes */
  ms: number;
  tablesMs: number;
  searchMs: number;
  /** time in the fisher callback */
  fisherMs: number;
}

function weightsFor(report: SensitivityReport, options: CompressOptions): Record<string, Float32Array> {
  if (options.weights !== undefined) {
    if (typeof options.weights !== 'object' || options.weights === null)
      throw new InvalidOptionError(`Expected an object of weight name -> Float32Array for option weights but received ${String(options.weights)}`);
    return options.weights;
  }
  return reportWeights(options.model!, report, { inputShapes: options.inputShapes });
}

export async function planCompression(report: SensitivityReport, options: CompressOptions): Promise<CompressPlan> {
  const started = performance.now();
  const opts = checkCompressOptions(options);
  if (!report || !Array.isArray(report.layers) || report.layers.length === 0)
    throw new InvalidInputError('planCompression() needs a sensitivity report with at least one quantizable layer');
  const weights = weightsFor(report, options);
  const data = report.layers.map((l) => {
    const w = weights[l.weight.name];
    if (!(w instanceof Float32Array))
      throw new InvalidInputError(`Option weights has no Float32Array for weight '${l.weight.name}' (layer '${l.name}')`);
    if (l.weight.fisherDiagonal.length !== w.length)
      throw new InvalidInputError(
        l.weight.fisherDiagonal.length === 0
          ? `The report has no Fisher diagonal for layer '${l.name}' (reports rebuilt from JSON do not carry it); plan on the report sensitivity() returns`
          : `Weight '${l.weight.name}' has ${w.length} elements but its Fisher diagonal ${l.weight.fisherDiagonal.length}; pass the weights the report was computed on`,
      );
    return { name: l.weight.name, weights: w, fisher: l.weight.fisherDiagonal };
  });
  let kernels: CompressKernels | undefined;
  try {
    return await planOn(report, options, opts, data, started, (k) => (kernels = k));
  } finally {
    kernels?.dispose();
  }
}

async function planOn(
  report: SensitivityReport,
  options: CompressOptions,
  opts: ReturnType<typeof checkCompressOptions>,
  data: CompressLayerData[],
  started: number,
  own: (k: CompressKernels) => void,
): Promise<CompressPlan> {
  let current = data;
  let kernels!: CompressKernels;
  let space!: CompressSpace;
  let tablesMs = 0;
  const prepare = async () => {
    const t0 = performance.now();
    kernels?.dispose();
    kernels = new CompressKernels(current);
    own(kernels);
    space = new CompressSpace(await kernels.tables(opts.levels, opts.schedule, options.signal), opts.schedule, kernels.total);
    tablesMs += performance.now() - t0;
  };
  await prepare();
  const smallest = space.compression(space.last());
  if (opts.target < smallest)
    throw new InvalidOptionError(
      `Expected a target compression of at least ${smallest} (every layer at ${opts.schedule.at(-1)} bits and pruning level ${opts.levels.at(-1)}) ` +
        `for option target but received ${opts.target}; extend the schedule or the pruning levels to go lower`,
    );

  const ctl = { ...opts, signal: options.signal, onProgress: options.onProgress, started };
  const names = report.layers.map((l) => l.name);
  const plan: CompressStep[] = [];
  let from = space.start() as { steps: Uint8Array; level: number };
  let searchMs = 0;
  let fisherMs = 0;
  let expansions = 0;
  let fallback = false;
  let totalCost = 0;
  let reestimations = 0;
  for (;;) {
    const t0 = performance.now();
    const outcome = opts.algorithm === 'greedy' ? await greedySearch(space, ctl, from) : await astarSearch(space, ctl, kernels.importanceTotal, from);
    searchMs += performance.now() - t0;
    expansions += outcome.expansions;
    fallback ||= outcome.fallback;
    const path: SearchNode[] = [];
    for (let n: SearchNode | null = outcome.goal; n; n = n.parent) path.push(n);
    path.reverse();
    // 'every-k' commits the first k moves of the plan, then re-plans on a refreshed Fisher
    const take = opts.reestimateEvery > 0 ? Math.min(opts.reestimateEvery, path.length - 1) : path.length - 1;
    for (let i = 1; i <= take; i++) {
      const node = path[i]!;
      const prev = path[i - 1]!;
      const before = materialize(prev);
      const after = materialize(node);
      const move: CompressMove =
        node.layer < 0
          ? { kind: 'prune', fromLevel: opts.levels[prev.level]!, toLevel: opts.levels[node.level]! }
          : { kind: 'quantize', layer: names[node.layer]!, fromBits: opts.schedule[before[node.layer]!]!, toBits: opts.schedule[after[node.layer]!]! };
      plan.push({ move, cost: node.cost, compression: space.compression(stateOf(node)), fit: space.fit(stateOf(node)) });
      totalCost += node.cost;
    }
    from = { steps: materialize(path[take]!), level: path[take]!.level };
    if (take === path.length - 1) break;
    const t1 = performance.now();
    const applied = kernels.apply(opts.levels[from.level]!, Array.from(from.steps, (s) => opts.schedule[s]!));
    const diag = await options.fisher!(Object.fromEntries(current.map((d, i) => [d.name, applied.weights[i]!])));
    current = current.map((d) => {
      const f = diag?.[d.name];
      if (!(f instanceof Float64Array) || f.length !== d.weights.length)
        throw new InvalidInputError(`The fisher callback returned no Float64Array of ${d.weights.length} values for weight '${d.name}'`);
      return { ...d, fisher: f };
    });
    fisherMs += performance.now() - t1;
    reestimations++;
    await prepare();
    if (space.numOf(from.steps, from.level) / space.denom <= opts.target) break; // the refreshed masks may already meet it
  }

  const goal = { steps: from.steps, level: from.level, num: space.numOf(from.steps, from.level) };
  const bits = Array.from(goal.steps, (s) => opts.schedule[s]!);
  const level = opts.levels[goal.level]!;
  const applied = kernels.apply(level, bits);
  const final: CompressPlan['final'] = { weights: {}, sparsity: {}, pruningLevel: level, compression: space.compression(goal), fit: space.fit(goal) };
  const masks: Record<string, Uint8Array> = {};
  const out: Record<string, Float32Array> = {};
  const scales: Record<string, number> = {};
  report.layers.forEach((l, i) => {
    if (bits[i]! !== FLOAT_BITS) final.weights[l.name] = bits[i]!;
    final.sparsity[l.name] = 1 - applied.nnz[i]! / data[i]!.weights.length;
    masks[l.weight.name] = applied.masks[i]!;
    out[l.weight.name] = applied.weights[i]!;
    scales[l.weight.name] = applied.scales[i]!;
  });
  return {
    plan,
    final,
    masks,
    weights: out,
    scales,
    algorithm: opts.algorithm,
    fallback,
    totalCost,
    expansions,
    reestimations,
    ms: performance.now() - started - fisherMs,
    tablesMs,
    searchMs,
    fisherMs,
  };
}
