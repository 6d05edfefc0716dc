/** The worker pool: 1 worker == 2 workers, abort stops promptly and leaves no worker behind. */
import t from 'tap';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { makeModel } from '../src/onnx/build.js';
import { AbortError } from '../src/errors.js';
import { rng } from './helpers/random.js';
import { MODELS } from './helpers/models.js';

const N = 96;
const D = 6;
const C = 4;
const r = rng(5);
const W = Array.from({ length: C * D }, () => r() - 0.5);
const X = Float32Array.from({ length: N * D }, () => 2 * r() - 1);
const Y = BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7) % C));
const model = makeModel({
  opset: 13,
  inputs: [{ name: 'x', elemType: 'float32', dims: ['N', D] }],
  outputs: [{ name: 'p' }],
  initializers: [{ name: 'W', dims: [C, D], type: 'float32', data: W }],
  nodes: [
    { op: 'Gemm', name: 'fc', inputs: ['x', 'W'], outputs: ['z'], attrs: { transB: 1 } },
    { op: 'Softmax', name: 'sm', inputs: ['z'], outputs: ['p'], attrs: { axis: 1 } },
  ],
});
const data = { input: { dims: [N, D], data: X }, labels: { dims: [N], data: Y } };
const workerCount = () => process.getActiveResourcesInfo().filter((x) => x === 'Worker' || x === 'MessagePort').length;

t.test('merged results of 2 workers equal a single worker', async (t) => {
  for (const estimator of ['empirical', 'sampled', 'batch'] as const) {
    const one = await sensitivity(model, { data, estimator, batchSize: 8, tolerance: 0, workers: 1 });
    const batches: number[] = [];
    const two = await sensitivity(model, { data, estimator, batchSize: 8, tolerance: 0, workers: 2, onProgress: (p) => batches.push(p.samples) });
    t.equal(two.samples, N, `${estimator}: every sample used`);
    t.same(batches.length, N / 8, `${estimator}: one progress call per batch`);
    const a = one.layers[0]!;
    const b = two.layers[0]!;
    t.ok(Math.abs(a.weight.fisherTrace - b.weight.fisherTrace) <= 1e-6 * a.weight.fisherTrace, `${estimator}: weight trace ${a.weight.fisherTrace} vs ${b.weight.fisherTrace}`);
    t.ok(Math.abs(a.activation.fisherTrace - b.activation.fisherTrace) <= 1e-6 * a.activation.fisherTrace, `${estimator}: activation trace`);
    let worst = 0;
    for (let j = 0; j < a.weight.fisherDiagonal.length; j++) worst = Math.max(worst, Math.abs(a.weight.fisherDiagonal[j]! - b.weight.fisherDiagonal[j]!));
    t.ok(worst <= 1e-6 * a.weight.fisherTrace, `${estimator}: Fisher diagonals agree (max diff ${worst.toExponential(2)})`);
    t.equal(a.activation.min, b.activation.min);
    t.equal(a.activation.max, b.activation.max);
  }
});

t.test('an abort stops the pool promptly and leaves no worker behind', async (t) => {
  const before = workerCount();
  const ac = new AbortController();
  const n = 64;
  const big = Float32Array.from({ length: n * 3 * 48 * 192 }, () => r() * 2 - 1);
  const started = Date.now();
  let seen = 0;
  const run = sensitivity(MODELS.ocrCls, {
    data: { input: { dims: [n, 3, 48, 192], data: big } },
    inputShapes: { x: [2, 3, 48, 192] },
    batchSize: 2,
    tolerance: 0,
    workers: 2,
    signal: ac.signal,
    onProgress: () => {
      seen++;
      if (seen === 2) ac.abort();
    },
  });
  await t.rejects(run, AbortError);
  const elapsed = Date.now() - started;
  t.ok(seen < 32, `stopped after ${seen} of 32 batches (${elapsed} ms)`);
  await new Promise((res) => setTimeout(res, 200));
  t.ok(workerCount() <= before, `no worker or port left (${workerCount()} vs ${before} before)`);
});
