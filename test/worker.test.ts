/** The addon loads and runs inside worker threads (per-environment state), concurrently. */
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { loadEngineModel } from '../src/engine/load.js';
import { randomFloats } from './helpers/random.js';

const modelPath = fileURLToPath(new URL('../assets/demo/cnn.onnx', import.meta.url));

function runInWorker(dims: number[], data: Float32Array): Promise<{ sync: Float32Array; async: Float32Array; dims: number[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
      workerData: { entry: new URL('./fixtures/engine-worker.ts', import.meta.url).href, modelPath, dims, data },
    });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

t.test('two workers run the engine and match the main thread bit for bit', async (t) => {
  const dims = [3, 1, 28, 28];
  const data = randomFloats(3 * 28 * 28, 11, 0, 1);
  const { engine } = loadEngineModel(modelPath, { batch: 3 });
  const main = engine.run({ input: { dims, data } }).logits!;
  engine.dispose();
  const [a, b] = await Promise.all([runInWorker(dims, data), runInWorker(dims, data)]);
  for (const r of [a!, b!]) {
    t.same(r.dims, [3, 10]);
    t.same(Array.from(r.sync), Array.from(main.data as Float32Array), 'worker sync run equals main thread');
    t.same(Array.from(r.async), Array.from(main.data as Float32Array), 'worker async run equals main thread');
  }
});
