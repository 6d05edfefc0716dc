/**
 * fit.sensitivity(): Fisher traces of every quantizable layer's weight and input activation
 * (DESIGN.md "Numerical contract"), estimated over calibration data until the traces converge,
 * on a pool of worker threads (data sharded, results merged) or on the calling thread.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { AbortError, InvalidInputError, InvalidOptionError, restoreWorkerError } from '../errors.js';
import { readModel, type OnnxModel } from '../onnx/read.js';
import { declaredInputs } from '../engine/load.js';
import { acquirePool, releasePool } from '../engine/pool.js';
import { shareData, shareGraphs } from '../engine/share.js';
import type { FisherTask } from '../engine/fisher-worker.js';
import { openData, type DataSpec } from '../data/source.js';
import type { LikelihoodOption } from './head.js';
import { channelIndex, channelSums } from './channels.js';
import { SensitivityReport, type LayerSensitivity } from './report.js';
import {
  EngineCache,
  emptyTrace,
  shapesKey,
  mainThreadCompute,
  mergeAccs,
  mergeTrace,
  runPass,
  traceMean,
  traceRelStdError,
  traceStdError,
  type BatchReport,
  type Estimator,
  type PassOptions,
  type PreparedGraph,
  type ShardResult,
  type TraceState,
} from './accumulate.js';

export type { Estimator } from './accumulate.js';

export interface SensitivityProgress {
  samples: number;
  /** total samples when known */
  total: number | undefined;
  batches: number;
  /** largest relative standard error over all traces (Infinity until it can be estimated) */
  maxRelStdError: number;
}

export interface SensitivityOptions {
  data: DataSpec;
  /** default: 'empirical' with labels, 'sampled' without */
  estimator?: Estimator;
  likelihood?: LikelihoodOption;
  batchSize?: number;
  /** stop after this many samples (default: all) */
  maxSamples?: number;
  /** never stop before this many samples (default 64) */
  minSamples?: number;
  /** stop when every trace's relative standard error is below this (default 0.05; 0 = use all data) */
  tolerance?: number;
  /** label draws per input for the sampled estimator (default 1) */
  mcSamples?: number;
  seed?: number;
  /** fold BatchNormalization into the preceding Conv first (default true) */
  foldBatchNorm?: boolean;
  /** concrete shapes for inputs with dynamic dims other than the batch */
  inputShapes?: Record<string, number[]>;
  /** worker threads (default: one per core; 1 runs on the calling thread) */
  workers?: number;
  signal?: AbortSignal;
  onProgress?: (p: SensitivityProgress) => void;
}

const positive = (name: string, v: unknown, def: number, allowZero = false): number => {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && (v === 0 || !Number.isInteger(v))))
    throw new InvalidOptionError(`Expected a ${allowZero ? 'non-negative number' : 'positive integer'} for option ${name} but received ${String(v)}`);
  return v;
};

/** Running totals for convergence and progress, fed by per-batch reports from any worker. */
class Monitor {
  w: TraceState[] = [];
  a: TraceState[] = [];
  samples = 0;
  batches = 0;
  add(r: BatchReport): void {
    if (!this.w.length) {
      this.w = r.w.map(() => emptyTrace());
      this.a = r.a.map(() => emptyTrace());
    }
    r.w.forEach((t, i) => mergeTrace(this.w[i]!, t));
    r.a.forEach((t, i) => mergeTrace(this.a[i]!, t));
    this.samples += r.samples;
    this.batches += 1;
  }
  maxRel(): number {
    if (!this.w.length) return Number.POSITIVE_INFINITY;
    return Math.max(...this.w.map(traceRelStdError), ...this.a.map(traceRelStdError));
  }
}

export async function sensitivity(source: string | Uint8Array, options: SensitivityOptions): Promise<SensitivityReport> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('sensitivity(model, options) needs an options object with data');
  const model: OnnxModel = readModel(source);
  const requestedBatch = positive('batchSize', options.batchSize, 32);
  const minSamples = positive('minSamples', options.minSamples, 64);
  const tolerance = positive('tolerance', options.tolerance, 0.05, true);
  const mcSamples = positive('mcSamples', options.mcSamples, 1);
  const seed = positive('seed', options.seed, 1, true);
  const workersOpt = positive('workers', options.workers, availableParallelism());
  const inputs = declaredInputs(model);
  // A model exported with a fixed batch of 1 is fed sample by sample (per-sample Fisher does not
  // depend on the batching); the batch estimator cannot form its batches on it.
  const fixedOne = inputs.find((i) => i.dims[0] === 1);
  if (fixedOne && options.estimator === 'batch' && options.batchSize !== undefined && requestedBatch > 1)
    throw new InvalidOptionError(
      `Model input '${fixedOne.name}' has a fixed batch of 1 ([${fixedOne.dims.map((d) => d ?? '?').join(', ')}]), so the 'batch' estimator cannot use batches of ${requestedBatch}; pass batchSize: 1 or use the 'empirical' estimator`,
    );
  const batchSize = fixedOne ? 1 : requestedBatch;
  const data = openData(options.data, { inputs }, { batchSize, maxSamples: options.maxSamples });
  const estimator: Estimator = options.estimator ?? (data.hasLabels ? 'empirical' : 'sampled');
  if (!['empirical', 'sampled', 'batch'].includes(estimator))
    throw new InvalidOptionError(`Expected 'empirical', 'sampled' or 'batch' for option estimator but received '${String(estimator)}'`);
  if ((estimator === 'empirical' || estimator === 'batch') && data.hasLabels === false)
    throw new InvalidOptionError(`The '${estimator}' estimator needs labels: pass data.labels, or use estimator 'sampled' (label-free)`);
  const pass: PassOptions = {
    estimator,
    likelihood: options.likelihood ?? 'auto',
    mcSamples,
    seed,
    foldBatchNorm: options.foldBatchNorm ?? true,
    inputShapes: options.inputShapes,
    labelsKind: data.labelsKind,
  };
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError('sensitivity() was aborted before it started');

  const monitor = new Monitor();
  const converged = () => tolerance > 0 && monitor.samples >= minSamples && monitor.maxRel() < tolerance;
  const onBatch = (r: BatchReport) => {
    // batches still in flight from workers when the run is aborted are dropped, not reported
    if (signal?.aborted) return;
    monitor.add(r);
    options.onProgress?.({ samples: monitor.samples, total: data.samples, batches: monitor.batches, maxRelStdError: monitor.maxRel() });
  };

  // Workers need data they can open themselves: arrays or .npy paths (not a one-shot iterable).
  const batchCount = data.ranges?.length ?? 1;
  const workers = data.ranges ? Math.max(1, Math.min(workersOpt, batchCount)) : 1;
  const cache = new EngineCache(model, pass);
  let result: ShardResult | undefined;
  try {
    if (workers === 1) {
      result = await runPass(cache, data.batches(), pass, mainThreadCompute(signal), onBatch, () =>
        signal?.aborted ? 'abort' : converged() ? 'stop' : undefined,
      );
    } else {
      // The main thread prepares the graph for every batch size the shards will see and moves its
      // weights (and in-memory data) into shared memory once; workers borrow them.
      const graphs: Record<string, PreparedGraph> = {};
      for (const count of new Set(data.ranges!.map((r) => r.count))) {
        const shapes = Object.fromEntries(inputs.map((i) => [i.name, [count, ...(data.sampleDims?.[i.name] ?? [])]]));
        graphs[shapesKey(shapes)] = cache.graph(shapes);
      }
      shareGraphs(Object.values(graphs).map((g) => g.graph)); // in place: the cache holds these graphs
      const task = { graphs, inputs, data: shareData(options.data), batchSize, maxSamples: options.maxSamples, pass };
      result = await runPool(task, workers, onBatch, converged, signal);
    }
    if (!result || result.samples === 0) throw new InvalidInputError('The calibration data holds no samples');
    // The report's names, shapes and weights come from a graph prepared on this thread.
    const firstBatch = data.ranges?.[0]?.count ?? batchSize;
    const shapes = Object.fromEntries(inputs.map((i) => [i.name, [firstBatch, ...(data.sampleDims?.[i.name] ?? [])]]));
    return buildReport(model.name, cache.first() ?? cache.graph(shapes), result, pass);
  } catch (e) {
    if (signal?.aborted && !(e instanceof AbortError)) throw new AbortError('sensitivity() was aborted', { cause: e });
    throw e;
  } finally {
    cache.dispose();
  }
}

type PoolTask = Omit<FisherTask, 'worker' | 'workers' | 'port' | 'flag'>;

async function runPool(
  base: PoolTask,
  workers: number,
  onBatch: (r: BatchReport) => void,
  converged: () => boolean,
  signal: AbortSignal | undefined,
): Promise<ShardResult | undefined> {
  const pool = acquirePool(workers);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const onAbort = () => Atomics.store(flag, 0, 2);
  signal?.addEventListener('abort', onAbort, { once: true });
  let ok = false;
  try {
    const runs = Array.from({ length: workers }, async (_, w) => {
      const { port1, port2 } = new MessageChannel();
      let received = 0;
      port1.on('message', (r: BatchReport) => {
        received++;
        onBatch(r);
        if (Atomics.load(flag, 0) === 0 && converged()) Atomics.store(flag, 0, 1);
      });
      const task: FisherTask = { ...base, worker: w, workers, port: port2, flag };
      try {
        const r = (await pool.run(task, { transferList: [port2] })) as ShardResult | undefined;
        // The task can settle before its last progress messages are delivered: drain them.
        for (let i = 0; r && received < r.batches && i < 200; i++) await new Promise((res) => setTimeout(res, 5));
        return r;
      } finally {
        port1.close();
      }
    });
    const settled = await Promise.allSettled(runs);
    const failed = settled.find((s) => s.status === 'rejected');
    if (Atomics.load(flag, 0) === 2) throw new AbortError('sensitivity() was aborted');
    if (failed) throw restoreWorkerError((failed as PromiseRejectedResult).reason);
    let merged: ShardResult | undefined;
    for (const s of settled) {
      const r = (s as PromiseFulfilledResult<ShardResult | undefined>).value;
      if (!r) continue;
      if (!merged) merged = r;
      else {
        mergeAccs(merged.layers, r.layers);
        merged.samples += r.samples;
        merged.batches += r.batches;
      }
    }
    ok = true;
    return merged;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await releasePool(pool, { destroy: !ok });
  }
}


function buildReport(modelName: string, p: PreparedGraph, result: ShardResult, pass: PassOptions): SensitivityReport {
  const units = pass.estimator === 'batch' ? result.batches : result.samples;
  const layers: LayerSensitivity[] = p.layers.map((layer, li) => {
    const acc = result.layers[li]!;
    const w = p.graph.initializers.get(layer.weight)!;
    const wd = w.data as Float32Array;
    let wMin = Number.POSITIVE_INFINITY;
    let wMax = Number.NEGATIVE_INFINITY;
    for (const v of wd) {
      if (v < wMin) wMin = v;
      if (v > wMax) wMax = v;
    }
    const diag = acc.diag.map((v) => v / units);
    const node = p.graph.nodes.find((nd) => nd.name === layer.name)!;
    const actDims = p.graph.shapes.get(layer.activation) ?? [];
    return {
      name: layer.name,
      op: layer.op,
      weight: {
        name: layer.weight,
        count: layer.count,
        min: wMin,
        max: wMax,
        fisherTrace: traceMean(acc.w),
        stdError: traceStdError(acc.w),
        fisherDiagonal: diag,
        channelTraces: channelSums(diag, channelIndex(layer, node, w.dims)),
        dims: w.dims,
      },
      activation: {
        name: layer.activation,
        count: actDims.slice(1).reduce((a, b) => a * b, 1),
        min: acc.aMin,
        max: acc.aMax,
        fisherTrace: traceMean(acc.a),
        stdError: traceStdError(acc.a),
      },
    };
  });
  return new SensitivityReport(modelName, pass.estimator, result.likelihood, result.samples, pass.foldBatchNorm, layers);
}
