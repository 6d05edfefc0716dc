/** Options of searchMixedPrecision() and their validation. */
import { InvalidOptionError } from '../errors.js';

/** One budget: average weight bits (weighted by weight count), total weight bytes, or bit-operations. */
export type Budget = { averageBits: number } | { bytes: number } | { bops: number };
export type BudgetKind = 'averageBits' | 'bytes' | 'bops';

export interface SearchOptions {
  budget: Budget;
  /** candidate weight bit widths (default [2, 3, 4, 5, 6, 8]) */
  weightBits?: number[];
  /**
   * candidate activation bit widths (default [8]: activations stay at 8 bits). With several, each
   * layer picks a (weight bits, activation bits) pair; activation bits change FIT and BOPs only.
   */
  activationBits?: number[];
  /** per-sample multiply-accumulates per layer (layerMacs()); needed for a bops budget */
  macs?: Record<string, number>;
}

export const DEFAULT_WEIGHT_BITS: readonly number[] = [2, 3, 4, 5, 6, 8];
export const DEFAULT_ACTIVATION_BITS: readonly number[] = [8];
const KINDS: readonly BudgetKind[] = ['averageBits', 'bytes', 'bops'];

/** A received option value as error messages show it. */
export const shown = (v: unknown): string => {
  if (typeof v === 'string') return `'${v}'`;
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface CheckedOptions {
  kind: BudgetKind;
  value: number;
  weightBits: number[];
  activationBits: number[];
  macs?: Record<string, number>;
}

/** A sorted, de-duplicated list of integer bit widths in [2, 16] (fallback when undefined). */
export function bitList(v: unknown, option: string, fallback: readonly number[], allowEmpty = false): number[] {
  if (v === undefined) return [...fallback];
  const ok = Array.isArray(v) && (allowEmpty || v.length > 0) && v.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 2 && b <= 16);
  if (!ok)
    throw new InvalidOptionError(`Expected ${allowEmpty ? 'an' : 'a non-empty'} array of integer bit widths in [2, 16] for option ${option} but received ${shown(v)}`);
  const list = [...new Set(v as number[])].sort((a, b) => a - b);
  return list;
}

export function checkOptions(options: unknown): CheckedOptions {
  if (!isObject(options)) throw new InvalidOptionError(`Expected an options object { budget, weightBits?, activationBits?, macs? } but received ${shown(options)}`);
  for (const k of Object.keys(options))
    if (!['budget', 'weightBits', 'activationBits', 'macs'].includes(k))
      throw new InvalidOptionError(`Expected options budget, weightBits, activationBits or macs but received an option '${k}'`);
  const b = options.budget;
  const keys = isObject(b) ? Object.keys(b) : [];
  if (!isObject(b) || keys.length !== 1 || !KINDS.includes(keys[0] as BudgetKind))
    throw new InvalidOptionError(`Expected { averageBits } , { bytes } or { bops } (exactly one) for option budget but received ${shown(b)}`);
  const kind = keys[0] as BudgetKind;
  const value = b[kind];
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new InvalidOptionError(`Expected a positive finite number for option budget.${kind} but received ${shown(value)}`);
  const weightBits = bitList(options.weightBits, 'weightBits', DEFAULT_WEIGHT_BITS);
  const activationBits = bitList(options.activationBits, 'activationBits', DEFAULT_ACTIVATION_BITS);
  let macs: Record<string, number> | undefined;
  if (options.macs !== undefined) {
    if (!isObject(options.macs)) throw new InvalidOptionError(`Expected an object of layer name -> MACs for option macs but received ${shown(options.macs)}`);
    for (const [layer, m] of Object.entries(options.macs))
      if (typeof m !== 'number' || !Number.isFinite(m) || m < 0)
        throw new InvalidOptionError(`Expected a non-negative finite number for option macs['${layer}'] but received ${shown(m)}`);
    macs = options.macs as Record<string, number>;
  }
  if (kind === 'bops' && macs === undefined)
    throw new InvalidOptionError(
      'A bops budget needs the MACs of every layer: pass option macs (layerMacs(model) computes them from the model; onnx-fit search computes them itself)',
    );
  return { kind, value, weightBits, activationBits, macs };
}
