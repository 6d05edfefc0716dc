/**
 * Calibration data for the engine (DESIGN.md "Data"): typed arrays, .npy files or an (async)
 * iterable of batches, validated against the model's inputs and cut into batches.
 *
 * - Arrays are C-order with the samples on axis 0; batches are slices of `batchSize` samples along
 *   axis 0, the last one smaller. Inputs are converted to float32 by value: float64 is rounded,
 *   integer data (uint8 images included) keeps its raw values — 0..255 stays 0..255, there is no
 *   scaling; normalize the data the way the model expects before handing it in. A float32 array
 *   in memory is not copied: its batches are views into it (do not modify it during a run).
 * - .npy files are read lazily, only the samples of the batch at hand, so a data set larger than
 *   memory works and each worker reads just its shard. Shapes, counts and labels are checked when
 *   the data is opened; NaN/Inf in inputs are found up front for arrays in memory and as each batch
 *   is read for files (the error names the file, the sample and the element index).
 * - Labels: integer arrays hold class indices (-> BigInt64Array; [N, 1] becomes [N]), float arrays
 *   regression targets (-> Float32Array); `labelsKind` overrides the choice.
 * - An (async) iterable yields { inputs: { name: { dims, data } }, labels? } items of any size; it is
 *   re-batched to `batchSize`. Its `samples` is known once it has been consumed.
 *
 * Sharding (`shard`): 'strided' gives worker w the batches w, w + W, w + 2W, ... of the unsharded
 * sequence — the very same batches, so results do not depend on the worker count; 'contiguous'
 * gives worker w the samples [floor(w N / W), floor((w + 1) N / W)), batched from its start.
 * Either way the shards of workers 0..W-1 together hold every sample exactly once, and each
 * batch's `start` is its first sample's index in the whole data.
 */
import { InvalidOptionError } from '../errors.js';
import { checkFinite, isTypedArrayWithDims, openColumn, toFloat32, type ArraySource, type Column, inputError } from './columns.js';
import { isBatchIterable, iterableBatches, type Batch, type BatchIterable, type IterableState } from './iterable.js';
import { prepareLabels, type LabelOptions, type LabelsKind, type LabelTensor } from './labels.js';
import { checkInputDims, checkInputNames, checkModel, positiveInt, quoteList, type DataModel } from './validate.js';

export type { ArraySource, NumericArray, TypedArrayWithDims } from './columns.js';
export type { Batch, BatchItem, BatchIterable } from './iterable.js';
export type { LabelOptions, LabelsKind, LabelTensor } from './labels.js';
export type { DataModel, ModelInputInfo } from './validate.js';

/** Arrays: one for a single-input model, or one per input name; optional labels. */
export interface ArrayDataSpec {
  input: ArraySource | Record<string, ArraySource>;
  labels?: ArraySource;
}

export type DataSpec = ArrayDataSpec | BatchIterable;

export interface OpenDataOptions extends LabelOptions {
  /** samples per batch (positive integer) */
  batchSize: number;
  /** use at most the first maxSamples samples */
  maxSamples?: number;
}

/** A contiguous run of samples forming one batch. */
export interface BatchRange {
  start: number;
  count: number;
}

export type ShardMode = 'strided' | 'contiguous';

export interface DataSource {
  readonly batchSize: number;
  /** samples this source yields; undefined for an iterable until it has been consumed once */
  readonly samples: number | undefined;
  /** the model inputs the batches fill, in the model's order */
  readonly inputNames: readonly string[];
  /** per-sample dims by input (dims without axis 0); undefined for an iterable before its first batch */
  readonly sampleDims: Readonly<Record<string, readonly number[]>> | undefined;
  readonly hasLabels: boolean | undefined;
  readonly labelsKind: LabelsKind | undefined;
  /** the batch ranges in order (arrays); undefined for iterables */
  readonly ranges: readonly BatchRange[] | undefined;
  /** the batches in order; may be called again for another pass (arrays, re-iterable iterables) */
  batches(): AsyncGenerator<Batch>;
}

/** Batches of `batchSize` over samples [from, to), the last one smaller. */
export function planBatches(samples: number, batchSize: number, from = 0): BatchRange[] {
  const out: BatchRange[] = [];
  for (let s = from; s < samples; s += batchSize) out.push({ start: s, count: Math.min(batchSize, samples - s) });
  return out;
}

function checkShard(worker: unknown, workers: unknown, mode: unknown): void {
  positiveInt('workers', workers, false);
  if (typeof worker !== 'number' || !Number.isInteger(worker) || worker < 0 || worker >= (workers as number))
    throw new InvalidOptionError(`Expected an integer in [0, ${String(workers)}) for option worker but received ${String(worker)}`);
  if (mode !== 'strided' && mode !== 'contiguous')
    throw new InvalidOptionError(`Expected 'strided' or 'contiguous' for option mode but received ${String(mode)}`);
}

/** The batches of worker `worker` of `workers` over `samples` samples (see the module comment). */
export function shardRanges(samples: number, batchSize: number, worker: number, workers: number, mode: ShardMode = 'strided'): BatchRange[] {
  checkShard(worker, workers, mode);
  if (mode === 'strided') return planBatches(samples, batchSize).filter((_, i) => i % workers === worker);
  const lo = Math.floor((worker * samples) / workers);
  const hi = Math.floor(((worker + 1) * samples) / workers);
  return planBatches(hi, batchSize, lo);
}

// ---------------------------------------------------------------------------------------------
// arrays

interface ArrayData {
  names: string[];
  columns: Column[];
  labels?: LabelTensor & { kind: LabelsKind };
  /** samples in use (after maxSamples) */
  samples: number;
}

function openArrays(spec: ArrayDataSpec, model: DataModel, opts: OpenDataOptions): ArrayData {
  const single = typeof spec.input === 'string' || isTypedArrayWithDims(spec.input);
  const names = model.inputs.map((i) => i.name);
  let given: Record<string, ArraySource>;
  if (single) {
    if (names.length !== 1)
      throw inputError(
        `The data gives one array but the model has ${names.length} inputs (${quoteList(names)}); pass input: { ${names.map((n) => `${JSON.stringify(n)}: ...`).join(', ')} }`,
      );
    given = { [names[0]!]: spec.input as ArraySource };
  } else {
    if (typeof spec.input !== 'object' || spec.input === null)
      throw inputError(`Expected option data.input to be a .npy path, a typed array with dims, or an object of them by input name but received ${String(spec.input)}`);
    given = spec.input as Record<string, ArraySource>;
    checkInputNames(model, Object.keys(given), 'The data');
  }
  const columns = model.inputs.map((inp) => {
    const col = openColumn(given[inp.name]!, `input '${inp.name}'`);
    checkInputDims(inp, col.dims, col.where);
    return col;
  });
  const total = columns[0]!.dims[0]!;
  for (const c of columns)
    if (c.dims[0] !== total)
      throw inputError(
        `${c.where} has ${c.dims[0]} samples but ${columns[0]!.where} has ${total}; every input needs the same number of samples (axis 0)`,
      );
  if (total === 0) throw inputError(`${columns[0]!.where} holds 0 samples (dims [${columns[0]!.dims.join(', ')}]); calibration needs at least one`);
  const samples = Math.min(total, opts.maxSamples ?? Infinity);
  for (const c of columns) {
    if (!c.inMemory || !c.dtype.startsWith('float')) continue;
    const step = Math.max(1, Math.floor((1 << 20) / Math.max(1, c.dims.slice(1).reduce((a, b) => a * b, 1))));
    for (let s = 0; s < samples; s += step) {
      const raw = c.read(s, Math.min(step, samples - s));
      checkFinite(toFloat32(raw), raw, c.dims, s, c.where);
    }
  }
  let labels: ArrayData['labels'];
  if (spec.labels !== undefined) {
    const col = openColumn(spec.labels, 'the labels array');
    if (col.dims.length === 0 || col.dims[0] !== total)
      throw inputError(
        `${col.where} has ${col.dims[0] ?? 'no'} samples (dims [${col.dims.join(', ')}]) but the inputs have ${total}; give one label per sample (axis 0)`,
      );
    const used = col.read(0, samples);
    labels = prepareLabels(used, [samples, ...col.dims.slice(1)], col.dtype, col.where, opts);
  }
  return { names, columns, labels, samples };
}

function readBatch(d: ArrayData, r: BatchRange): Batch {
  const inputs: Batch['inputs'] = {};
  d.columns.forEach((c, i) => {
    const raw = c.read(r.start, r.count);
    const data = toFloat32(raw);
    if (!c.inMemory) checkFinite(data, raw, c.dims, r.start, c.where);
    inputs[d.names[i]!] = { dims: [r.count, ...c.dims.slice(1)], data };
  });
  const b: Batch = { inputs, start: r.start };
  if (d.labels) {
    const row = d.labels.dims.slice(1).reduce((a, x) => a * x, 1);
    b.labels = { dims: [r.count, ...d.labels.dims.slice(1)], data: d.labels.data.subarray(r.start * row, (r.start + r.count) * row) };
  }
  return b;
}

function arraySource(d: ArrayData, batchSize: number, ranges: BatchRange[]): DataSource {
  const sampleDims = Object.fromEntries(d.names.map((n, i) => [n, d.columns[i]!.dims.slice(1)]));
  return {
    batchSize,
    samples: ranges.reduce((a, r) => a + r.count, 0),
    inputNames: d.names,
    sampleDims,
    hasLabels: d.labels !== undefined,
    labelsKind: d.labels?.kind,
    ranges,
    async *batches() {
      for (const r of ranges) yield readBatch(d, r);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// iterables

function iterSource(
  src: BatchIterable,
  model: DataModel,
  opts: OpenDataOptions,
  st: IterableState,
  keep?: (i: number) => boolean,
): DataSource {
  let own: number | undefined;
  return {
    batchSize: opts.batchSize,
    get samples() {
      return keep ? own : st.samples;
    },
    inputNames: model.inputs.map((i) => i.name),
    get sampleDims() {
      return st.sampleDims;
    },
    get hasLabels() {
      return st.hasLabels;
    },
    get labelsKind() {
      return st.hasLabels ? st.labelsKind : undefined;
    },
    ranges: undefined,
    async *batches() {
      let n = 0;
      for await (const b of iterableBatches(src, model, opts, st, keep)) {
        n += b.inputs[model.inputs[0]!.name]!.dims[0]!;
        yield b;
      }
      own = n;
    },
  };
}

const SOURCE = Symbol('onnx-fit data source');
interface Internals {
  /** set on the sources shard() returns */
  sharded?: boolean;
  arrays?: ArrayData;
  iterable?: { src: BatchIterable; model: DataModel; opts: OpenDataOptions; st: IterableState };
}

/**
 * Opens calibration data for a model with these inputs (a normalized Graph, or declaredInputs()).
 * Throws InvalidOptionError for bad options and InvalidInputError for data that does not fit the
 * model, naming the input or file and what would fix it.
 */
export function openData(spec: DataSpec, model: DataModel, opts: OpenDataOptions): DataSource {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError(`Expected an options object with batchSize but received ${String(opts)}`);
  positiveInt('batchSize', opts.batchSize, false);
  positiveInt('maxSamples', opts.maxSamples, true);
  positiveInt('numClasses', opts.numClasses, true);
  if (opts.labelsKind !== undefined && opts.labelsKind !== 'class' && opts.labelsKind !== 'target')
    throw new InvalidOptionError(`Expected 'class' or 'target' for option labelsKind but received ${String(opts.labelsKind)}`);
  checkModel(model);
  const o: OpenDataOptions = { ...opts };
  let source: DataSource;
  let internals: Internals;
  if (spec !== null && typeof spec === 'object' && 'input' in spec) {
    const arrays = openArrays(spec as ArrayDataSpec, model, o);
    source = arraySource(arrays, o.batchSize, planBatches(arrays.samples, o.batchSize));
    internals = { arrays };
  } else if (isTypedArrayWithDims(spec) || ArrayBuffer.isView(spec) || typeof spec === 'string') {
    throw inputError(
      `Expected data as { input, labels? } but received ${typeof spec === 'string' ? `the path '${spec}'` : 'an array'}; ` +
        `wrap it: { input: ${typeof spec === 'string' ? JSON.stringify(spec) : 'array'} }`,
    );
  } else if (isBatchIterable(spec)) {
    const src = spec;
    const any = src as unknown as { next?: unknown; [Symbol.asyncIterator]?: () => unknown; [Symbol.iterator]?: () => unknown };
    const self = any[Symbol.asyncIterator] ?? any[Symbol.iterator];
    // a generator object is its own iterator: it can be consumed once
    const singleUse = typeof any.next === 'function' && self?.call(src) === src;
    const st: IterableState = { singleUse, started: false };
    source = iterSource(src, model, o, st);
    internals = { iterable: { src, model, opts: o, st } };
  } else {
    throw inputError(
      'Expected data as { input, labels? } (.npy paths or typed arrays with dims) or an (async) iterable of ' +
        `{ inputs, labels? } batches but received ${spec === null ? 'null' : typeof spec}`,
    );
  }
  Object.defineProperty(source, SOURCE, { value: internals, enumerable: false });
  return source;
}

/**
 * The part of `source` that worker `worker` of `workers` handles (see the module comment for the
 * modes; 'strided' is the default). Array sources read only their shard. An iterable can only be
 * sharded 'strided', and every shard consumes the whole iterable, skipping the others' batches.
 */
export function shard(source: DataSource, worker: number, workers: number, mode: ShardMode = 'strided'): DataSource {
  checkShard(worker, workers, mode);
  const internals = (source as unknown as Record<symbol, Internals | undefined>)[SOURCE];
  if (!internals) throw new InvalidOptionError('Expected a data source returned by openData for shard()');
  if (internals.sharded) throw new InvalidOptionError('Expected an unsharded data source for shard() but received a shard; shard the source openData returned');
  let out: DataSource;
  if (internals.arrays) {
    const all = internals.arrays.samples;
    out = arraySource(internals.arrays, source.batchSize, shardRanges(all, source.batchSize, worker, workers, mode));
  } else {
    if (mode === 'contiguous')
      throw new InvalidOptionError(
        "Expected mode 'strided' to shard an iterable data source (its length is unknown until consumed) but received 'contiguous'",
      );
    const { src, model, opts, st } = internals.iterable!;
    out = iterSource(src, model, opts, st, (i) => i % workers === worker);
  }
  Object.defineProperty(out, SOURCE, { value: { ...internals, sharded: true }, enumerable: false });
  return out;
}
