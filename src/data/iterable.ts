/**
 * Calibration data from an (async) iterable of batches: each item is validated and converted, and
 * the stream is re-batched to exactly `batchSize` samples (the last batch smaller).
 */
import { checkFinite, describeValue, isTypedArrayWithDims, toFloat32, dtypeOf, type TypedArrayWithDims, inputError } from './columns.js';
import { prepareLabels, defaultLabelsKind, type LabelOptions, type LabelsKind, type LabelTensor } from './labels.js';
import { checkInputDims, checkInputNames, fmtDims, type DataModel } from './validate.js';

/** One item of an iterable data source: a batch of samples per model input, optional labels. */
export interface BatchItem {
  inputs: Record<string, TypedArrayWithDims>;
  labels?: TypedArrayWithDims;
}

export type BatchIterable = AsyncIterable<BatchItem> | Iterable<BatchItem>;

export interface Batch {
  inputs: Record<string, { dims: number[]; data: Float32Array }>;
  labels?: LabelTensor;
  /** index of the batch's first sample in the whole data */
  start: number;
}

/** What is learned about an iterable while it is consumed. */
export interface IterableState {
  sampleDims?: Record<string, number[]>;
  hasLabels?: boolean;
  labelsKind?: LabelsKind;
  labelDims?: number[];
  /** samples yielded by the last complete pass */
  samples?: number;
  /** the iterable is its own iterator (a generator): it can be consumed once */
  singleUse: boolean;
  started: boolean;
}

export function isBatchIterable(v: unknown): v is BatchIterable {
  return (
    typeof v === 'object' && v !== null && !Array.isArray((v as { dims?: unknown }).dims) &&
    (typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function')
  );
}

interface Chunk {
  inputs: Record<string, Float32Array>;
  labels?: BigInt64Array | Float32Array;
  count: number;
  /** samples of this chunk already taken */
  off: number;
}

const perSample = (dims: readonly number[]): number => dims.slice(1).reduce((a, b) => a * b, 1);

function convertItem(item: unknown, k: number, model: DataModel, opts: LabelOptions, st: IterableState): Chunk {
  const where = `batch #${k} of the data iterable`;
  const it = item as BatchItem;
  if (typeof it !== 'object' || it === null || typeof it.inputs !== 'object' || it.inputs === null)
    throw inputError(`Expected ${where} to be { inputs: { name: { dims, data } }, labels? } but received ${describeValue(item)}`);
  checkInputNames(model, Object.keys(it.inputs), where);
  const first = st.sampleDims === undefined;
  const dims: Record<string, number[]> = {};
  const inputs: Record<string, Float32Array> = {};
  let count = -1;
  let countFrom = '';
  for (const inp of model.inputs) {
    const t = it.inputs[inp.name];
    const w = `input '${inp.name}' of ${where}`;
    if (!isTypedArrayWithDims(t))
      throw inputError(`Expected { dims, data } with a typed array for ${w} but received ${describeValue(t)}`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (!t.dims.every((d) => Number.isInteger(d) && d >= 0) || t.data.length !== n)
      throw inputError(`${w} has ${t.data.length} elements but its dims ${JSON.stringify(t.dims)} need ${n}`);
    checkInputDims(inp, t.dims, w);
    const prev = st.sampleDims?.[inp.name];
    if (prev && (prev.length !== t.dims.length - 1 || prev.some((d, i) => d !== t.dims[i + 1])))
      throw inputError(
        `${w} has dims ${fmtDims(t.dims)}, per sample ${fmtDims(t.dims.slice(1))}, but earlier batches had ${fmtDims(prev)}; ` +
          'every batch must have the same per-sample dims',
      );
    if (count >= 0 && t.dims[0] !== count)
      throw inputError(`${w} has ${t.dims[0]} samples but input '${countFrom}' has ${count}; every input needs the same number of samples`);
    count = t.dims[0]!;
    countFrom = inp.name;
    dims[inp.name] = t.dims.slice(1);
    // always a copy: generators often refill one buffer for every item
    const data = t.data instanceof Float32Array ? t.data.slice() : toFloat32(t.data);
    checkFinite(data, t.data, t.dims, 0, w);
    inputs[inp.name] = data;
  }
  if (first) st.sampleDims = dims;

  const hasLabels = it.labels !== undefined;
  if (st.hasLabels !== undefined && st.hasLabels !== hasLabels)
    throw inputError(
      `${where} ${hasLabels ? 'has labels but earlier batches had none' : 'has no labels but earlier batches had them'}; give labels with every batch or with none`,
    );
  st.hasLabels = hasLabels;
  let labels: Chunk['labels'];
  if (it.labels !== undefined) {
    const l = it.labels;
    const w = `the labels array of ${where}`;
    if (!isTypedArrayWithDims(l)) throw inputError(`Expected { dims, data } with a typed array for ${w} but received ${describeValue(l)}`);
    const n = l.dims.reduce((a, b) => a * b, 1);
    if (l.data.length !== n) throw inputError(`${w} has ${l.data.length} elements but its dims ${JSON.stringify(l.dims)} need ${n}`);
    if (l.dims.length === 0 || l.dims[0] !== count)
      throw inputError(`${w} has ${l.dims[0] ?? 'no'} samples (dims ${fmtDims(l.dims)}) but the inputs have ${count}; give one label per sample`);
    st.labelsKind ??= defaultLabelsKind(dtypeOf(l.data), opts);
    const p = prepareLabels(l.data, l.dims, dtypeOf(l.data), w, { ...opts, labelsKind: st.labelsKind });
    const ld = p.dims.slice(1);
    if (st.labelDims && (st.labelDims.length !== ld.length || st.labelDims.some((d, i) => d !== ld[i])))
      throw inputError(`${w} have per-sample dims ${fmtDims(ld)} but earlier batches had ${fmtDims(st.labelDims)}`);
    st.labelDims = ld;
    labels = p.kind === 'class' || l.data !== p.data ? p.data : (p.data as Float32Array).slice();
  }
  return { inputs, labels, count, off: 0 };
}

/** Takes `n` samples off the front of `pending` (whole chunks pass through without a copy). */
function take(pending: Chunk[], n: number, st: IterableState, build: boolean): Omit<Batch, 'start'> | undefined {
  const names = Object.keys(st.sampleDims!);
  const head = pending[0]!;
  if (head.off === 0 && head.count === n) {
    pending.shift();
    if (!build) return undefined;
    return {
      inputs: Object.fromEntries(names.map((k) => [k, { dims: [n, ...st.sampleDims![k]!], data: head.inputs[k]! }])),
      ...(head.labels ? { labels: { dims: [n, ...st.labelDims!], data: head.labels } } : {}),
    };
  }
  const out: Record<string, Float32Array> | undefined = build
    ? Object.fromEntries(names.map((k) => [k, new Float32Array(n * perSample([0, ...st.sampleDims![k]!]))]))
    : undefined;
  const lrow = st.hasLabels ? perSample([0, ...st.labelDims!]) : 0;
  const lout = build && st.hasLabels ? (pending[0]!.labels instanceof BigInt64Array ? new BigInt64Array(n * lrow) : new Float32Array(n * lrow)) : undefined;
  let done = 0;
  while (done < n) {
    const c = pending[0]!;
    const m = Math.min(n - done, c.count - c.off);
    if (out) {
      for (const k of names) {
        const row = out[k]!.length / n;
        out[k]!.set(c.inputs[k]!.subarray(c.off * row, (c.off + m) * row), done * row);
      }
    }
    if (lout) (lout as Float32Array).set((c.labels as Float32Array).subarray(c.off * lrow, (c.off + m) * lrow), done * lrow);
    c.off += m;
    done += m;
    if (c.off === c.count) pending.shift();
  }
  if (!out) return undefined;
  return {
    inputs: Object.fromEntries(names.map((k) => [k, { dims: [n, ...st.sampleDims![k]!], data: out[k]! }])),
    ...(lout ? { labels: { dims: [n, ...st.labelDims!], data: lout } } : {}),
  };
}

/**
 * Batches of exactly `batchSize` samples (the last one smaller) from the iterable, at most
 * `maxSamples` in all; `keep(i)` selects batch i (sharding) — the others are skipped uncopied.
 */
export async function* iterableBatches(
  src: BatchIterable,
  model: DataModel,
  opts: LabelOptions & { batchSize: number; maxSamples?: number },
  st: IterableState,
  keep: (batchIndex: number) => boolean = () => true,
): AsyncGenerator<Batch> {
  if (st.started && st.singleUse)
    throw inputError(
      'The data iterable was already consumed (a generator can be iterated once); pass an object whose ' +
        '[Symbol.asyncIterator]() returns a fresh iterator, or open the data again',
    );
  st.started = true;
  const bs = opts.batchSize;
  const limit = opts.maxSamples ?? Infinity;
  const pending: Chunk[] = [];
  let pendingCount = 0;
  let emitted = 0;
  let index = 0;
  let k = 0;
  function* flush(final: boolean): Generator<Batch> {
    while (pendingCount > 0 && emitted < limit && (final || pendingCount >= bs || emitted + pendingCount >= limit)) {
      const n = Math.min(bs, pendingCount, limit - emitted);
      const b = take(pending, n, st, keep(index));
      pendingCount -= n;
      if (b) yield { ...b, start: emitted };
      emitted += n;
      index++;
    }
  }
  for await (const item of src as AsyncIterable<BatchItem>) {
    const c = convertItem(item, k++, model, opts, st);
    if (c.count === 0) continue;
    pending.push(c);
    pendingCount += c.count;
    yield* flush(false);
    if (emitted >= limit) break;
  }
  yield* flush(true);
  if (emitted === 0)
    throw inputError(`The data iterable yielded ${k === 0 ? 'no batches' : 'only empty batches'}; calibration needs at least one sample`);
  st.samples = emitted;
}
