/**
 * The FITCompress kernels of the native addon (native/fisher/compress.h), wrapped: this is the only
 * TypeScript module that calls them. Validates what crosses the boundary (the engine trusts it).
 */
import { AbortError, InvalidInputError, InvalidOptionError } from '../errors.js';
import { loadAddon, type NativeCompressApplied, type NativeCompressSet, type NativeCompressTables } from './addon.js';
import { nativeError } from './errors.js';

export type CompressTables = NativeCompressTables;
export type CompressApplied = NativeCompressApplied;

/** Bit width meaning "stays in float". */
export const FLOAT_BITS = 32;

export interface CompressLayerData {
  /** name used in messages */
  name: string;
  weights: Float32Array;
  /** Fisher diagonal in the weight's layout */
  fisher: Float64Array;
}

function checkBits(bits: number, what: string): void {
  if (!Number.isInteger(bits) || !((bits >= 2 && bits <= 16) || bits === FLOAT_BITS))
    throw new InvalidOptionError(`Expected an integer bit width in [2, 16] or 32 (float) for ${what} but received ${String(bits)}`);
}

function checkLevel(level: number): void {
  if (typeof level !== 'number' || !(level >= 0 && level < 1))
    throw new InvalidOptionError(`Expected a pruning level in [0, 1) but received ${String(level)}`);
}

/**
 * Weights and Fisher diagonals of every quantizable layer, copied into the engine and ranked once
 * by importance F_jj w_j^2 (a global order over all layers, ties by layer then element index).
 */
export class CompressKernels {
  readonly layers: number;
  readonly total: number;
  /** sum_j F_jj w_j^2 over every weight */
  readonly importanceTotal: number;
  readonly counts: number[];
  private readonly native: NativeCompressSet;

  constructor(data: readonly CompressLayerData[]) {
    data.forEach((d, l) => {
      if (!(d.weights instanceof Float32Array) || !(d.fisher instanceof Float64Array))
        throw new InvalidInputError(`Layer ${l} ('${d.name}'): expected a Float32Array weight and a Float64Array Fisher diagonal`);
      if (d.weights.length !== d.fisher.length)
        throw new InvalidInputError(
          `Layer '${d.name}' has ${d.weights.length} weights but a Fisher diagonal of ${d.fisher.length}; run sensitivity() on the same model`,
        );
      for (let j = 0; j < d.weights.length; j++) {
        if (!Number.isFinite(d.weights[j]!)) throw new InvalidInputError(`Weight '${d.name}' holds a non-finite value at element ${j}`);
        const f = d.fisher[j]!;
        if (!(f >= 0 && f < Infinity)) throw new InvalidInputError(`The Fisher diagonal of '${d.name}' holds ${f} at element ${j}; it must be finite and >= 0`);
      }
    });
    try {
      this.native = new (loadAddon().CompressSet)(data.map((d) => d.weights), data.map((d) => d.fisher));
    } catch (e) {
      throw nativeError(e, 'Preparing the compression kernels failed', CompressKernels);
    }
    const info = this.native.info();
    this.layers = info.layers;
    this.total = info.total;
    this.importanceTotal = info.importanceTotal;
    this.counts = data.map((d) => d.weights.length);
  }

  private checkLayer(l: number): void {
    this.checkLive();
    if (!Number.isInteger(l) || l < 0 || l >= this.layers)
      throw new InvalidOptionError(`Expected a layer index in [0, ${this.layers - 1}] but received ${String(l)}`);
  }

  /** Frees the engine's copies now instead of at garbage collection; the object is unusable after. */
  dispose(): void {
    this.native.dispose();
    this.disposed = true;
  }
  private disposed = false;

  /** F_jj w_j^2 of layer l */
  importance(l: number): Float64Array {
    this.checkLayer(l);
    return this.native.importance(l);
  }

  /** Each weight's position in the global ascending (importance, layer, element) order. */
  ranks(l: number): Uint32Array {
    this.checkLayer(l);
    return this.native.ranks(l);
  }

  private checkLive(): void {
    if (this.disposed) throw new InvalidOptionError('These compression kernels were disposed');
  }

  /** Weights pruned at a level: floor(level * N). */
  pruneCount(level: number): number {
    this.checkLive();
    checkLevel(level);
    return this.native.pruneCount(level);
  }

  /** Per-layer keep masks (1 = kept) at a global pruning level. */
  masks(level: number): Uint8Array[] {
    this.checkLive();
    checkLevel(level);
    return this.native.masks(level);
  }

  /** Prune to `level`, then quantize each layer to bits[l] (32 = float): w' = mask ? Q_b(w) : 0. */
  apply(level: number, bits: readonly number[]): CompressApplied {
    this.checkLive();
    checkLevel(level);
    if (bits.length !== this.layers) throw new InvalidOptionError(`Expected ${this.layers} bit widths (one per layer) but received ${bits.length}`);
    bits.forEach((b, l) => checkBits(b, `layer ${l}`));
    return this.native.apply(level, [...bits]);
  }

  /**
   * The planner's per-layer cost tables for a pruning schedule (ascending levels in [0, 1)) and a
   * bit schedule (descending), computed off the event loop.
   */
  async tables(levels: readonly number[], bits: readonly number[], signal?: AbortSignal): Promise<CompressTables> {
    this.checkLive();
    levels.forEach(checkLevel);
    bits.forEach((b, i) => checkBits(b, `schedule step ${i}`));
    if (signal?.aborted) throw new AbortError('Computing the compression tables was aborted');
    const onAbort = () => this.native.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.native.tables([...levels], [...bits]);
    } catch (e) {
      throw nativeError(e, 'Computing the compression tables failed', CompressKernels.prototype.tables);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Measured FIT per layer, sum_j F_jj (a_j - b_j)^2, and its total. */
export function measuredFit(a: Float32Array[], b: Float32Array[], fisher: Float64Array[]): { perLayer: Float64Array; total: number } {
  if (a.length !== b.length || a.length !== fisher.length)
    throw new InvalidInputError(`measuredFit() needs as many layers in each list (received ${a.length}, ${b.length}, ${fisher.length})`);
  a.forEach((x, l) => {
    if (x.length !== b[l]!.length || x.length !== fisher[l]!.length)
      throw new InvalidInputError(`measuredFit(): layer ${l} has lengths ${x.length}, ${b[l]!.length}, ${fisher[l]!.length}`);
  });
  let perLayer: Float64Array;
  try {
    perLayer = loadAddon().measuredFit(a, b, fisher);
  } catch (e) {
    throw nativeError(e, 'measuredFit failed', measuredFit);
  }
  let total = 0;
  for (const v of perLayer) total += v;
  return { perLayer, total };
}

/** Quantize after masking one tensor: mask ? Q_b(w) : 0, Delta from the kept weights. */
export function quantizeMasked(weights: Float32Array, mask: Uint8Array | null, bits: number): { values: Float32Array; scale: number } {
  checkBits(bits, 'quantizeMasked');
  if (mask && mask.length !== weights.length) throw new InvalidInputError(`The mask has ${mask.length} entries for ${weights.length} weights`);
  return loadAddon().quantizeMasked(weights, mask, bits);
}

/** Active bytes / fp32 bytes: sum_l nnz_l b_l / 8 / sum_l 4 n_l. */
export function compressionRatio(nnz: readonly number[], bits: readonly number[], counts: readonly number[]): number {
  if (nnz.length !== bits.length || nnz.length !== counts.length)
    throw new InvalidInputError(`compressionRatio() needs one nnz, bit width and count per layer (received ${nnz.length}, ${bits.length}, ${counts.length})`);
  bits.forEach((b, l) => checkBits(b, `layer ${l}`));
  return loadAddon().compressionRatio([...nnz], [...bits], [...counts]);
}
