/**
 * fit.sensitivity(): Fisher traces of every quantizable layer's weight and input activation
 * (DESIGN.md "Numerical contract"), estimated over calibration data until the traces converge.
 * This module runs on the calling thread's engine; the worker pool shards the same loop.
 */
import { AbortError, InvalidInputError, InvalidOptionError } from '../errors.js';
import { readModel, type OnnxModel } from '../onnx/read.js';
import { foldBatchNorm } from '../onnx/fold-bn.js';
import { declaredInputs, prepareModel } from '../engine/load.js';
import { EngineModel, type GradientRequest } from '../engine/model.js';
import { openData, type DataSpec } from '../data/source.js';
import type { Graph, QuantizableLayer } from '../onnx/types.js';
import { detectHead, type LikelihoodOption, type LossHead } from './head.js';
import { channelIndex, channelSums } from './channels.js';
import { SensitivityReport, type LayerSensitivity } from './report.js';

export type Estimator = 'empirical' | 'sampled' | 'batch';

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
  signal?: AbortSignal;
  onProgress?: (p: SensitivityProgress) => void;
}

const positive = (name: string, v: unknown, def: number, allowZero = false): number => {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0) || (!allowZero && !Number.isInteger(v)))
    throw new InvalidOptionError(`Expected a ${allowZero ? 'non-negative number' : 'positive integer'} for option ${name} but received ${String(v)}`);
  return v;
};

interface Prepared {
  engine: EngineModel;
  graph: Graph;
  layers: QuantizableLayer[];
  head: LossHead;
}

/** Running statistics of one trace. */
class Trace {
  sum = 0; // sum of per-unit values weighted by their sample counts
  sumSq = 0;
  n = 0; // samples
  units = 0; // batches (weights) or samples (activations)
  add(value: number, samples: number): void {
    // value: the mean per-sample trace over `samples` samples
    this.sum += value * samples;
    this.sumSq += value * value * samples;
    this.n += samples;
    this.units += 1;
  }
  mean(): number {
    return this.n ? this.sum / this.n : 0;
  }
  /** standard error of the mean (batch-means estimate when units are batches) */
  stdError(): number | null {
    if (this.units < 2 || this.n === 0) return null;
    const m = this.mean();
    const varUnits = Math.max(0, this.sumSq / this.n - m * m) * (this.units / (this.units - 1));
    return Math.sqrt(varUnits / this.units);
  }
  relStdError(): number {
    const se = this.stdError();
    const m = this.mean();
    if (se === null) return Number.POSITIVE_INFINITY;
    return m === 0 ? (se === 0 ? 0 : Number.POSITIVE_INFINITY) : se / Math.abs(m);
  }
}

interface LayerAcc {
  layer: QuantizableLayer;
  diag: Float64Array;
  dims: number[];
  wTrace: Trace;
  aTrace: Trace;
  aMin: number;
  aMax: number;
  aCount: number;
}

export async function sensitivity(source: string | Uint8Array, options: SensitivityOptions): Promise<SensitivityReport> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('sensitivity(model, options) needs an options object with data');
  const model: OnnxModel = readModel(source);
  const batchSize = positive('batchSize', options.batchSize, 32);
  const minSamples = positive('minSamples', options.minSamples, 64);
  const tolerance = positive('tolerance', options.tolerance, 0.05, true);
  const mcSamples = positive('mcSamples', options.mcSamples, 1);
  const seed = positive('seed', options.seed, 1, true);
  const fold = options.foldBatchNorm ?? true;
  const inputs = declaredInputs(model);
  const data = openData(options.data, { inputs }, { batchSize, maxSamples: options.maxSamples });
  const estimator: Estimator = options.estimator ?? (data.hasLabels ? 'empirical' : 'sampled');
  if (!['empirical', 'sampled', 'batch'].includes(estimator))
    throw new InvalidOptionError(`Expected 'empirical', 'sampled' or 'batch' for option estimator but received '${String(estimator)}'`);
  if ((estimator === 'empirical' || estimator === 'batch') && data.hasLabels === false)
    throw new InvalidOptionError(`The '${estimator}' estimator needs labels: pass data.labels, or use estimator 'sampled' (label-free)`);

  const cache = new Map<string, Prepared>();
  const prepare = (shapes: Record<string, number[]>): Prepared => {
    const key = JSON.stringify(shapes);
    let p = cache.get(key);
    if (!p) {
      const prepared = prepareModel(model, { inputShapes: { ...(options.inputShapes ?? {}), ...shapes } });
      const graph = fold ? foldBatchNorm(prepared.graph).graph : prepared.graph;
      const head = detectHead(graph, options.likelihood ?? 'auto', data.labelsKind);
      p = { engine: new EngineModel(graph), graph, layers: prepared.layers, head };
      cache.set(key, p);
    }
    return p;
  };

  let accs: LayerAcc[] | undefined;
  let head: LossHead | undefined;
  let samples = 0;
  let batches = 0;
  const maxRel = () => (accs ? Math.max(...accs.flatMap((a) => [a.wTrace.relStdError(), a.aTrace.relStdError()])) : Number.POSITIVE_INFINITY);
  try {
    for await (const batch of data.batches()) {
      if (options.signal?.aborted) throw new AbortError('sensitivity() was aborted');
      const shapes = Object.fromEntries(Object.entries(batch.inputs).map(([k, v]) => [k, v.dims]));
      const p = prepare(shapes);
      head = p.head;
      const n = Object.values(batch.inputs)[0]!.dims[0]!;
      if (!accs) {
        accs = p.layers.map((layer) => {
          const w = p.graph.initializers.get(layer.weight)!;
          const actDims = p.graph.shapes.get(layer.activation) ?? [];
          return {
            layer,
            diag: new Float64Array(w.data.length),
            dims: w.dims,
            wTrace: new Trace(),
            aTrace: new Trace(),
            aMin: Number.POSITIVE_INFINITY,
            aMax: Number.NEGATIVE_INFINITY,
            aCount: actDims.slice(1).reduce((a, b) => a * b, 1),
          };
        });
      }
      const req: GradientRequest = {
        loss: { tensor: p.head.tensor, likelihood: p.head.likelihood },
        layers: p.layers.map((l) => ({ node: l.name, dataInput: l.op === 'MatMul' ? 1 - l.weightInput : 0, weightInput: l.weightInput })),
        perSampleSquares: estimator !== 'batch',
        want: estimator === 'batch' ? p.layers.map((l) => l.weight) : [],
        ranges: p.layers.map((l) => l.activation),
        signal: options.signal,
      };
      const draws = estimator === 'sampled' ? mcSamples : 1;
      const wContrib = accs.map(() => 0);
      const aPerSample = accs.map(() => new Float64Array(n));
      for (let r = 0; r < draws; r++) {
        if (estimator === 'sampled') req.loss!.sampleSeed = (Math.imul(seed + 1, 2654435761) + Math.imul(batch.start + 1, 40503) + r) >>> 0;
        else req.loss!.target = batch.labels as { dims: number[]; data: BigInt64Array | Float32Array };
        const res = await p.engine.gradientsAsync(batch.inputs, req);
        for (const l of res.loss) if (!Number.isFinite(l)) throw new InvalidInputError(`The loss is not finite on the batch starting at sample ${batch.start}; check the inputs and labels there`);
        accs.forEach((a, li) => {
          const name = a.layer.name;
          const scale = 1 / draws;
          let tr = 0;
          if (estimator === 'batch') {
            const g = res.grads[a.layer.weight]!.data as Float32Array;
            for (let j = 0; j < g.length; j++) {
              const v = (g[j]! * g[j]!) / n;
              a.diag[j]! += v;
              tr += v;
            }
          } else {
            const sq = res.sqWeightGrads[name]!.data as Float32Array;
            for (let j = 0; j < sq.length; j++) {
              a.diag[j]! += sq[j]! * scale;
              tr += sq[j]! * scale;
            }
          }
          wContrib[li]! += tr;
          const ag = res.layerInputGrads[name]!.data as Float32Array;
          const per = ag.length / n;
          const dst = aPerSample[li]!;
          for (let i = 0; i < n; i++) {
            let s = 0;
            for (let k = i * per; k < (i + 1) * per; k++) s += ag[k]! * ag[k]!;
            dst[i]! += s * scale;
          }
          const [lo, hi] = res.ranges[a.layer.activation]!;
          a.aMin = Math.min(a.aMin, lo);
          a.aMax = Math.max(a.aMax, hi);
        });
      }
      accs.forEach((a, li) => {
        // batch estimator: one value per batch (B * sum g^2 = sum G^2 / B); others: per-sample mean of the batch
        a.wTrace.add(estimator === 'batch' ? wContrib[li]! : wContrib[li]! / n, estimator === 'batch' ? 1 : n);
        for (const v of aPerSample[li]!) a.aTrace.add(v, 1);
      });
      samples += n;
      batches += 1;
      const rel = maxRel();
      options.onProgress?.({ samples, total: data.samples, batches, maxRelStdError: rel });
      if (tolerance > 0 && samples >= minSamples && rel < tolerance) break;
    }
  } finally {
    for (const p of cache.values()) p.engine.dispose();
  }
  if (!accs || samples === 0 || !head) throw new InvalidInputError('The calibration data holds no samples');
  const graph = [...cache.values()][0]!.graph;
  const units = estimator === 'batch' ? batches : samples;
  const layers: LayerSensitivity[] = accs.map((a) => {
    const w = graph.initializers.get(a.layer.weight)!.data as Float32Array;
    let wMin = Number.POSITIVE_INFINITY;
    let wMax = Number.NEGATIVE_INFINITY;
    for (const v of w) {
      if (v < wMin) wMin = v;
      if (v > wMax) wMax = v;
    }
    const diag = a.diag.map((v) => v / units);
    const node = graph.nodes.find((nd) => nd.name === a.layer.name)!;
    return {
      name: a.layer.name,
      op: a.layer.op,
      weight: {
        name: a.layer.weight,
        count: a.layer.count,
        min: wMin,
        max: wMax,
        fisherTrace: a.wTrace.mean(),
        stdError: a.wTrace.stdError(),
        fisherDiagonal: diag,
        channelTraces: channelSums(diag, channelIndex(a.layer, node, a.dims)),
        dims: a.dims,
      },
      activation: {
        name: a.layer.activation,
        count: a.aCount,
        min: a.aMin,
        max: a.aMax,
        fisherTrace: a.aTrace.mean(),
        stdError: a.aTrace.stdError(),
      },
    };
  });
  return new SensitivityReport(model.name, estimator, head.likelihood, samples, fold, layers);
}
