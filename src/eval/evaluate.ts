/**
 * fit.evaluate(): the real accuracy of a quantization configuration. Builds the fake-quant model in
 * memory (the very construction exportModel writes, BatchNorm folded by default, activations
 * calibrated on the data unless ranges are given), runs it and the float model with
 * onnxruntime-node in Piscina workers (data sharded, one ORT thread per worker), and compares them
 * (src/eval/metrics.ts). evaluateMany / createEvaluator reuse the prepared model, the calibration,
 * the float outputs and the pool across many configurations.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { AbortError, InvalidOptionError, restoreWorkerError } from '../errors.js';
import { openData, type DataSpec } from '../data/source.js';
import { positiveInt } from '../data/validate.js';
import { shareArray, shareData } from '../engine/share.js';
import { decodeModel } from '../onnx/proto.js';
import { checkConfig, type QuantConfig } from '../onnx/quantize.js';
import { checkMasks, type WeightMasks } from '../onnx/masks.js';
import { applyConfig, prepareQuantization, type Calibration, type PreparedModel } from '../onnx/write.js';
import type { ValueInfo } from '../onnx/types.js';
import { resolveRanges, type Range } from './calibrate.js';
import { evalPool } from './pool.js';
import { releaseSessions, runShard, type EvalTask, type SharedModel } from './eval-worker.js';
import { detectHead, finish, mergeAcc, type EvaluationMetrics, type Head, type LikelihoodOption, type MetricAcc } from './metrics.js';
import { createSession, effectiveBatch, feeds, modelInputs, outputData } from './ort-io.js';

export type { EvaluationMetrics, HeadKind, LikelihoodOption } from './metrics.js';

export interface EvaluateProgress {
  /** samples done in this pass (over all configurations of the pass) */
  samples: number;
  total: number | undefined;
}

export interface EvaluateOptions {
  data: DataSpec;
  batchSize?: number;
  maxSamples?: number;
  /** worker threads (default: one per core, at most one per batch; 1 runs on the calling thread) */
  workers?: number;
  foldBatchNorm?: boolean;
  perChannel?: boolean;
  /** activation ranges or separate calibration data (default: calibrate on `data`) */
  calibration?: Calibration;
  likelihood?: LikelihoodOption;
  /**
   * Pruning masks applied with every configuration (weight or layer name -> 1 kept / 0 pruned, in
   * the folded weight's layout; see exportModel). evaluateMany can give each configuration its own.
   */
  masks?: WeightMasks;
  signal?: AbortSignal;
  onProgress?: (p: EvaluateProgress) => void;
}

export interface EvaluationResult extends EvaluationMetrics {
  config: QuantConfig;
}

/** Per-call options of an evaluator: masks for this configuration (or one per configuration). */
export interface EvaluateCallOptions {
  /** replaces the evaluator's masks option; an array gives each configuration its own (undefined: none) */
  masks?: WeightMasks | (WeightMasks | undefined)[];
}

/** Float outputs kept for reuse up to this many bytes. */
const CACHE_LIMIT = 512 * 1024 * 1024;
/** Quantized models per pass (each worker holds one session per model). */
const MODELS_PER_PASS = 8;

let nextId = 0;
const shared = (b: Uint8Array): SharedModel => ({ id: `${process.pid}-${Date.now()}-${nextId++}`, bytes: shareArray(b) });


export interface Evaluator {
  readonly model: string;
  readonly samples: number | undefined;
  readonly head: Head;
  evaluate(config: QuantConfig, options?: { masks?: WeightMasks }): Promise<EvaluationResult>;
  evaluateMany(configs: QuantConfig[], options?: EvaluateCallOptions): Promise<EvaluationResult[]>;
  /** releases the worker pool and sessions */
  close(): Promise<void>;
}

/** Prepares everything that does not depend on the configuration; call close() when done. */
export async function createEvaluator(model: string | Uint8Array, opts: EvaluateOptions): Promise<Evaluator> {
  if (!opts || typeof opts !== 'object' || opts.data === undefined)
    throw new InvalidOptionError('Expected an options object with data for evaluate(model, config, { data })');
  const it = opts.data as unknown as { next?: unknown; [Symbol.asyncIterator]?: () => unknown; [Symbol.iterator]?: () => unknown };
  const self = it[Symbol.asyncIterator] ?? it[Symbol.iterator];
  if (typeof it.next === 'function' && self?.call(it) === it)
    throw new InvalidOptionError(
      'Expected data that can be read more than once for evaluate (a probe, the float run and every configuration read it) but received a one-shot iterator (a generator object); ' +
        'pass arrays, .npy paths, or an iterable whose iterator starts over, e.g. an array of batches or { [Symbol.asyncIterator]: () => gen() }',
    );
  const batchReq = positiveInt('batchSize', opts.batchSize, true) ?? 64;
  const workersReq = positiveInt('workers', opts.workers, true) ?? availableParallelism();
  if (opts.signal?.aborted) throw new AbortError('evaluate() was aborted before it started');
  const prepared: PreparedModel = prepareQuantization(model, { foldBatchNorm: opts.foldBatchNorm });
  checkMasks(opts.masks, prepared.layers, prepared.name);
  const proto = decodeModel(prepared.bytes, prepared.name);
  const inputs: ValueInfo[] = modelInputs(proto);
  const batchSize = effectiveBatch(inputs, batchReq);
  const source = openData(opts.data, { inputs }, { batchSize, maxSamples: opts.maxSamples });
  // one sample through the float model: the head's size per sample
  const floatModel = shared(prepared.bytes);
  const probeSession = await createSession(prepared.bytes, prepared.name);
  let size = 0;
  try {
    const probe = openData(opts.data, { inputs }, { batchSize: 1, maxSamples: 1 });
    for await (const b of probe.batches()) {
      const out = proto.graph!.output[0]!.name;
      size = outputData((await probeSession.run(feeds(b.inputs, inputs), [out]))[out]!).length;
      break;
    }
  } finally {
    await probeSession.release();
  }
  const head = detectHead(proto, size, opts.likelihood ?? 'auto', source.labelsKind);
  const total = source.samples;
  const batches = total === undefined ? workersReq : Math.ceil(total / batchSize);
  // workers open the data themselves: arrays and .npy paths; an iterable runs on this thread
  const workers = source.ranges ? Math.max(1, Math.min(workersReq, batches)) : 1;
  const cache =
    total !== undefined && total * size * 4 <= CACHE_LIMIT
      ? { values: new Float32Array(new SharedArrayBuffer(total * size * 4)), filled: new Int32Array(new SharedArrayBuffer(4)) }
      : undefined;
  const pool = workers > 1 ? evalPool(workers) : undefined;
  // in-memory data moved to shared memory once, not copied to every worker on every pass
  const data = workers > 1 ? shareData(opts.data) : opts.data;
  let ranges: Map<string, Range> | undefined;
  let closed = false;

  const rangesFor = async (needed: PreparedModel['layers']): Promise<Map<string, Range>> => {
    if (!needed.length) return new Map();
    if (!ranges) ranges = await resolveRanges(prepared, prepared.layers, { ...opts, calibration: opts.calibration ?? opts.data, batchSize });
    return ranges;
  };

  const pass = async (models: SharedModel[]): Promise<MetricAcc[]> => {
    const base = { float: floatModel, models, data, inputs, batchSize, maxSamples: opts.maxSamples, head, workers, cache };
    let done = 0;
    const onBatch = (n: number) => {
      done += n;
      opts.onProgress?.({ samples: done, total });
    };
    let shards: MetricAcc[][];
    if (!pool) {
      shards = [await runShard({ ...base, worker: 0 }, (n) => {
        if (opts.signal?.aborted) throw new AbortError('evaluate() was aborted');
        onBatch(n);
      })];
    } else {
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const onAbort = () => Atomics.store(flag, 0, 1);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        // Every task settles before this returns (a failing worker stops the others through the
        // flag): a pool destroyed while a worker is inside onnxruntime's native code would abort
        // the process.
        const settled = await Promise.allSettled(
          Array.from({ length: workers }, (_, w) => {
            const { port1, port2 } = new MessageChannel();
            port1.on('message', onBatch);
            const task: EvalTask = { ...base, worker: w, port: port2, flag };
            return pool
              .run(task, { transferList: [port2] as never })
              .catch((e: unknown) => {
                Atomics.store(flag, 0, 1);
                throw e;
              })
              .finally(() => port1.close());
          }),
        );
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        shards = settled.map((r) => (r as PromiseFulfilledResult<MetricAcc[]>).value);
      } catch (e) {
        if (opts.signal?.aborted && !(e instanceof AbortError)) throw new AbortError('evaluate() was aborted', { cause: e });
        throw restoreWorkerError(e);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }
    if (cache) Atomics.store(cache.filled, 0, 1);
    return models.map((_, k) => shards.map((s) => s[k]!).reduce(mergeAcc));
  };

  const evaluateMany = async (configs: QuantConfig[], call: EvaluateCallOptions = {}): Promise<EvaluationResult[]> => {
    if (closed) throw new InvalidOptionError('Expected an open evaluator but received one that was closed');
    if (!Array.isArray(configs)) throw new InvalidOptionError(`Expected an array of configurations but received ${typeof configs}`);
    const names = prepared.layers.map((l) => l.name);
    const checked = configs.map((c) => checkConfig(c, names, prepared.name, prepared.notQuantizable));
    if (Array.isArray(call.masks) && call.masks.length !== configs.length)
      throw new InvalidOptionError(`Expected one mask set per configuration (${configs.length}) for option masks but received ${call.masks.length}`);
    const masksOf = (k: number): WeightMasks | undefined => (call.masks === undefined ? opts.masks : Array.isArray(call.masks) ? call.masks[k] : call.masks);
    configs.forEach((_, k) => checkMasks(masksOf(k), prepared.layers, prepared.name));
    const out: EvaluationResult[] = [];
    for (let i = 0; i < configs.length; i += MODELS_PER_PASS) {
      if (opts.signal?.aborted) throw new AbortError('evaluate() was aborted');
      const chunk = configs.slice(i, i + MODELS_PER_PASS);
      const models: SharedModel[] = [];
      for (let k = 0; k < chunk.length; k++) {
        const needed = prepared.layers.filter((l) => checked[i + k]!.activations.has(l.name));
        const r = await rangesFor(needed);
        const masks = masksOf(i + k);
        models.push(shared(applyConfig(prepared, chunk[k]!, { format: 'fake-quant', perChannel: opts.perChannel, masks }, r).bytes));
      }
      const accs = await pass(models);
      await releaseSessions(models.map((m) => m.id));
      accs.forEach((a, k) => out.push({ config: chunk[k]!, ...finish(a, head) }));
    }
    return out;
  };

  return {
    model: prepared.name,
    samples: total,
    head,
    evaluateMany,
    evaluate: async (config, o) => (await evaluateMany([config], o?.masks === undefined ? {} : { masks: o.masks }))[0]!,
    close: async () => {
      if (closed) return;
      closed = true;
      await releaseSessions([floatModel.id]);
      await pool?.destroy();
    },
  };
}

/** Evaluates one configuration (see the module comment). */
export async function evaluate(model: string | Uint8Array, config: QuantConfig, opts: EvaluateOptions): Promise<EvaluationResult> {
  return (await evaluateMany(model, [config], opts))[0]!;
}

/** Evaluates many configurations with one float run, one calibration and one pool. */
export async function evaluateMany(model: string | Uint8Array, configs: QuantConfig[], opts: EvaluateOptions): Promise<EvaluationResult[]> {
  const ev = await createEvaluator(model, opts);
  try {
    return await ev.evaluateMany(configs);
  } finally {
    await ev.close();
  }
}

