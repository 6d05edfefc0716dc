/**
 * Piscina task: one shard of an evaluation pass. For each batch, the float outputs (from the shared
 * cache, or a float run that fills it) and the outputs of every quantized model, accumulated into
 * one metric accumulator per model.
 */
import type { MessagePort } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { AbortError } from '../errors.js';
import { openData, shard, type DataSpec } from '../data/source.js';
import type { ValueInfo } from '../onnx/types.js';
import { accumulate, emptyAcc, type Head, type MetricAcc } from './metrics.js';
import { createSession, feeds, outputData } from './ort-io.js';

export interface SharedModel {
  id: string;
  /** model bytes, in a SharedArrayBuffer */
  bytes: Uint8Array;
}

export interface EvalTask {
  float: SharedModel;
  models: SharedModel[];
  data: DataSpec;
  inputs: ValueInfo[];
  batchSize: number;
  maxSamples?: number;
  head: Head;
  worker: number;
  workers: number;
  /** float outputs of every sample (rows of head.size), shared; `filled[0]` = 1 once complete */
  cache?: { values: Float32Array; filled: Int32Array };
  port?: MessagePort;
  /** Int32Array over a SharedArrayBuffer: 1 = abort */
  flag?: Int32Array;
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();
const MAX_SESSIONS = 12;

function session(m: SharedModel): Promise<ort.InferenceSession> {
  let s = sessions.get(m.id);
  if (!s) {
    s = createSession(new Uint8Array(m.bytes), 'the quantized model');
    sessions.set(m.id, s);
    s.catch(() => sessions.delete(m.id));
    while (sessions.size > MAX_SESSIONS) {
      const [oldest, p] = sessions.entries().next().value as [string, Promise<ort.InferenceSession>];
      sessions.delete(oldest);
      void p.then((x) => x.release()).catch(() => undefined);
    }
  }
  return s;
}

/** Drops cached sessions of these model ids. */
export async function releaseSessions(ids: string[]): Promise<void> {
  for (const id of ids) {
    const s = sessions.get(id);
    sessions.delete(id);
    if (s) await s.then((x) => x.release()).catch(() => undefined);
  }
}

export async function runShard(task: EvalTask, onBatch?: (samples: number) => void): Promise<MetricAcc[]> {
  const src = shard(openData(task.data, { inputs: task.inputs }, { batchSize: task.batchSize, maxSamples: task.maxSamples }), task.worker, task.workers);
  const cached = task.cache && Atomics.load(task.cache.filled, 0) === 1;
  // all sessions settle before a failure propagates (no native work left running)
  const opened = await Promise.allSettled([cached ? undefined : session(task.float), ...task.models.map(session)]);
  const bad = opened.find((r) => r.status === 'rejected');
  if (bad) throw (bad as PromiseRejectedResult).reason;
  const [floatSession, ...quant] = opened.map((r) => (r as PromiseFulfilledResult<ort.InferenceSession | undefined>).value);
  if (quant.some((q) => !q)) throw new Error('internal: a quantized session is missing');
  const accs = task.models.map(emptyAcc);
  const out = task.head.output;
  const n = task.head.size;
  for await (const b of src.batches()) {
    if (task.flag && Atomics.load(task.flag, 0) === 1) throw new AbortError('evaluate() was aborted');
    const count = b.inputs[task.inputs[0]!.name]!.dims[0]!;
    const f = feeds(b.inputs, task.inputs);
    let float: Float32Array;
    if (cached) float = task.cache!.values.subarray(b.start * n, (b.start + count) * n);
    else {
      float = outputData((await floatSession!.run(f, [out]))[out]!);
      if (task.cache && float.length === count * n) task.cache.values.set(float, b.start * n);
    }
    for (let k = 0; k < quant.length; k++) {
      const q = outputData((await quant[k]!.run(f, [out]))[out]!);
      accumulate(accs[k]!, task.head, count, float, q, b.labels?.data);
    }
    onBatch?.(count);
  }
  return accs;
}

export default async function evalTask(task: EvalTask): Promise<MetricAcc[]> {
  try {
    return await runShard(task, (samples) => task.port?.postMessage(samples));
  } finally {
    task.port?.close();
  }
}
