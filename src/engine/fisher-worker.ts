/** Piscina task: a shard of the Fisher pass on this worker's own engine (weights shared). */
import type { MessagePort } from 'node:worker_threads';
import { readModel } from '../onnx/read.js';
import { declaredInputs } from './load.js';
import { openData, shard, type DataSpec } from '../data/source.js';
import { EngineCache, runPass, type PassOptions, type ShardResult } from '../fisher/accumulate.js';

export interface FisherTask {
  source: string | Uint8Array;
  name?: string;
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
  const model = readModel(task.source, { name: task.name });
  const data = shard(openData(task.data, { inputs: declaredInputs(model) }, { batchSize: task.batchSize, maxSamples: task.maxSamples }), task.worker, task.workers);
  const cache = new EngineCache(model, task.pass);
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
