/** Weights and in-memory data cross to workers once, in SharedArrayBuffers; pools are reused. */
import t from 'tap';
import { shareArray, shareData, shareGraphs, isShared } from '../src/engine/share.js';
import { acquirePool, releasePool, closeWorkers } from '../src/engine/pool.js';
import { EngineCache, shapesKey, type PassOptions } from '../src/fisher/accumulate.js';
import { readModel } from '../src/onnx/read.js';
import { sensitivity } from '../src/fisher/sensitivity.js';

const demo = new URL('../assets/demo/cnn.onnx', import.meta.url).pathname;
const pass: PassOptions = { estimator: 'sampled', likelihood: 'auto', mcSamples: 1, seed: 1, foldBatchNorm: true };

t.test('shareArray copies into shared memory once, keeping type and values', async (t) => {
  const a = Float32Array.from([1.5, -2, 3.25]);
  const s = shareArray(a);
  t.ok(isShared(s) && !isShared(a));
  t.ok(s instanceof Float32Array);
  t.same([...s], [1.5, -2, 3.25]);
  t.equal(shareArray(s), s, 'an already shared array is not copied again');
  const b = shareArray(BigInt64Array.from([5n, -7n]));
  t.same([...b], [5n, -7n]);
  t.ok(isShared(b));
});

t.test('graphs prepared for two batch sizes share one buffer per weight', async (t) => {
  const cache = new EngineCache(readModel(demo), pass);
  const g8 = cache.graph({ input: [8, 1, 28, 28] });
  const g3 = cache.graph({ input: [3, 1, 28, 28] });
  const names = [...g8.graph.initializers.keys()].filter((n) => g8.graph.initializers.get(n)!.type === 'float32');
  t.ok(names.length >= 4, `the demo CNN has float weights (${names.length})`);
  const before = g8.graph.initializers.get(names[0]!)!.data.slice();
  shareGraphs([g8.graph, g3.graph]);
  for (const n of names) {
    const a = g8.graph.initializers.get(n)!;
    const b = g3.graph.initializers.get(n)!;
    t.ok(isShared(a.data), `${n} is in shared memory`);
    t.equal(a, b, `${n} is one tensor for both batch sizes`);
  }
  t.same([...g8.graph.initializers.get(names[0]!)!.data], [...before], 'values unchanged');
  // A worker's cache built from the shared graphs runs without the model and equals the original.
  const x = new Float32Array(3 * 28 * 28).map((_, i) => Math.sin(i));
  const key = shapesKey({ input: [3, 1, 28, 28] });
  const worker = new EngineCache(undefined, pass, { [key]: g3 });
  const fresh = new EngineCache(readModel(demo), pass);
  const a = worker.get({ input: [3, 1, 28, 28] }).engine.run({ input: { dims: [3, 1, 28, 28], data: x } });
  const b = fresh.get({ input: [3, 1, 28, 28] }).engine.run({ input: { dims: [3, 1, 28, 28], data: x } });
  const ya = Object.values(a)[0]!.data as Float32Array;
  const yb = Object.values(b)[0]!.data as Float32Array;
  t.equal(ya.length, 30);
  t.same([...ya], [...yb]);
  t.throws(() => worker.get({ input: [5, 1, 28, 28] }), { code: 'ERR_ENGINE_INTERNAL', message: /No graph was prepared/ });
  worker.dispose();
  fresh.dispose();
  cache.dispose();
});

t.test('shareData moves in-memory arrays, leaves paths alone', async (t) => {
  const x = new Float32Array(12);
  const y = BigInt64Array.from([0n, 1n, 2n]);
  const s = shareData({ input: { dims: [3, 4], data: x }, labels: { dims: [3], data: y } }) as {
    input: { data: Float32Array; dims: number[] };
    labels: { data: BigInt64Array };
  };
  t.ok(isShared(s.input.data) && isShared(s.labels.data));
  t.same(s.input.dims, [3, 4]);
  const named = shareData({ input: { a: { dims: [3, 4], data: x }, b: 'b.npy' } }) as { input: Record<string, unknown> };
  t.ok(isShared((named.input.a as { data: Float32Array }).data));
  t.equal(named.input.b, 'b.npy');
  const paths = shareData({ input: 'x.npy', labels: 'y.npy' });
  t.same(paths, { input: 'x.npy', labels: 'y.npy' });
});

t.test('a pool is reused by the next run and destroyed at once when asked', async (t) => {
  const p1 = acquirePool(2);
  await releasePool(p1);
  const p2 = acquirePool(2);
  t.equal(p2, p1, 'the idle pool is handed to the next run');
  const p3 = acquirePool(2);
  t.equal(p3, p1, 'concurrent runs share it');
  await releasePool(p3, { destroy: true });
  t.equal(p1.threads.length, 2, 'its workers live on while another run uses it');
  await releasePool(p2, { destroy: true });
  t.equal(p1.threads.length, 0, 'destroyed once the last run asks');
  const p4 = acquirePool(2);
  t.not(p4, p1, 'a destroyed pool is not handed out again');
  await releasePool(p4);
  await closeWorkers();
  const p5 = acquirePool(2);
  t.not(p5, p4, 'closeWorkers destroyed the idle pool');
  await releasePool(p5, { destroy: true });
});

t.test('two runs on 2 workers with shared weights give identical reports', async (t) => {
  const data = { input: readNpyPath('calib_x.npy'), labels: readNpyPath('calib_y.npy') };
  const opts = { data, workers: 2, batchSize: 50, maxSamples: 130, tolerance: 0 };
  const a = await sensitivity(demo, opts);
  const b = await sensitivity(demo, opts);
  const c = await sensitivity(demo, { ...opts, workers: 1 });
  t.equal(a.samples, 130);
  a.layers.forEach((l, i) => {
    t.equal(l.weight.fisherTrace, b.layers[i]!.weight.fisherTrace);
    t.ok(Math.abs(l.weight.fisherTrace - c.layers[i]!.weight.fisherTrace) <= 1e-9 * c.layers[i]!.weight.fisherTrace, `${l.name} 2 workers == 1 worker`);
    t.ok(l.weight.fisherTrace > 0);
  });
  await closeWorkers();
});

function readNpyPath(f: string): string {
  return new URL(`../assets/demo/${f}`, import.meta.url).pathname;
}
