/**
 * searchMixedPrecision(): the per-layer bit widths with the least FIT under a budget, found exactly.
 *
 * FIT is separable over layers (DESIGN.md: sum_l Tr F_w,l Delta_w,l(b)^2/12 + Tr F_a,l Delta_a,l(b)^2/12),
 * and every budget is a sum over layers too (weight bits n_l b_l for averageBits and bytes,
 * MACs_l b_w b_a for bops), so the search is a multiple-choice knapsack: one (weight bits,
 * activation bits) choice per layer. knapsack.ts solves it exactly (LP bound, reduced-cost fixing,
 * then a bounded Pareto-state DP) and walks the convex hull for the frontier.
 */
import { InvalidInputError, InvalidOptionError } from '../errors.js';
import { activationStep, weightStep, type LayerSensitivity } from '../fisher/report.js';
import { convexFrontierWalk, solveKnapsack, type Choice } from './knapsack.js';
import { checkOptions, type BudgetKind, type SearchOptions } from './options.js';

export type { Budget, BudgetKind, SearchOptions } from './options.js';

/** A configuration as DESIGN.md defines it (every layer listed). */
export interface MixedPrecisionConfig {
  weights: Record<string, number>;
  activations: Record<string, number>;
}

export interface SearchLayer {
  name: string;
  op: string;
  weightCount: number;
  weightTrace: number;
  activationTrace: number;
  /** per-sample MACs (null without options.macs) */
  macs: number | null;
  weightBits: number;
  activationBits: number;
  /** this layer's FIT terms: weight noise, activation noise, and their sum */
  weightFit: number;
  activationFit: number;
  fit: number;
}

/** A point of the frontier; weightBits/activationBits follow the order of SearchResult.layers. */
export interface FrontierPoint {
  fit: number;
  bytes: number;
  averageBits: number;
  bops: number | null;
  weightBits: number[];
  activationBits: number[];
}

export interface SearchResult {
  config: MixedPrecisionConfig;
  /** predicted FIT of config (report.fit(config)) */
  fit: number;
  /** weight bytes, sum_l n_l b_l / 8 */
  bytes: number;
  /** weight bits averaged over weights, sum_l n_l b_l / sum_l n_l */
  averageBits: number;
  /** sum_l MACs_l b_w,l b_a,l (null without options.macs) */
  bops: number | null;
  budget: { kind: BudgetKind; value: number; minimum: number };
  /** per layer, in report order */
  layers: SearchLayer[];
  /**
   * Configurations non-dominated in (budget cost, FIT), cheapest first: every point of the lower
   * convex hull of the Pareto set (each one the exact optimum for a budget equal to its own cost)
   * plus the chosen configuration.
   */
  frontier: FrontierPoint[];
  /** solver statistics */
  stats: { layers: number; choices: number; branchingLayers: number; states: number; ms: number };
}

/** Anything with the report's layers (a SensitivityReport, or one rebuilt from its JSON). */
export interface ReportLike {
  layers: readonly Pick<LayerSensitivity, 'name' | 'op' | 'weight' | 'activation'>[];
}

interface Pair {
  w: number;
  a: number;
}

/** The {config} of a frontier point (layer names from result.layers). */
export function frontierConfig(result: Pick<SearchResult, 'layers'>, point: Pick<FrontierPoint, 'weightBits' | 'activationBits'>): MixedPrecisionConfig {
  const weights: Record<string, number> = {};
  const activations: Record<string, number> = {};
  result.layers.forEach((l, i) => {
    weights[l.name] = point.weightBits[i]!;
    activations[l.name] = point.activationBits[i]!;
  });
  return { weights, activations };
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function checkReport(report: unknown): ReportLike['layers'] {
  const layers = (report as ReportLike | undefined)?.layers;
  if (!Array.isArray(layers)) throw new InvalidOptionError(`Expected a SensitivityReport (an object with layers) for argument report but received ${typeof report}`);
  if (layers.length === 0) throw new InvalidInputError('The sensitivity report has no quantizable layers; there is nothing to search');
  for (const l of layers as ReportLike['layers']) {
    const w = l?.weight;
    const a = l?.activation;
    if (!w || !a || ![w.count, w.min, w.max, w.fisherTrace, a.min, a.max, a.fisherTrace].every(finite) || w.count < 0 || w.fisherTrace < 0 || a.fisherTrace < 0)
      throw new InvalidInputError(
        `Layer '${l?.name}' of the sensitivity report has a missing, negative or non-finite weight count, range or Fisher trace; rerun onnx-fit sensitivity`,
      );
  }
  return layers as ReportLike['layers'];
}

const BUDGET_UNIT: Record<BudgetKind, string> = { averageBits: 'bits per weight', bytes: 'bytes', bops: 'bit-operations' };

export function searchMixedPrecisionSync(report: ReportLike, options: SearchOptions): SearchResult {
  const t0 = performance.now();
  const o = checkOptions(options);
  const layers = checkReport(report);
  let macs: number[] | null = null;
  if (o.macs) {
    const missing = layers.filter((l) => !(l.name in o.macs!)).map((l) => `'${l.name}'`);
    if (missing.length)
      throw new InvalidOptionError(
        `Option macs has no entry for layer${missing.length > 1 ? 's' : ''} ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}; compute it from the same model as the report (layerMacs)`,
      );
    macs = layers.map((l) => o.macs![l.name]!);
  }
  const pairs: Pair[] = [];
  for (const w of o.weightBits) for (const a of o.activationBits) pairs.push({ w, a });
  const wFit = layers.map((l) => new Map(o.weightBits.map((b) => [b, (l.weight.fisherTrace * weightStep(l.weight.min, l.weight.max, b) ** 2) / 12])));
  const aFit = layers.map((l) => new Map(o.activationBits.map((b) => [b, (l.activation.fisherTrace * activationStep(l.activation.min, l.activation.max, b) ** 2) / 12])));
  const counts = layers.map((l) => l.weight.count);
  const totalWeights = counts.reduce((a, b) => a + b, 0);
  if (o.kind === 'averageBits' && totalWeights === 0) throw new InvalidInputError('The report\'s layers have no weights, so an averageBits budget means nothing');

  // costs: weight bits for averageBits and bytes (integers), bit-operations for bops
  const cost = (i: number, p: Pair) => (o.kind === 'bops' ? macs![i]! * p.w * p.a : counts[i]! * p.w);
  const choices: Choice[][] = layers.map((_, i) => pairs.map((p) => ({ cost: cost(i, p), value: wFit[i]!.get(p.w)! + aFit[i]!.get(p.a)! })));
  const toCost = o.kind === 'averageBits' ? o.value * totalWeights : o.kind === 'bytes' ? o.value * 8 : o.value;
  const fromCost = (c: number) => (o.kind === 'averageBits' ? c / totalWeights : o.kind === 'bytes' ? c / 8 : c);
  // a budget given as a decimal (4.1 average bits) is compared with a little float slack
  const capacity = toCost * (1 + 1e-12);

  const minCost = choices.reduce((s, c) => s + Math.min(...c.map((x) => x.cost)), 0);
  const minimum = fromCost(minCost);
  const solution = solveKnapsack(choices, capacity);
  if (!solution) {
    const at = o.kind === 'bops' ? `${o.weightBits[0]}-bit weights and ${o.activationBits[0]}-bit activations` : `${o.weightBits[0]}-bit weights`;
    throw new InvalidOptionError(
      `Budget ${o.kind} = ${o.value} is below the minimum achievable ${minimum} ${BUDGET_UNIT[o.kind]} (every layer at ${at}); raise the budget or allow smaller bit widths`,
    );
  }

  const point = (picks: number[]): FrontierPoint => {
    let fit = 0;
    let bits = 0;
    let bops = 0;
    picks.forEach((j, i) => {
      const p = pairs[j]!;
      fit += choices[i]![j]!.value;
      bits += counts[i]! * p.w;
      if (macs) bops += macs[i]! * p.w * p.a;
    });
    return {
      fit,
      bytes: bits / 8,
      averageBits: totalWeights > 0 ? bits / totalWeights : 0,
      bops: macs ? bops : null,
      weightBits: picks.map((j) => pairs[j]!.w),
      activationBits: picks.map((j) => pairs[j]!.a),
    };
  };
  const chosen = point(solution.picks);
  const resultLayers: SearchLayer[] = layers.map((l, i) => {
    const p = pairs[solution.picks[i]!]!;
    const wf = wFit[i]!.get(p.w)!;
    const af = aFit[i]!.get(p.a)!;
    return {
      name: l.name,
      op: l.op,
      weightCount: counts[i]!,
      weightTrace: l.weight.fisherTrace,
      activationTrace: l.activation.fisherTrace,
      macs: macs ? macs[i]! : null,
      weightBits: p.w,
      activationBits: p.a,
      weightFit: wf,
      activationFit: af,
      fit: wf + af,
    };
  });

  // frontier: hull points and the chosen one, non-dominated in (cost, fit), cheapest first;
  // the walk moves one layer per step, so each point is updated from the previous one
  const walk = convexFrontierWalk(choices);
  const candidates: { cost: number; point: FrontierPoint }[] = [{ cost: walk.start.cost, point: point(walk.start.picks) }];
  let prev = candidates[0]!.point;
  let picks = walk.start.picks.slice();
  for (const s of walk.steps) {
    const before = pairs[picks[s.group]!]!;
    const after = pairs[s.pick]!;
    picks[s.group] = s.pick;
    const n = counts[s.group]!;
    const bits = prev.bytes * 8 + n * (after.w - before.w);
    const weightBits = prev.weightBits.slice();
    const activationBits = prev.activationBits.slice();
    weightBits[s.group] = after.w;
    activationBits[s.group] = after.a;
    prev = {
      fit: s.value,
      bytes: bits / 8,
      averageBits: totalWeights > 0 ? bits / totalWeights : 0,
      bops: macs ? prev.bops! + macs[s.group]! * (after.w * after.a - before.w * before.a) : null,
      weightBits,
      activationBits,
    };
    candidates.push({ cost: s.cost, point: prev });
  }
  const costOf = (p: number[]) => p.reduce((acc, j, i) => acc + choices[i]![j]!.cost, 0);
  candidates.push({ cost: costOf(solution.picks), point: chosen });
  candidates.sort((a, b) => a.cost - b.cost || a.point.fit - b.point.fit);
  const frontier: FrontierPoint[] = [];
  let bestFit = Infinity;
  for (const c of candidates) {
    if (c.point.fit < bestFit * (1 - 1e-12) || (frontier.length === 0 && c.point.fit <= bestFit)) {
      frontier.push(c.point);
      bestFit = c.point.fit;
    }
  }

  return {
    config: frontierConfig({ layers: resultLayers }, chosen),
    fit: chosen.fit,
    bytes: chosen.bytes,
    averageBits: chosen.averageBits,
    bops: chosen.bops,
    budget: { kind: o.kind, value: o.value, minimum },
    layers: resultLayers,
    frontier,
    stats: {
      layers: layers.length,
      choices: pairs.length,
      branchingLayers: solution.branching,
      states: solution.states,
      ms: performance.now() - t0,
    },
  };
}

/**
 * The configuration with the least FIT under the budget, exactly (see knapsack.ts), with its
 * predicted FIT, size, BOPs and the frontier. Throws InvalidOptionError for bad options, an
 * infeasible budget, or a bops budget without options.macs.
 */
export async function searchMixedPrecision(report: ReportLike, options: SearchOptions): Promise<SearchResult> {
  return searchMixedPrecisionSync(report, options);
}
