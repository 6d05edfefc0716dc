/**
 * The Fisher pass over a stream of batches: per-layer accumulators (full weight Fisher diagonal,
 * running trace statistics, activation ranges) that merge across workers by addition.
 */
import { AbortError, EngineError, InvalidInputError } from '../errors.js';
import { prepareModel } from '../engine/load.js';
import { EngineModel, type GradientRequest, type GradientResult, type Inputs } from '../engine/model.js';
import { foldBatchNorm } from '../onnx/fold-bn.js';
import type { OnnxModel } from '../onnx/read.js';
import type { Graph, QuantizableLayer } from '../onnx/types.js';
import type { Batch } from '../data/source.js';
import { detectHead, type LikelihoodOption, type LossHead } from './head.js';

export type Estimator = 'empirical' | 'sampled' | 'batch';

/** Running statistics of one trace: sums over units (batches for weights, samples for activations). */
export interface TraceState {
  sum: number;
  sumSq: number;
  n: number;
  units: number;
}

export const emptyTrace = (): TraceState => ({ sum: 0, sumSq: 0, n: 0, units: 0 });

/** value: the mean per-sample trace over `samples` samples of one unit. */
export function addTrace(t: TraceState, value: number, samples: number): void {
  t.sum += value * samples;
  t.sumSq += value * value * samples;
  t.n += samples;
  t.units += 1;
}

export function mergeTrace(into: TraceState, t: TraceState): void {
  into.sum += t.sum;
  into.sumSq += t.sumSq;
  into.n += t.n;
  into.units += t.units;
}

export const traceMean = (t: TraceState): number => (t.n ? t.sum / t.n : 0);

/** Standard error of the mean (a batch-means estimate when the units are batches). */
export function traceStdError(t: TraceState): number | null {
  if (t.units < 2 || t.n === 0) return null;
  const m = traceMean(t);
  const v = Math.max(0, t.sumSq / t.n - m * m) * (t.units / (t.units - 1));
  return Math.sqrt(v / t.units);
}

export function traceRelStdError(t: TraceState): number {
  const se = traceStdError(t);
  const m = traceMean(t);
  if (se === null) return Number.POSITIVE_INFINITY;
  return m === 0 ? (se === 0 ? 0 : Number.POSITIVE_INFINITY) : se / Math.abs(m);
}

export interface LayerAcc {
  /** sum of per-unit Fisher diagonal contributions */
  diag: Float64Array;
  w: TraceState;
  a: TraceState;
  aMin: number;
  aMax: number;
}

export interface ShardResult {
  layers: LayerAcc[];
  samples: number;
  batches: number;
  likelihood: string;
}

export interface PassOptions {
  estimator: Estimator;
  likelihood: LikelihoodOption;
  mcSamples: number;
  seed: number;
  foldBatchNorm: boolean;
  inputShapes?: Record<string, number[]>;
  labelsKind?: 'class' | 'target';
}

/** A graph prepared for one set of concrete input shapes (BatchNorm folded if asked). */
export interface PreparedGraph {
  graph: Graph;
  layers: QuantizableLayer[];
}

interface Prepared extends PreparedGraph {
  engine: EngineModel;
  head: LossHead;
}

export const shapesKey = (shapes: Record<string, readonly number[]>): string => JSON.stringify(shapes);

/**
 * Engines per concrete input shape (the last batch is usually smaller). Graphs come from the model
 * (prepared on first use) or, in a worker, from the graphs the main thread prepared and shared.
 */
export class EngineCache {
  private readonly cache = new Map<string, Prepared>();
  private readonly graphs = new Map<string, PreparedGraph>();
  constructor(
    private readonly model: OnnxModel | undefined,
    private readonly opts: PassOptions,
    graphs?: Record<string, PreparedGraph>,
  ) {
    for (const [k, g] of Object.entries(graphs ?? {})) this.graphs.set(k, g);
  }
  /** The prepared graph for these shapes, without building an engine. */
  graph(shapes: Record<string, readonly number[]>): PreparedGraph {
    const key = shapesKey(shapes);
    let g = this.graphs.get(key);
    if (!g) {
      if (!this.model)
        throw new EngineError(`No graph was prepared for input shapes ${key}; the worker received graphs for ${[...this.graphs.keys()].join(', ')}`);
      const prepared = prepareModel(this.model, { inputShapes: { ...(this.opts.inputShapes ?? {}), ...(shapes as Record<string, number[]>) } });
      g = { graph: this.opts.foldBatchNorm ? foldBatchNorm(prepared.graph).graph : prepared.graph, layers: prepared.layers };
      this.graphs.set(key, g);
    }
    return g;
  }
  get(shapes: Record<string, readonly number[]>): Prepared {
    const key = shapesKey(shapes);
    let p = this.cache.get(key);
    if (!p) {
      const { graph, layers } = this.graph(shapes);
      const head = detectHead(graph, this.opts.likelihood, this.opts.labelsKind);
      p = { engine: new EngineModel(graph), graph, layers, head };
      this.cache.set(key, p);
    }
    return p;
  }
  first(): Prepared | undefined {
    return this.cache.values().next().value;
  }
  dispose(): void {
    for (const p of this.cache.values()) p.engine.dispose();
    this.cache.clear();
  }
}

export type Compute = (engine: EngineModel, inputs: Inputs, req: GradientRequest) => Promise<GradientResult> | GradientResult;

/**
 * The engine call for a pass on the calling (main) thread. Batches run off the event loop
 * (gradientsAsync) so that a long batch never blocks it; once one takes under 2 ms (a small model,
 * or a model fed sample by sample) the thread hop costs more than the batch, so batches run
 * synchronously, yielding to the event loop at least every 10 ms (timers, progress, abort) and
 * going back off the loop if a batch takes over 5 ms.
 */
export function mainThreadCompute(signal?: AbortSignal): Compute {
  let sync = false;
  let lastYield = performance.now();
  return async (engine, inputs, req) => {
    const t0 = performance.now();
    if (!sync) {
      const r = await engine.gradientsAsync(inputs, { ...req, signal });
      sync = performance.now() - t0 < 2;
      lastYield = performance.now();
      return r;
    }
    if (t0 - lastYield > 10) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
      if (signal?.aborted) throw new AbortError('sensitivity() was aborted');
    }
    const t1 = performance.now();
    const r = engine.gradients(inputs, req);
    if (performance.now() - t1 > 5) sync = false;
    return r;
  };
}

/** Per-batch deltas reported for convergence checks and progress. */
export interface BatchReport {
  samples: number;
  w: TraceState[];
  a: TraceState[];
}

export function emptyAccs(p: Prepared): LayerAcc[] {
  return p.layers.map((l) => ({
    diag: new Float64Array(p.graph.initializers.get(l.weight)!.data.length),
    w: emptyTrace(),
    a: emptyTrace(),
    aMin: Number.POSITIVE_INFINITY,
    aMax: Number.NEGATIVE_INFINITY,
  }));
}

/** Class labels must index the categorical head's classes (named by sample: the engine only knows the batch position). */
function checkClassLabels(p: Prepared, batch: Batch, n: number): void {
  const y = batch.labels?.data;
  const c = p.graph.shapes.get(p.head.tensor)?.at(-1);
  if (p.head.likelihood !== 'categorical' || !y || !c) return;
  const per = Math.max(1, y.length / n);
  for (let i = 0; i < y.length; i++) {
    const v = Number(y[i]!);
    if (!(Number.isInteger(v) && v >= 0 && v < c))
      throw new InvalidInputError(
        `The labels hold class label ${v} for sample ${batch.start + Math.floor(i / per)}${per > 1 ? ` (position ${i % per})` : ''}, ` +
          `but the model's output '${p.head.output}' has ${c} classes; class labels must be integers 0..${c - 1}`,
      );
  }
}

/**
 * Labels as the loss head wants them: class indices for categorical; for bernoulli/gaussian,
 * float targets with the head tensor's dims (0/1 integer labels of shape [N] or [N, 1] included).
 */
function targetFor(p: Prepared, labels: { dims: number[]; data: BigInt64Array | Float32Array }) {
  if (p.head.likelihood === 'categorical') return labels;
  const dims = p.graph.shapes.get(p.head.tensor);
  const data = labels.data instanceof BigInt64Array ? Float32Array.from(labels.data, (v) => Number(v)) : labels.data;
  if (dims && dims.reduce((a, b) => a * b, 1) === data.length) return { dims, data };
  return { dims: labels.dims, data };
}

/** Processes one batch into `accs`; returns the batch's trace deltas. */
export async function accumulateBatch(p: Prepared, accs: LayerAcc[], batch: Batch, opts: PassOptions, compute: Compute): Promise<BatchReport> {
  const n = Object.values(batch.inputs)[0]!.dims[0]!;
  const req: GradientRequest = {
    loss: { tensor: p.head.tensor, likelihood: p.head.likelihood },
    layers: p.layers.map((l) => ({ node: l.name, dataInput: l.op === 'MatMul' ? 1 - l.weightInput : 0, weightInput: l.weightInput })),
    perSampleSquares: opts.estimator !== 'batch',
    layerInputSquares: true,
    want: opts.estimator === 'batch' ? p.layers.map((l) => l.weight) : [],
    ranges: p.layers.map((l) => l.activation),
  };
  if (opts.estimator !== 'sampled') checkClassLabels(p, batch, n);
  const draws = opts.estimator === 'sampled' ? opts.mcSamples : 1;
  const scale = 1 / draws;
  // The weight Fisher diagonal is summed by the engine into the accumulators in place (no weight-
  // sized array per batch); the batch estimator squares the batch gradient here instead.
  if (opts.estimator !== 'batch') {
    req.sqWeightAccumulators = accs.map((a) => a.diag);
    req.sqWeightScale = scale;
  }
  const wContrib = accs.map(() => 0);
  const aPerSample = accs.map(() => new Float64Array(n));
  for (let r = 0; r < draws; r++) {
    if (opts.estimator === 'sampled') req.loss!.sampleSeed = (Math.imul(opts.seed + 1, 2654435761) + Math.imul(batch.start + 1, 40503) + r) >>> 0;
    else req.loss!.target = targetFor(p, batch.labels as { dims: number[]; data: BigInt64Array | Float32Array });
    const res = await compute(p.engine, batch.inputs, req);
    for (const l of res.loss)
      if (!Number.isFinite(l)) throw new InvalidInputError(`The loss is not finite on the batch starting at sample ${batch.start}; check the inputs and labels there`);
    p.layers.forEach((layer, li) => {
      const a = accs[li]!;
      let tr = 0;
      if (opts.estimator === 'batch') {
        const g = res.grads[layer.weight]!.data as Float32Array;
        for (let j = 0; j < g.length; j++) {
          const v = (g[j]! * g[j]!) / n;
          a.diag[j]! += v;
          tr += v;
        }
      } else {
        tr = res.sqWeightSums[layer.name]!;
      }
      wContrib[li]! += tr;
      const asq = res.layerInputSquares[layer.name]!;
      const dst = aPerSample[li]!;
      for (let i = 0; i < n; i++) dst[i]! += asq[i]! * scale;
      const [lo, hi] = res.ranges[layer.activation]!;
      a.aMin = Math.min(a.aMin, lo);
      a.aMax = Math.max(a.aMax, hi);
    });
  }
  const report: BatchReport = { samples: n, w: [], a: [] };
  accs.forEach((a, li) => {
    const wd = emptyTrace();
    // batch estimator: one value per batch (B * sum g^2 = sum G^2 / B); others: the batch's mean per-sample trace
    addTrace(wd, opts.estimator === 'batch' ? wContrib[li]! : wContrib[li]! / n, opts.estimator === 'batch' ? 1 : n);
    const ad = emptyTrace();
    for (const v of aPerSample[li]!) addTrace(ad, v, 1);
    mergeTrace(a.w, wd);
    mergeTrace(a.a, ad);
    report.w.push(wd);
    report.a.push(ad);
  });
  return report;
}

export function mergeAccs(into: LayerAcc[], from: LayerAcc[]): void {
  into.forEach((a, i) => {
    const b = from[i]!;
    for (let j = 0; j < a.diag.length; j++) a.diag[j]! += b.diag[j]!;
    mergeTrace(a.w, b.w);
    mergeTrace(a.a, b.a);
    a.aMin = Math.min(a.aMin, b.aMin);
    a.aMax = Math.max(a.aMax, b.aMax);
  });
}

/** Runs a stream of batches; `shouldStop` is polled between batches. */
export async function runPass(
  cache: EngineCache,
  batches: AsyncIterable<Batch>,
  opts: PassOptions,
  compute: Compute,
  onBatch: (r: BatchReport) => void,
  shouldStop: () => 'stop' | 'abort' | undefined,
): Promise<ShardResult | undefined> {
  let accs: LayerAcc[] | undefined;
  let samples = 0;
  let batchCount = 0;
  let likelihood = '';
  for await (const batch of batches) {
    const s = shouldStop();
    if (s === 'abort') throw new AbortError('sensitivity() was aborted');
    if (s === 'stop') break;
    const shapes = Object.fromEntries(Object.entries(batch.inputs).map(([k, v]) => [k, v.dims]));
    const p = cache.get(shapes);
    likelihood = p.head.likelihood;
    accs ??= emptyAccs(p);
    const r = await accumulateBatch(p, accs, batch, opts, compute);
    samples += r.samples;
    batchCount += 1;
    onBatch(r);
  }
  return accs ? { layers: accs, samples, batches: batchCount, likelihood } : undefined;
}
