/**
 * The native addon: its whole surface typed in one place, and the only module that loads it
 * (DESIGN.md: only src/engine touches the addon).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AddonLoadError } from '../errors.js';
import type { DTypeName, TypedData } from '../onnx/types.js';

/** A tensor as it crosses the boundary; data is used in place, not copied. */
export interface NativeTensor {
  dims: number[];
  type: DTypeName;
  data: TypedData;
}

export type NativeAttr =
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'ints'; value: number[] }
  | { name: string; type: 'floats'; value: number[] }
  | { name: string; type: 'string'; value: string };

export interface NativeValue {
  name: string;
  /** static dims (inputs: the prepared shape) */
  dims?: number[];
  /** constants only */
  type?: DTypeName;
  data?: TypedData;
}

export interface NativeNode {
  op: string;
  name: string;
  /** value ids; -1 for an absent optional input/output */
  inputs: number[];
  outputs: number[];
  attrs: NativeAttr[];
}

export interface NativeGraphDesc {
  opset: number;
  values: NativeValue[];
  nodes: NativeNode[];
  inputs: number[];
  outputs: number[];
}

export interface RunOptions {
  precision?: 'float32' | 'float64';
}

export interface NativeGradientRequest {
  precision?: 'float32' | 'float64';
  /** explicit dL/d value seeds */
  seeds?: { value: number; tensor: NativeTensor }[];
  /** a loss head on value `value`; without `target`, targets are sampled from the model (seeded) */
  loss?: { value: number; likelihood: 'categorical' | 'bernoulli' | 'gaussian'; target?: NativeTensor; sampleSeed?: number };
  /** value ids whose total gradient is returned */
  want?: number[];
  /** layers: the gradient of the data input through this node only, and per-sample squared weight gradients */
  layers?: { node: number; dataInput: number; weightInput: number }[];
  perSampleSquares?: boolean;
  /** return per-sample sums of squares of the layers' input gradients instead of the gradients */
  layerInputSquares?: boolean;
  /** value ids whose [min, max] after forward is returned */
  ranges?: number[];
  /**
   * with perSampleSquares: one Float64Array per layer (its weight's size), to which
   * sqWeightScale * (per-sample squared weight gradients) is added in place; sqWeightGrads then
   * stays empty and sqWeightSums holds the per-layer sums of what was added
   */
  sqWeightAccumulators?: Float64Array[];
  sqWeightScale?: number;
}

export interface NativeGradientResult {
  /** [min, max] per requested range value */
  ranges: Float64Array;
  outputs: NativeTensor[];
  /** per-sample loss l_i (empty without a loss head) */
  loss: Float64Array;
  /** sampled targets (label-free runs) */
  targets?: NativeTensor;
  grads: NativeTensor[];
  layerInputGrads: NativeTensor[];
  /** with layerInputSquares: per layer, per sample sum_k (d l_i / d a_ik)^2 */
  layerInputSquares?: Float64Array[];
  sqWeightGrads: NativeTensor[];
  /** with sqWeightAccumulators: per layer, the sum of what was added */
  sqWeightSums?: Float64Array;
}

export interface NativeModel {
  /** Forward, loss head (or seeds), backward — synchronously. */
  gradients(inputs: NativeTensor[], request: NativeGradientRequest): NativeGradientResult;
  /** The same off the event loop. */
  gradientsAsync(inputs: NativeTensor[], request: NativeGradientRequest): Promise<NativeGradientResult>;
  /** Runs synchronously on the calling thread (use in workers). */
  run(inputs: NativeTensor[], options?: RunOptions): NativeTensor[];
  /** Runs on the libuv thread pool; the promise settles on the calling thread. */
  runAsync(inputs: NativeTensor[], options?: RunOptions): Promise<NativeTensor[]>;
  /** Asks a running run to stop at the next node boundary (it rejects with ERR_ABORTED). */
  abort(): void;
  dispose(): void;
  info(): { nodes: number; values: number };
}

/** FITCompress cost tables; cell (l * levels + p) * steps + s, see native/fisher/compress_tables.h. */
export interface NativeCompressTables {
  layers: number;
  levels: number;
  steps: number;
  /** [levels] weights pruned at each level: floor(level * N) */
  pruned: Float64Array;
  /** [layers * levels] survivors */
  nnz: Float64Array;
  /** sum_j F (w'(p, s) - w)^2 */
  fitOriginal: Float64Array;
  /** sum_j F (w'(p, s + 1) - w'(p, s))^2, 0 at the last step */
  quantizeCost: Float64Array;
  /** sum_j F (w'(p + 1, s) - w'(p, s))^2, 0 at the last level */
  pruneCost: Float64Array;
  /** Delta of w'(p, s) (1 for float) */
  scales: Float32Array;
}

export interface NativeCompressApplied {
  /** quantized after masking, per layer */
  weights: Float32Array[];
  masks: Uint8Array[];
  scales: Float32Array;
  nnz: Float64Array;
  /** measured FIT against the original weights, per layer */
  fit: Float64Array;
}

/** Weights and Fisher diagonals of every quantizable layer (copied), ranked once by importance. */
export interface NativeCompressSet {
  info(): { layers: number; total: number; importanceTotal: number };
  /** F_jj w_j^2 of one layer */
  importance(layer: number): Float64Array;
  /** global ascending (importance, layer, element) rank of each weight of one layer */
  ranks(layer: number): Uint32Array;
  /** floor(level * N) */
  pruneCount(level: number): number;
  masks(level: number): Uint8Array[];
  apply(level: number, bits: number[]): NativeCompressApplied;
  tables(levels: number[] | Float64Array, bits: number[]): Promise<NativeCompressTables>;
  /** stops a running tables() (it rejects with ERR_ABORTED) */
  abort(): void;
  /** frees the copies now (the object is then empty) */
  dispose(): void;
}

export interface Addon {
  supportedOps(): string[];
  cpuFeatures(): { avx2fma: boolean; gemmPath: string };
  forcePortableGemm(force: boolean): boolean;
  /**
   * Engine memory of the whole process (every engine and worker thread), in bytes: held by live
   * tensors and scratch (inUse), the most held since the last reset (peak), freed blocks kept for
   * reuse (cached). With resetPeak, peak restarts from inUse after it is read.
   */
  memoryStats(resetPeak?: boolean): { inUse: number; peak: number; cached: number };
  Model: new (desc: NativeGraphDesc) => NativeModel;
  CompressSet: new (weights: Float32Array[], fisher: Float64Array[]) => NativeCompressSet;
  /** per layer sum_j F_jj (a_j - b_j)^2 */
  measuredFit(a: Float32Array[], b: Float32Array[], fisher: Float64Array[]): Float64Array;
  /** w' = mask ? Q_b(w) : 0 with Delta from the kept weights (mask null: all kept; bits 32: float) */
  quantizeMasked(weights: Float32Array, mask: Uint8Array | null, bits: number): { values: Float32Array; scale: number };
  /** (sum_l nnz_l b_l) / (32 sum_l n_l) */
  compressionRatio(nnz: number[] | Float64Array, bits: number[], counts: number[] | Float64Array): number;
}

const here = dirname(fileURLToPath(import.meta.url));
/** package root: src/engine/ or dist/engine/ are two levels below it */
export const packageRoot = resolve(here, '..', '..');

let cached: Addon | undefined;

export function addonPath(): string {
  return process.env.ONNX_FIT_ADDON ?? join(packageRoot, 'build', 'Release', 'onnx_fit.node');
}

export function loadAddon(): Addon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new AddonLoadError(
      `The onnx-fit native addon was not found at ${path}. It is built when the package installs; ` +
        `build it now with \`npm run build:native\` in ${packageRoot} (needs cmake >= 3.15 and a C++17 ` +
        `compiler), or point ONNX_FIT_ADDON at a built onnx_fit.node.`,
    );
  }
  try {
    const require = createRequire(import.meta.url);
    cached = require(path) as Addon;
  } catch (cause) {
    throw new AddonLoadError(
      `The onnx-fit native addon at ${path} failed to load (${(cause as Error).message}). ` +
        `Rebuild it for this Node version with \`npm run build:native\` in ${packageRoot}.`,
      { cause },
    );
  }
  return cached;
}
