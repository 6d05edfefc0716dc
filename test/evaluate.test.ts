/** evaluate / evaluateMany: real accuracy of quantized configurations with onnxruntime-node. */
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, toFloat32 } from '../src/data/npy.js';
import { makeModel } from '../src/onnx/build.js';
import { exportModel } from '../src/onnx/write.js';
import { createEvaluator, evaluate, evaluateMany } from '../src/eval/evaluate.js';
import { accumulate, emptyAcc, finish, type Head } from '../src/eval/metrics.js';
import { AbortError, InvalidOptionError } from '../src/errors.js';
import { randomFloats } from './helpers/random.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-eval-'));
const CNN = 'assets/demo/cnn.onnx';
const data = { input: 'assets/demo/calib_x.npy', labels: 'assets/demo/calib_y.npy' };
const LAYERS = ['conv1', 'conv2', 'fc1', 'fc2'];
const all = (b: number) => Object.fromEntries(LAYERS.map((l) => [l, b]));

/** top-1 accuracy of a model file on the demo data, straight through onnxruntime-node */
async function ortAccuracy(path: string): Promise<number> {
  const x = readNpy(data.input);
  const y = readNpy(data.labels);
  const xs = toFloat32(x);
  const s = await ort.InferenceSession.create(readFileSync(path), { intraOpNumThreads: 1 });
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  let correct = 0;
  for (let start = 0; start < x.dims[0]!; start += 64) {
    const n = Math.min(64, x.dims[0]! - start);
    const r = await s.run({ input: new ort.Tensor('float32', xs.subarray(start * per, (start + n) * per), [n, ...x.dims.slice(1)]) });
    const out = r.logits!.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const row = Array.from(out.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === Number(y.data[start + i])) correct++;
    }
  }
  await s.release();
  return correct / x.dims[0]!;
}

t.test('demo CNN: float, 8-bit, 4-bit and 2-bit weights (measured)', async (t) => {
  const [f, q8, w4, w2, a4] = await evaluateMany(
    CNN,
    [{}, { weights: all(8), activations: all(8) }, { weights: all(4) }, { weights: all(2) }, { activations: all(4) }],
    { data, workers: 2 },
  );
  t.equal(f!.samples, 512);
  t.equal(f!.likelihood, 'categorical');
  t.equal(f!.floatAccuracy, 471 / 512, 'float top-1 91.99%');
  t.equal(f!.accuracy, f!.floatAccuracy);
  t.equal(f!.agreement, 1);
  t.equal(f!.kl, 0);
  t.ok(Math.abs(q8!.accuracy! - q8!.floatAccuracy!) <= 0.01, `8-bit everywhere within 1 point (${q8!.accuracy})`);
  t.equal(q8!.accuracy, 472 / 512, '8-bit: 92.19%');
  t.ok(q8!.agreement! > 0.99 && q8!.kl! < 1e-3);
  t.equal(w4!.accuracy, 464 / 512, '4-bit weights: 90.63%');
  t.equal(w2!.accuracy, 81 / 512, '2-bit weights: 15.82%');
  t.ok(w2!.accuracy! < f!.floatAccuracy! - 0.5, '2-bit weights everywhere drop it a lot');
  t.ok(w2!.kl! > 1 && w2!.agreement! < 0.3);
  t.ok(a4!.accuracy! > 0.85 && a4!.accuracy! < f!.floatAccuracy!, `4-bit activations: ${a4!.accuracy}`);
  t.ok(w4!.kl! < w2!.kl! && q8!.kl! < w4!.kl!, 'KL grows as bits shrink');
});

t.test("evaluate's accuracy equals the exported model run through onnxruntime", async (t) => {
  for (const [i, config] of [{ weights: all(4), activations: all(6) }, { weights: { conv1: 3, fc1: 2 }, activations: { conv2: 4 } }].entries()) {
    const r = await evaluate(CNN, config, { data, workers: 1, batchSize: 64 });
    const out = join(dir, `cnn-${i}.onnx`);
    await exportModel(CNN, config, out, { format: 'fake-quant', calibration: data, batchSize: 64 });
    t.equal(r.accuracy, await ortAccuracy(out), `config ${i}: ${r.accuracy}`);
    t.equal(r.floatAccuracy, await ortAccuracy(CNN));
  }
});

t.test('per-channel weights help at 3 bits; workers do not change the numbers', async (t) => {
  const config = { weights: all(3) };
  const [one, two, pc] = [
    await evaluate(CNN, config, { data, workers: 1 }),
    await evaluate(CNN, config, { data, workers: 3, batchSize: 50 }),
    await evaluate(CNN, config, { data, perChannel: true, workers: 1 }),
  ];
  t.equal(two.accuracy, one.accuracy);
  t.equal(two.agreement, one.agreement);
  t.ok(Math.abs(two.kl! - one.kl!) < 1e-9);
  t.ok(pc.kl! < one.kl!, `per-channel KL ${pc.kl} < per-tensor ${one.kl}`);
});

t.test('without labels: agreement and KL only', async (t) => {
  const [f, q] = await evaluateMany(CNN, [{}, { weights: all(4) }], { data: { input: data.input }, workers: 2, maxSamples: 200 });
  t.equal(f!.samples, 200);
  t.equal(f!.accuracy, null);
  t.equal(f!.floatAccuracy, null);
  t.equal(f!.agreement, 1);
  t.ok(f!.kl! < 1e-12);
  t.ok(q!.agreement! < 1 && q!.agreement! > 0.8);
  t.ok(q!.kl! > 0);
});

t.test('createEvaluator reuses the float run, calibration and pool', async (t) => {
  let progress = 0;
  const ev = await createEvaluator(CNN, { data, workers: 2, onProgress: (p) => (progress = Math.max(progress, p.samples)) });
  t.equal(ev.samples, 512);
  t.same(ev.head, { output: 'logits', kind: 'categorical', form: 'logits', size: 10 });
  const a = await ev.evaluate({ weights: all(4) });
  const many = await ev.evaluateMany(Array.from({ length: 10 }, (_, i) => ({ weights: { fc1: 2 + (i % 5) } })));
  const b = await ev.evaluate({ weights: all(4) });
  t.same(b, a, 'the same numbers from the cached float outputs');
  t.equal(many.length, 10);
  t.same(many[5], many[0]);
  t.ok(many[0]!.kl! > many[4]!.kl!, '2-bit fc1 is worse than 6-bit fc1');
  t.equal(progress, 512);
  await t.rejects(ev.evaluate({ weights: { fc3: 4 } }), { name: 'InvalidOptionError', message: /'fc3'/ });
  await ev.close();
  await t.rejects(ev.evaluate({}), InvalidOptionError);
});

t.test('options and abort', async (t) => {
  await t.rejects(evaluate(CNN, { weights: { conv9: 4, fc1: 4 } }, { data }), { name: 'InvalidOptionError', message: /'conv9'/ });
  await t.rejects(evaluate(CNN, {}, { data, workers: 0 }), { message: 'Expected a positive integer for option workers but received 0' });
  await t.rejects(evaluate(CNN, {}, undefined as never), InvalidOptionError);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(evaluate(CNN, {}, { data, signal: ac.signal }), AbortError);
  const ac2 = new AbortController();
  const p = evaluate(CNN, { weights: all(4) }, { data, workers: 2, batchSize: 8, signal: ac2.signal, onProgress: () => ac2.abort() });
  await t.rejects(p, AbortError);
});

t.test('other heads: sigmoid (bernoulli) and regression (gaussian)', async (t) => {
  const N = 40;
  const W = randomFloats(8, 1, -1, 1);
  const x = { dims: [N, 4], data: randomFloats(N * 4, 2, -1, 1) };
  const spec = (op?: string) => ({
    opset: 13,
    inputs: [{ name: 'x', dims: ['N', 4] }],
    outputs: [{ name: 'y' }],
    initializers: [{ name: 'W', dims: [4, op ? 1 : 2], type: 'float32', data: op ? W.subarray(0, 4) : W }],
    nodes: [
      { op: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: [op ? 'z' : 'y'] },
      ...(op ? [{ op, name: 'act', inputs: ['z'], outputs: ['y'] }] : []),
    ],
  });
  const sig = makeModel(spec('Sigmoid'));
  const labels = { dims: [N], data: BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 2)) };
  const [bf, bq] = await evaluateMany(sig, [{}, { weights: { mm: 2 } }], { data: { input: x, labels } });
  t.equal(bf!.likelihood, 'bernoulli');
  t.equal(bf!.agreement, 1);
  t.ok(bq!.kl! > 0);
  t.ok(bf!.accuracy! >= 0 && bf!.accuracy! <= 1);
  // by hand: p = sigmoid(x . W[0:4]), the decision p > 0.5 against the label i % 2
  let correct = 0;
  let edge = Infinity;
  for (let i = 0; i < N; i++) {
    let z = 0;
    for (let k = 0; k < 4; k++) z += x.data[i * 4 + k]! * W[k]!;
    const p = 1 / (1 + Math.exp(-z));
    edge = Math.min(edge, Math.abs(z));
    if (p > 0.5 === (i % 2 === 1)) correct++;
  }
  t.ok(edge > 1e-4, `no decision on the edge (min |z| = ${edge}): float32 rounding cannot flip one`);
  t.ok(correct > 0 && correct < N, `${correct} of ${N} right: neither all nor none`);
  t.equal(bf!.accuracy, correct / N, `float model, {} config: accuracy ${correct}/${N} by hand`);
  t.equal(bf!.floatAccuracy, correct / N, `float accuracy ${correct}/${N} by hand`);
  const reg = makeModel(spec());
  const targets = { dims: [N, 2], data: randomFloats(N * 2, 3) };
  const [gf, gq] = await evaluateMany(reg, [{}, { weights: { mm: 3 } }], { data: { input: x, labels: targets } });
  t.equal(gf!.likelihood, 'gaussian');
  t.equal(gf!.accuracy, null);
  t.equal(gf!.mse, gf!.floatMse);
  // by hand: mean over the N x 2 outputs of ((x W)[i, o] - target[i, o])^2, W stored [4, 2]
  let sq = 0;
  for (let i = 0; i < N; i++)
    for (let o = 0; o < 2; o++) {
      let y = 0;
      for (let k = 0; k < 4; k++) y += x.data[i * 4 + k]! * W[k * 2 + o]!;
      sq += (y - targets.data[i * 2 + o]!) ** 2;
    }
  const mse = sq / (N * 2);
  t.ok(mse > 0.01, `a non-trivial error (${mse})`);
  t.ok(Math.abs(gf!.mse! - mse) <= 1e-6 * mse, `mse ${gf!.mse} = ${mse} by hand`);
  t.ok(Math.abs(gf!.floatMse! - mse) <= 1e-6 * mse, `floatMse ${gf!.floatMse} = ${mse} by hand`);
  t.ok(gq!.mse! > 0 && gq!.outputMse > 0);
  t.equal(gf!.outputMse, 0);
});

t.test('metrics by hand', async (t) => {
  const head: Head = { output: 'y', kind: 'categorical', form: 'logits', size: 2 };
  const acc = emptyAcc();
  // float p = softmax([0, 0]) = [.5, .5]; quant p = softmax([ln 3, 0]) = [.75, .25]
  accumulate(acc, head, 1, Float32Array.of(0, 0), Float32Array.of(Math.log(3), 0), BigInt64Array.of(0n));
  const m = finish(acc, head);
  t.ok(Math.abs(m.kl! - (0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(0.5 / 0.25))) < 1e-7);
  t.equal(m.accuracy, 1, 'argmax of the quantized output is class 0');
  t.equal(m.floatAccuracy, 1, 'a tie takes the first class');
});
