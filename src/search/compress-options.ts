/** Options of planCompression() (FITCompress) and their validation. */
import { InvalidOptionError } from '../errors.js';
import { shown } from './options.js';

/** Default quantization schedule: every layer starts in float and steps down these bit widths. */
export const DEFAULT_SCHEDULE: readonly number[] = [32, 8, 6, 5, 4, 3, 2];

/** Default pruning schedule: 1 - logspace(0, -3, 40), 40 levels from 0 to 0.999, dense near 1. */
export const DEFAULT_PRUNING_LEVELS: readonly number[] = Array.from({ length: 40 }, (_, i) => 1 - 10 ** ((-3 * i) / 39));

export const DEFAULT_MAX_EXPANSIONS = 20000;
export const DEFAULT_REESTIMATE_EVERY = 10;

export type CompressMove =
  | { kind: 'quantize'; layer: string; fromBits: number; toBits: number }
  | { kind: 'prune'; fromLevel: number; toLevel: number };

export interface CompressProgress {
  /** states expanded so far */
  expansions: number;
  /** states waiting in the open list (A*) */
  open: number;
  /** lowest compression reached so far */
  bestCompression: number;
  ms: number;
}

/** Fisher diagonals re-estimated on a compressed weight set, by weight name. */
export type FisherCallback = (weights: Record<string, Float32Array>) => Promise<Record<string, Float64Array>>;

export interface CompressOptions {
  /** compression to reach: active bytes / fp32 bytes over quantizable weights, in (0, 1] */
  target: number;
  /**
   * The weights the report was computed on, by weight (initializer) name. Either this or `model`.
   * After BatchNorm folding when the report folded it.
   */
  weights?: Record<string, Float32Array>;
  /** the ONNX model the report was computed on (its weights are read, folded like the report) */
  model?: string | Uint8Array;
  /** concrete input shapes, when `model` has dynamic dims other than the batch */
  inputShapes?: Record<string, number[]>;
  /** bit widths each layer steps down, strictly decreasing; 32 = float (default [32, 8, 6, 5, 4, 3, 2]) */
  schedule?: number[];
  /** global pruning levels, strictly increasing in [0, 1) (default 1 - logspace(0, -3, 40)) */
  pruningLevels?: number[];
  /** 'astar' (default) or 'greedy' (always the cheapest next move) */
  algorithm?: 'astar' | 'greedy';
  /**
   * Multiplies the heuristic (default 1, the paper's). 0 makes A* a uniform-cost search: optimal
   * (the cheapest path to the target) but it may expand very many states.
   */
  heuristicWeight?: number;
  /**
   * A* stops expanding after this many states (default 20000), or once it has generated 2M states
   * (memory: each expansion generates up to one state per layer + 1)
   */
  maxExpansions?: number;
  /**
   * What A* does when maxExpansions runs out: 'greedy' (default) completes greedily from the start
   * and from the most promising open state and keeps the cheaper path; 'error' throws.
   */
  onLimit?: 'greedy' | 'error';
  /**
   * Fisher re-estimation along the path: 'never' (default) plans on the report's diagonal;
   * 'every-k' plans to the target, commits the first reestimateEvery moves, re-estimates the Fisher
   * diagonal on the compressed weights (option fisher), recomputes importances, masks and costs,
   * and plans again from there. 'each-expansion' re-estimates after every move the path takes
   * (every-k with k = 1: each committed expansion is priced on a Fisher measured at its start state;
   * re-estimating inside A* for every explored state would change every queued cost at once).
   */
  reestimate?: 'never' | 'every-k' | 'each-expansion';
  /** moves between re-estimations for 'every-k' (default 10) */
  reestimateEvery?: number;
  /** Fisher diagonals of a compressed weight set, by weight name (modelFisher() builds one) */
  fisher?: FisherCallback;
  onProgress?: (p: CompressProgress) => void;
  signal?: AbortSignal;
}

export interface CheckedCompressOptions {
  target: number;
  schedule: number[];
  levels: number[];
  algorithm: 'astar' | 'greedy';
  heuristicWeight: number;
  maxExpansions: number;
  onLimit: 'greedy' | 'error';
  /** moves between Fisher re-estimations (0: never) */
  reestimateEvery: number;
}

/** The planner's own options (compress() and compressCurve() pass them through). */
export const PLANNER_KEYS = [
  'schedule', 'pruningLevels', 'algorithm', 'heuristicWeight', 'maxExpansions', 'onLimit', 'reestimate', 'reestimateEvery',
] as const;
export type PlannerOptions = Pick<CompressOptions, (typeof PLANNER_KEYS)[number]>;

const KEYS: readonly string[] = ['target', 'weights', 'model', 'inputShapes', ...PLANNER_KEYS, 'fisher', 'onProgress', 'signal'];


function oneOf<T extends string>(v: unknown, option: string, allowed: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (!allowed.includes(v as T)) throw new InvalidOptionError(`Expected ${allowed.map((a) => `'${a}'`).join(' or ')} for option ${option} but received ${shown(v)}`);
  return v as T;
}

export function checkCompressOptions(options: unknown): CheckedCompressOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new InvalidOptionError(`Expected an options object { target, weights | model, ... } but received ${shown(options)}`);
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!KEYS.includes(k)) throw new InvalidOptionError(`Expected options ${KEYS.join(', ')} but received an option '${k}'`);
  const target = o.target;
  if (typeof target !== 'number' || !(target > 0 && target <= 1))
    throw new InvalidOptionError(`Expected a number in (0, 1] for option target but received ${shown(target)}`);

  const schedule = o.schedule === undefined ? [...DEFAULT_SCHEDULE] : (o.schedule as number[]);
  const bitsOk = (b: unknown) => typeof b === 'number' && Number.isInteger(b) && ((b >= 2 && b <= 16) || b === 32);
  if (!Array.isArray(schedule) || schedule.length === 0 || !schedule.every(bitsOk) || schedule.some((b, i) => i > 0 && b >= schedule[i - 1]!))
    throw new InvalidOptionError(
      `Expected a non-empty strictly decreasing array of bit widths in [2, 16] or 32 (float) for option schedule but received ${shown(o.schedule)}`,
    );

  const levels = o.pruningLevels === undefined ? [...DEFAULT_PRUNING_LEVELS] : (o.pruningLevels as number[]);
  if (
    !Array.isArray(levels) || levels.length === 0 ||
    !levels.every((p) => typeof p === 'number' && p >= 0 && p < 1) || levels.some((p, i) => i > 0 && p <= levels[i - 1]!)
  )
    throw new InvalidOptionError(`Expected a non-empty strictly increasing array of levels in [0, 1) for option pruningLevels but received ${shown(o.pruningLevels)}`);

  const algorithm = oneOf(o.algorithm, 'algorithm', ['astar', 'greedy'] as const, 'astar');
  const hw = o.heuristicWeight ?? 1;
  if (typeof hw !== 'number' || !(hw >= 0 && hw < Infinity))
    throw new InvalidOptionError(`Expected a finite number >= 0 for option heuristicWeight but received ${shown(o.heuristicWeight)}`);
  const maxExpansions = o.maxExpansions ?? DEFAULT_MAX_EXPANSIONS;
  if (typeof maxExpansions !== 'number' || !Number.isInteger(maxExpansions) || maxExpansions < 1)
    throw new InvalidOptionError(`Expected a positive integer for option maxExpansions but received ${shown(o.maxExpansions)}`);
  const onLimit = oneOf(o.onLimit, 'onLimit', ['greedy', 'error'] as const, 'greedy');
  const reestimate = oneOf(o.reestimate, 'reestimate', ['never', 'every-k', 'each-expansion'] as const, 'never');
  if (reestimate === 'each-expansion' && o.reestimateEvery !== undefined && o.reestimateEvery !== 1)
    throw new InvalidOptionError(
      `Option reestimate 'each-expansion' re-estimates after every move; it takes no reestimateEvery (received ${shown(o.reestimateEvery)}): use 'every-k' for that`,
    );
  const every = o.reestimateEvery ?? DEFAULT_REESTIMATE_EVERY;
  if (typeof every !== 'number' || !Number.isInteger(every) || every < 1)
    throw new InvalidOptionError(`Expected a positive integer for option reestimateEvery but received ${shown(o.reestimateEvery)}`);
  if (reestimate !== 'never' && typeof o.fisher !== 'function')
    throw new InvalidOptionError(
      `Option reestimate '${reestimate}' needs option fisher: a function (weights) => Promise<Fisher diagonals by weight name>; modelFisher(model, report, { data }) builds one from sensitivity()`,
    );
  if (o.fisher !== undefined && typeof o.fisher !== 'function')
    throw new InvalidOptionError(`Expected a function (weights) => Promise<diagonals> for option fisher but received ${shown(o.fisher)}`);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw new InvalidOptionError(`Expected a function for option onProgress but received ${shown(o.onProgress)}`);
  if (o.weights === undefined && o.model === undefined)
    throw new InvalidOptionError(
      'planCompression() needs the weights the report was computed on: pass option weights (weight name -> Float32Array) or model (the ONNX model path or bytes)',
    );
  if (o.weights !== undefined && o.model !== undefined)
    throw new InvalidOptionError('Expected option weights or option model, not both');
  return { target, schedule: [...schedule], levels: [...levels], algorithm, heuristicWeight: hw, maxExpansions, onLimit, reestimateEvery: reestimate === 'every-k' ? every : reestimate === 'each-expansion' ? 1 : 0 };
}
