/** fit.sensitivity(): closed forms, per-sample exactness, the batch estimator, real models. */
import t from 'tap';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { makeModel } from '../src/onnx/build.js';
import { rng, syntheticPage } from './helpers/random.js';
import { MODELS } from './helpers/models.js';
import { InvalidOptionError } from '../src/errors.js';

const N = 24;
const D = 5;
const C = 3;
const r = rng(77);
const W = Array.from({ length: C * D }, () => r() - 0.5);
const X = Float32Array.from({ length: N * D }, () => 2 * r() - 1);
const Y = BigInt64Array.from({ length: N }, (_, i) => BigInt(i % C));

/** x [N, D] -> Gemm (W [C, D], transB) -> Softmax */
const linearSoftmax = makeModel({
  opset: 13,
  inputs: [{ name: 'x', elemType: 'float32', dims: ['N', D] }],
  outputs: [{ name: 'p' }],
  initializers: [{ name: 'W', dims: [C, D], type: 'float32', data: W }],
  nodes: [
    { op: 'Gemm', name: 'fc', inputs: ['x', 'W'], outputs: ['z'], attrs: { transB: 1 } },
    { op: 'Softmax', name: 'sm', inputs: ['z'], outputs: ['p'], attrs: { axis: 1 } },
  ],
});

function softmaxRow(i: number): number[] {
  const z = Array.from({ length: C }, (_, c) => W.slice(c * D, (c + 1) * D).reduce((s, w, d) => s + w * X[i * D + d]!, 0));
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

t.test('empirical Fisher of a linear softmax model equals the closed form', async (t) => {
  const report = await sensitivity(linearSoftmax, { data: { input: { dims: [N, D], data: X }, labels: { dims: [N], data: Y } }, batchSize: 8, tolerance: 0 });
  t.equal(report.estimator, 'empirical');
  t.equal(report.likelihood, 'categorical');
  t.equal(report.samples, N);
  let trW = 0;
  let trA = 0;
  const diag = new Float64Array(C * D);
  for (let i = 0; i < N; i++) {
    const p = softmaxRow(i);
    const delta = p.map((v, c) => v - (c === Number(Y[i]) ? 1 : 0));
    let xx = 0;
    for (let d = 0; d < D; d++) xx += X[i * D + d]! ** 2;
    trW += delta.reduce((s, v) => s + v * v, 0) * xx;
    for (let c = 0; c < C; c++) for (let d = 0; d < D; d++) diag[c * D + d]! += (delta[c]! * X[i * D + d]!) ** 2;
    for (let d = 0; d < D; d++) {
      let g = 0;
      for (let c = 0; c < C; c++) g += delta[c]! * W[c * D + d]!;
      trA += g * g;
    }
  }
  trW /= N;
  trA /= N;
  const layer = report.layers[0]!;
  t.equal(layer.name, 'fc');
  t.equal(layer.weight.name, 'W');
  t.ok(Math.abs(layer.weight.fisherTrace - trW) < 1e-5 * trW, `weight trace ${layer.weight.fisherTrace} vs closed form ${trW}`);
  t.ok(Math.abs(layer.activation.fisherTrace - trA) < 1e-5 * trA, `activation trace ${layer.activation.fisherTrace} vs closed form ${trA}`);
  for (let j = 0; j < C * D; j++) t.ok(Math.abs(layer.weight.fisherDiagonal[j]! - diag[j]! / N) < 1e-5 * (trW / (C * D)) + 1e-9, `diag[${j}]`);
  const channels = [0, 1, 2].map((c) => Array.from(diag.slice(c * D, (c + 1) * D)).reduce((a, b) => a + b, 0) / N);
  t.ok(layer.weight.channelTraces.every((v, c) => Math.abs(v - channels[c]!) < 1e-5 * trW), 'per-output-channel traces');
  t.equal(layer.weight.min, Math.min(...W.map((v) => Math.fround(v))));
  t.equal(layer.activation.min, Math.min(...X));
  t.ok(layer.weight.stdError! > 0 && layer.activation.stdError! > 0, 'standard errors are estimated');
  const json = report.toJSON();
  t.same(Object.keys(json), ['version', 'model', 'estimator', 'likelihood', 'samples', 'foldBatchNorm', 'layers']);
  t.same(Object.keys(json.layers[0]!.weight), ['name', 'count', 'min', 'max', 'fisherTrace', 'stdError']);
  // FIT of a configuration: Tr F_w * Delta^2 / 12 with Delta = max|w| / (2^(b-1) - 1)
  const maxAbs = Math.max(...W.map((v) => Math.abs(Math.fround(v))));
  t.ok(Math.abs(report.fit({ weights: { fc: 4 } }) - (layer.weight.fisherTrace * (maxAbs / 7) ** 2) / 12) < 1e-12);
  t.throws(() => report.fit({ weights: { nope: 4 } }), InvalidOptionError);
});

t.test('per-sample Fisher from batches of 8 equals a batch-1 loop', async (t) => {
  const data = { input: { dims: [N, D], data: X }, labels: { dims: [N], data: Y } };
  const a = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0 });
  const b = await sensitivity(linearSoftmax, { data, batchSize: 1, tolerance: 0 });
  const la = a.layers[0]!;
  const lb = b.layers[0]!;
  t.ok(Math.abs(la.weight.fisherTrace - lb.weight.fisherTrace) < 1e-6 * lb.weight.fisherTrace);
  t.ok(Math.abs(la.activation.fisherTrace - lb.activation.fisherTrace) < 1e-6 * lb.activation.fisherTrace);
  for (let j = 0; j < la.weight.fisherDiagonal.length; j++)
    t.ok(Math.abs(la.weight.fisherDiagonal[j]! - lb.weight.fisherDiagonal[j]!) <= 1e-6 * lb.weight.fisherTrace, `diag[${j}]`);
});

t.test('the batch estimator equals its definition', async (t) => {
  const B = 6;
  const report = await sensitivity(linearSoftmax, { data: { input: { dims: [N, D], data: X }, labels: { dims: [N], data: Y } }, batchSize: B, estimator: 'batch', tolerance: 0 });
  let total = 0;
  for (let k = 0; k < N / B; k++) {
    const g = new Float64Array(C * D); // gradient of the mean loss of batch k
    for (let i = k * B; i < (k + 1) * B; i++) {
      const p = softmaxRow(i);
      for (let c = 0; c < C; c++) for (let d = 0; d < D; d++) g[c * D + d]! += ((p[c]! - (c === Number(Y[i]) ? 1 : 0)) * X[i * D + d]!) / B;
    }
    total += B * g.reduce((s, v) => s + v * v, 0);
  }
  const want = total / (N / B);
  t.equal(report.estimator, 'batch');
  t.ok(Math.abs(report.layers[0]!.weight.fisherTrace - want) < 1e-5 * want, `${report.layers[0]!.weight.fisherTrace} vs ${want}`);
});

t.test('label-free (sampled) Fisher approaches the analytic Fisher as mcSamples grows', async (t) => {
  // analytic: E_y~p [ ||p - e_y||^2 ] ||x||^2 = (1 - sum p^2) ||x||^2
  let want = 0;
  for (let i = 0; i < N; i++) {
    const p = softmaxRow(i);
    let xx = 0;
    for (let d = 0; d < D; d++) xx += X[i * D + d]! ** 2;
    want += (1 - p.reduce((s, v) => s + v * v, 0)) * xx;
  }
  want /= N;
  const errs: number[] = [];
  for (const mc of [1, 16, 256]) {
    const rep = await sensitivity(linearSoftmax, { data: { input: { dims: [N, D], data: X } }, batchSize: 8, tolerance: 0, mcSamples: mc, seed: 3 });
    t.equal(rep.estimator, 'sampled');
    errs.push(Math.abs(rep.layers[0]!.weight.fisherTrace - want) / want);
  }
  t.ok(errs[2]! < 0.03, `relative error with 256 draws: ${errs[2]}`);
  t.ok(errs[2]! < errs[0]!, `error shrinks with more draws (${errs.map((e) => e.toFixed(4)).join(' -> ')})`);
});

t.test('empirical without labels is a clear error', async (t) => {
  await t.rejects(sensitivity(linearSoftmax, { data: { input: { dims: [N, D], data: X } }, estimator: 'empirical' }), InvalidOptionError);
  await t.rejects(sensitivity(linearSoftmax, { data: { input: { dims: [N, D], data: X } }, batchSize: 0 }), /Expected a positive integer for option batchSize/);
});

t.test('PP-OCR cls, label-free: finite positive traces for every quantizable layer', async (t) => {
  const n = 4;
  const report = await sensitivity(MODELS.ocrCls, {
    data: { input: { dims: [n, 3, 48, 96], data: syntheticPage(n, 48, 96, 5) } },
    inputShapes: { x: [2, 3, 48, 96] },
    batchSize: 2,
    tolerance: 0,
  });
  t.equal(report.layers.length, 54);
  t.equal(report.likelihood, 'categorical');
  t.ok(report.layers.every((l) => Number.isFinite(l.weight.fisherTrace) && l.weight.fisherTrace > 0), 'weight traces finite and positive');
  t.ok(report.layers.every((l) => Number.isFinite(l.activation.fisherTrace) && l.activation.fisherTrace > 0), 'activation traces finite and positive');
  t.equal(report.rank()[0]!.weight.fisherTrace, Math.max(...report.layers.map((l) => l.weight.fisherTrace)));
});
