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
  /** value ids whose [min, max] after forward is returned */
  ranges?: number[];
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
  sqWeightGrads: NativeTensor[];
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

export interface Addon {
  supportedOps(): string[];
  cpuFeatures(): { avx2fma: boolean; gemmPath: string };
  forcePortableGemm(force: boolean): boolean;
  Model: new (desc: NativeGraphDesc) => NativeModel;
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
