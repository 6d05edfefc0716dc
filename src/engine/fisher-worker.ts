/**
 * Piscina task: a shard of the Fisher pass on this worker's own engines. The graphs arrive
 * prepared by the main thread with their weights in SharedArrayBuffers, so every worker's engine
 * borrows the same weight memory and no worker reads or normalizes the model again.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ValueInfo } from '../onnx/types.js';
import { openData, shard, type DataSpec } from '../data/source.js';
import { EngineCache, runPass, type PassOptions, type PreparedGraph, type ShardResult } from '../fisher/accumulate.js';

export interface FisherTask {
  /** prepared graphs by input-shapes key (fisher/accumulate.ts shapesKey) */
  graphs: Record<string, PreparedGraph>;
  /** the model's declared inputs, to open and check the data */
  inputs: ValueInfo[];
  data: DataSpec;
  batchSize: number;
  maxSamples?: number;
  pass: PassOptions;
  worker: number;
  workers: number;
  port: MessagePort;
  /** Int32Array over a SharedArrayBuffer: 0 run, 1 stop (converged), 2 abort */
  flag: Int32Array;
}

export default async function fisherTask(task: FisherTask): Promise<ShardResult | undefined> {
  const data = shard(openData(task.data, { inputs: task.inputs }, { batchSize: task.batchSize, maxSamples: task.maxSamples }), task.worker, task.workers);
  const cache = new EngineCache(undefined, task.pass, task.graphs);
  try {
    return await runPass(
      cache,
      data.batches(),
      task.pass,
      (engine, inputs, req) => engine.gradients(inputs, req),
      (r) => task.port.postMessage(r),
      () => {
        const f = Atomics.load(task.flag, 0);
        return f === 2 ? 'abort' : f === 1 ? 'stop' : undefined;
      },
    );
  } finally {
    cache.dispose();
    task.port.close();
  }
}
