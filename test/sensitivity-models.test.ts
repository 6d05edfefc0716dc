/**
 * fit.sensitivity() beyond the closed forms: BatchNorm folding against the chain rule, real models,
 * bad data, convergence / sample limits, progress and abort.
 */
import t from 'tap';
import type { Test } from 'tap';
import { fileURLToPath } from 'node:url';
import { sensitivity, type SensitivityOptions, type SensitivityProgress } from '../src/fisher/sensitivity.js';
import type { SensitivityReport } from '../src/fisher/report.js';
import { makeModel, type BuildNode } from '../src/onnx/build.js';
import { prepareModel } from '../src/engine/load.js';
import { bnChannelScale, foldBatchNorm, weightChannelScale, type FoldedPair } from '../src/onnx/fold-bn.js';
import { readNpy } from '../src/data/npy.js';
import { AbortError, InvalidInputError, InvalidOptionError, OnnxFitError } from '../src/errors.js';
import { MODELS } from './helpers/models.js';
import { randomFloats, rng, syntheticPage } from './helpers/random.js';

type T = Test;
const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

// ---------------------------------------------------------------------------------------------
// 1. BatchNorm folding and the chain rule

/**
 * W' = W * f elementwise, so dL/dW = dL/dW' * f and F_unfolded = F_folded * f^2 per element.
 * `pairs` are the folds foldBatchNorm makes on this model.
 */
function checkChainRule(t: T, folded: SensitivityReport, unfolded: SensitivityReport, pairs: FoldedPair[], originals: Map<string, Float32Array>): void {
  t.equal(folded.foldBatchNorm, true, 'report.foldBatchNorm is true for the folded run');
  t.equal(unfolded.foldBatchNorm, false, 'report.foldBatchNorm is false for the unfolded run');
  t.equal(folded.toJSON().foldBatchNorm, true);
  t.equal(unfolded.toJSON().foldBatchNorm, false);
  t.equal(folded.samples, unfolded.samples);
  t.same(folded.layers.map((l) => [l.name, l.op, l.weight.name, l.weight.count, l.activation.name, l.activation.count]),
    unfolded.layers.map((l) => [l.name, l.op, l.weight.name, l.weight.count, l.activation.name, l.activation.count]),
    'layer, weight and activation names (and counts) are the same with and without folding');
  const foldedConvs = new Set(pairs.map((p) => p.conv));
  for (let li = 0; li < folded.layers.length; li++) {
    const lf = folded.layers[li]!;
    const lu = unfolded.layers[li]!;
    // the conv's input is upstream of the BN: its activation Fisher is the same either way
    t.ok(relDiff(lf.activation.fisherTrace, lu.activation.fisherTrace) < 1e-4,
      `${lf.name}: activation trace folded ${lf.activation.fisherTrace} == unfolded ${lu.activation.fisherTrace}`);
    t.ok(relDiff(lf.activation.max - lf.activation.min, lu.activation.max - lu.activation.min) < 1e-5, `${lf.name}: activation range unchanged`);
    t.ok(lf.weight.stdError! > 0 && lu.weight.stdError! > 0, `${lf.name}: standard errors estimated`);
    if (!foldedConvs.has(lf.name))
      t.ok(relDiff(lf.weight.fisherTrace, lu.weight.fisherTrace) < 1e-4,
        `${lf.name} (no BN): weight trace folded ${lf.weight.fisherTrace} == unfolded ${lu.weight.fisherTrace}`);
  }
  for (const pair of pairs) {
    const lf = folded.layers.find((l) => l.name === pair.conv)!;
    const lu = unfolded.layers.find((l) => l.name === pair.conv)!;
    t.ok(lf && lu, `layer ${pair.conv} is in both reports`);
    t.equal(lf.weight.name, pair.weight);
    const f = weightChannelScale(pair.op, lf.weight.dims, pair.group, pair.scale);
    const Ff = lf.weight.fisherDiagonal;
    const Fu = lu.weight.fisherDiagonal;
    t.equal(Ff.length, f.length);
    t.equal(Fu.length, f.length);
    let predicted = 0;
    let worst = 0;
    let maxU = 0;
    for (let j = 0; j < f.length; j++) maxU = Math.max(maxU, Fu[j]!);
    for (let j = 0; j < f.length; j++) {
      const want = Ff[j]! * f[j]! * f[j]!;
      predicted += want;
      worst = Math.max(worst, Math.abs(Fu[j]! - want) / (Math.abs(Fu[j]!) + 1e-6 * maxU));
    }
    t.ok(worst < 2e-3, `${pair.conv}: F_unfolded = F_folded * f^2 elementwise (worst rel. deviation ${worst.toExponential(2)})`);
    t.ok(relDiff(lu.weight.fisherTrace, predicted) < 1e-4,
      `${pair.conv}: unfolded trace ${lu.weight.fisherTrace.toPrecision(8)} == sum(F_folded f^2) ${predicted.toPrecision(8)}`);
    // BN is non-trivial: the factors spread, and the two diagonals differ visibly
    let f2lo = Infinity;
    let f2hi = 0;
    let moved = 0;
    for (let j = 0; j < f.length; j++) {
      f2lo = Math.min(f2lo, f[j]! * f[j]!);
      f2hi = Math.max(f2hi, f[j]! * f[j]!);
      moved = Math.max(moved, Math.abs(Fu[j]! - Ff[j]!) / maxU);
    }
    t.ok(f2hi / f2lo > 1.5 && moved > 0.1,
      `${pair.conv}: f^2 spans ${f2lo.toFixed(3)}..${f2hi.toFixed(3)}; diagonals differ by up to ${(moved * 100).toFixed(0)}% of the largest element ` +
        `(trace unfolded / folded = ${(lu.weight.fisherTrace / lf.weight.fisherTrace).toFixed(4)})`);
    // weight ranges are those of the weight each run quantizes: W' = fround(W * f) folded, W unfolded
    const W = originals.get(pair.weight)!;
    let lo = Infinity;
    let hi = -Infinity;
    let loU = Infinity;
    let hiU = -Infinity;
    for (let j = 0; j < W.length; j++) {
      const v = Math.fround(W[j]! * f[j]!);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      loU = Math.min(loU, W[j]!);
      hiU = Math.max(hiU, W[j]!);
    }
    t.same([lf.weight.min, lf.weight.max], [lo, hi], `${pair.conv}: folded weight range is that of W * f`);
    t.same([lu.weight.min, lu.weight.max], [loU, hiU], `${pair.conv}: unfolded weight range is that of W`);
  }
}

t.test('demo CNN: folded and unfolded BN give the traces the chain rule predicts', async (t) => {
  const dir = fileURLToPath(new URL('../assets/demo/', import.meta.url));
  const data = { input: `${dir}calib_x.npy`, labels: `${dir}calib_y.npy` };
  const opts: SensitivityOptions = { data, maxSamples: 16, batchSize: 8, tolerance: 0, estimator: 'empirical', workers: 1 };
  const started = Date.now();
  const folded = await sensitivity(MODELS.demoCnn, { ...opts, foldBatchNorm: true });
  const unfolded = await sensitivity(MODELS.demoCnn, { ...opts, foldBatchNorm: false });
  t.comment(`demo CNN, 16 samples, folded + unfolded: ${Date.now() - started} ms`);
  t.equal(folded.samples, 16);
  t.equal(folded.likelihood, 'categorical', 'logits output with class labels: categorical');
  t.same(folded.layers.map((l) => l.name), ['conv1', 'conv2', 'fc1', 'fc2']);
  const prepared = prepareModel(MODELS.demoCnn, { batch: 8 });
  const { folded: pairs } = foldBatchNorm(prepared.graph);
  t.same(pairs.map((p) => [p.conv, p.bn]), [['conv1', 'bn1'], ['conv2', 'bn2']]);
  const originals = new Map(pairs.map((p) => [p.weight, prepared.graph.initializers.get(p.weight)!.data as Float32Array]));
  checkChainRule(t, folded, unfolded, pairs, originals);
  for (const l of folded.layers)
    t.comment(`${l.name}: Tr F_w folded ${l.weight.fisherTrace.toPrecision(6)}, unfolded ${unfolded.layers.find((u) => u.name === l.name)!.weight.fisherTrace.toPrecision(6)}; Tr F_a ${l.activation.fisherTrace.toPrecision(6)}`);
});

/**
 * x [N,2,4,4] -> Conv 'conv' (3x3, pads 1, bias) -> BN 'bn' -> Relu -> ConvTranspose 'deconv'
 * (group 2, 2x2 stride 2, no bias) -> BN 'bn2' -> Relu -> Flatten -> Gemm 'fc' -> Softmax.
 * With `fold` the BNs are folded by hand (the oracle for foldBatchNorm inside sensitivity()).
 */
const BN = (() => {
  const r = rng(2024);
  const u = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => lo + (hi - lo) * r());
  const gamma1 = u(4, 0.3, 2.5);
  gamma1[2] = -gamma1[2]!; // a negative scale: f^2 does not care about the sign
  return {
    W1: Float32Array.from(u(4 * 2 * 9, -0.6, 0.6)),
    b1: u(4, -0.2, 0.2),
    gamma1,
    beta1: u(4, -0.5, 0.5),
    mean1: u(4, -0.4, 0.4),
    var1: u(4, 0.05, 3),
    W2: Float32Array.from(u(4 * 3 * 4, -0.6, 0.6)),
    gamma2: u(6, 0.2, 3),
    beta2: u(6, -0.5, 0.5),
    mean2: u(6, -0.3, 0.3),
    var2: u(6, 0.1, 4),
    W3: Float32Array.from(u(3 * 6 * 8 * 8, -0.15, 0.15)),
    b3: u(3, -0.1, 0.1),
    eps1: 1e-3,
    eps2: 1e-5,
  };
})();

/** s = gamma / sqrt(var + eps), by hand */
const s1 = BN.gamma1.map((g, c) => g / Math.sqrt(BN.var1[c]! + BN.eps1));
const s2 = BN.gamma2.map((g, c) => g / Math.sqrt(BN.var2[c]! + BN.eps2));
/** per-element factors, by hand: Conv scales axis 0; ConvTranspose [Cin=4, M/g=3, 2, 2], group 2, scales output channel g*3+j */
const f1 = Array.from(BN.W1, (_, k) => s1[Math.floor(k / 18)]!);
const f2 = Array.from(BN.W2, (_, k) => {
  const c = Math.floor(k / 12);
  const j = Math.floor(k / 4) % 3;
  return s2[Math.floor(c / 2) * 3 + j]!;
});

function bnModel(fold: boolean): Uint8Array {
  const init = (name: string, dims: number[], data: ArrayLike<number>) => ({ name, dims, type: 'float32', data });
  const initializers = [
    init('W1', [4, 2, 3, 3], fold ? BN.W1.map((w, k) => w * f1[k]!) : BN.W1),
    init('b1', [4], fold ? BN.b1.map((b, c) => (b - BN.mean1[c]!) * s1[c]! + BN.beta1[c]!) : BN.b1),
    init('W2', [4, 3, 2, 2], fold ? BN.W2.map((w, k) => w * f2[k]!) : BN.W2),
    init('W3', [3, 6 * 8 * 8], BN.W3),
    init('b3', [3], BN.b3),
  ];
  if (fold) initializers.push(init('b2', [6], BN.beta2.map((b, c) => b - BN.mean2[c]! * s2[c]!)));
  else
    initializers.push(
      init('g1', [4], BN.gamma1), init('be1', [4], BN.beta1), init('m1', [4], BN.mean1), init('v1', [4], BN.var1),
      init('g2', [6], BN.gamma2), init('be2', [6], BN.beta2), init('m2', [6], BN.mean2), init('v2', [6], BN.var2),
    );
  const nodes: BuildNode[] = fold
    ? [
      { op: 'Conv', name: 'conv', inputs: ['x', 'W1', 'b1'], outputs: ['y1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'r1', inputs: ['y1'], outputs: ['a1'] },
      { op: 'ConvTranspose', name: 'deconv', inputs: ['a1', 'W2', 'b2'], outputs: ['y2'], attrs: { group: 2, strides: [2, 2] } },
    ]
    : [
      { op: 'Conv', name: 'conv', inputs: ['x', 'W1', 'b1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'BatchNormalization', name: 'bn', inputs: ['c1', 'g1', 'be1', 'm1', 'v1'], outputs: ['y1'], attrs: { epsilon: { type: 'float' as const, value: BN.eps1 } } },
      { op: 'Relu', name: 'r1', inputs: ['y1'], outputs: ['a1'] },
      { op: 'ConvTranspose', name: 'deconv', inputs: ['a1', 'W2'], outputs: ['c2'], attrs: { group: 2, strides: [2, 2] } },
      { op: 'BatchNormalization', name: 'bn2', inputs: ['c2', 'g2', 'be2', 'm2', 'v2'], outputs: ['y2'], attrs: { epsilon: { type: 'float' as const, value: BN.eps2 } } },
    ];
  return makeModel({
    opset: 13,
    inputs: [{ name: 'x', elemType: 'float32', dims: ['N', 2, 4, 4] }],
    outputs: [{ name: 'p' }],
    initializers,
    nodes: [
      ...nodes,
      { op: 'Relu', name: 'r2', inputs: ['y2'], outputs: ['a2'] },
      { op: 'Flatten', name: 'flat', inputs: ['a2'], outputs: ['h'], attrs: { axis: 1 } },
      { op: 'Gemm', name: 'fc', inputs: ['h', 'W3', 'b3'], outputs: ['z'], attrs: { transB: 1 } },
      { op: 'Softmax', name: 'sm', inputs: ['z'], outputs: ['p'], attrs: { axis: 1 } },
    ],
  });
}

t.test('Conv+BN and grouped ConvTranspose+BN: folded and unfolded traces follow the chain rule', async (t) => {
  const n = 12;
  const data = {
    input: { dims: [n, 2, 4, 4], data: randomFloats(n * 32, 31, -1.5, 1.5) },
    labels: { dims: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7) % 3)) },
  };
  const opts: SensitivityOptions = { data, batchSize: 4, tolerance: 0, estimator: 'empirical', workers: 1 };
  const withBn = bnModel(false);
  const folded = await sensitivity(withBn, { ...opts, foldBatchNorm: true });
  const unfolded = await sensitivity(withBn, { ...opts, foldBatchNorm: false });
  const byHand = await sensitivity(bnModel(true), { ...opts, foldBatchNorm: false });
  t.same(folded.layers.map((l) => l.name), ['conv', 'deconv', 'fc']);
  t.same(folded.layers.map((l) => l.weight.name), ['W1', 'W2', 'W3']);

  const { folded: pairs } = foldBatchNorm(prepareModel(withBn, { batch: 4 }).graph);
  t.same(pairs.map((p) => [p.conv, p.bn, p.op, p.group]), [['conv', 'bn', 'Conv', 1], ['deconv', 'bn2', 'ConvTranspose', 2]]);
  // the scales and per-element factors foldBatchNorm uses are the hand-computed ones
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]!) <= 1e-6 * Math.abs(b[i]!));
  const g32 = (a: number[]) => Array.from(Float32Array.from(a)); // BN params are stored as float32
  t.ok(close(pairs[0]!.scale, bnChannelScale(g32(BN.gamma1), g32(BN.var1), Math.fround(BN.eps1))) && close(pairs[0]!.scale, s1), 'conv: s = gamma / sqrt(var + eps)');
  t.ok(close(pairs[1]!.scale, s2), 'deconv: s = gamma / sqrt(var + eps)');
  t.ok(close(weightChannelScale('Conv', [4, 2, 3, 3], 1, pairs[0]!.scale), f1), 'Conv: f scales axis 0');
  t.ok(close(weightChannelScale('ConvTranspose', [4, 3, 2, 2], 2, pairs[1]!.scale), f2), 'ConvTranspose group 2: f scales output channel g * M/g + j');

  checkChainRule(t, folded, unfolded, pairs, new Map([['W1', BN.W1], ['W2', BN.W2]]));

  // folding inside sensitivity() equals a model folded by hand
  for (let li = 0; li < 3; li++) {
    const a = folded.layers[li]!;
    const b = byHand.layers[li]!;
    t.ok(relDiff(a.weight.fisherTrace, b.weight.fisherTrace) < 1e-4, `${a.name}: folded weight trace ${a.weight.fisherTrace} == hand-folded ${b.weight.fisherTrace}`);
    t.ok(relDiff(a.activation.fisherTrace, b.activation.fisherTrace) < 1e-4, `${a.name}: folded activation trace == hand-folded`);
    let worst = 0;
    for (let j = 0; j < a.weight.fisherDiagonal.length; j++)
      worst = Math.max(worst, Math.abs(a.weight.fisherDiagonal[j]! - b.weight.fisherDiagonal[j]!) / (b.weight.fisherTrace / b.weight.fisherDiagonal.length));
    t.ok(worst < 1e-3, `${a.name}: Fisher diagonal equals the hand-folded one (worst deviation ${worst.toExponential(2)} of the mean element)`);
  }
  for (const l of unfolded.layers)
    t.comment(`${l.name}: Tr F_w unfolded ${l.weight.fisherTrace.toPrecision(6)}, folded ${folded.layers.find((f) => f.name === l.name)!.weight.fisherTrace.toPrecision(6)}`);
});

// ---------------------------------------------------------------------------------------------
// 2. Real models

function checkFinitePositive(t: T, report: SensitivityReport): void {
  const bad = report.layers.filter(
    (l) =>
      !(Number.isFinite(l.weight.fisherTrace) && l.weight.fisherTrace > 0) ||
      !(Number.isFinite(l.activation.fisherTrace) && l.activation.fisherTrace > 0) ||
      !(l.activation.min < l.activation.max) ||
      !(l.weight.min < l.weight.max) ||
      l.weight.fisherDiagonal.some((v) => !(v >= 0 && Number.isFinite(v))),
  );
  t.same(bad.map((l) => l.name), [], `every one of ${report.layers.length} layers has finite positive traces, a non-negative diagonal and real ranges`);
  const sumDiag = report.layers.map((l) => l.weight.fisherDiagonal.reduce((a, b) => a + b, 0));
  t.ok(report.layers.every((l, i) => relDiff(sumDiag[i]!, l.weight.fisherTrace) < 1e-6), 'each weight trace is the sum of its diagonal');
  const top = report.rank()[0]!;
  t.comment(`${report.model}: ${report.layers.length} layers, ${report.samples} samples; most sensitive weight ${top.name} (Tr F_w ${top.weight.fisherTrace.toPrecision(4)}); ` +
    `Tr F_w range ${Math.min(...report.layers.map((l) => l.weight.fisherTrace)).toPrecision(3)}..${top.weight.fisherTrace.toPrecision(3)}`);
}

t.test('PP-OCR v4 det, label-free: bernoulli from its final Sigmoid, finite positive traces', async (t) => {
  const n = 2;
  const started = Date.now();
  const report = await sensitivity(MODELS.ocrDet, {
    data: { input: { dims: [n, 3, 64, 64], data: syntheticPage(n, 64, 64, 5) } },
    batchSize: 1,
    tolerance: 0,
    workers: 1,
  });
  t.comment(`det: ${Date.now() - started} ms`);
  t.equal(report.estimator, 'sampled');
  t.equal(report.likelihood, 'bernoulli');
  t.equal(report.samples, n);
  t.equal(report.layers.length, 64);
  t.ok(report.layers.some((l) => l.op === 'ConvTranspose'), 'its ConvTranspose upsamplers are layers too');
  t.equal(report.layers[0]!.activation.count, 3 * 64 * 64, 'the first layer reads the image');
  checkFinitePositive(t, report);
});

t.test('PP-OCR v4 rec, label-free: categorical over the sequence, finite positive traces', async (t) => {
  const n = 2;
  const started = Date.now();
  const report = await sensitivity(MODELS.ocrRec, {
    data: { input: { dims: [n, 3, 48, 160], data: syntheticPage(n, 48, 160, 6) } },
    batchSize: 1,
    tolerance: 0,
    workers: 1,
  });
  t.comment(`rec: ${Date.now() - started} ms`);
  t.equal(report.estimator, 'sampled');
  t.equal(report.likelihood, 'categorical');
  t.equal(report.samples, n);
  t.equal(report.layers.length, 47);
  checkFinitePositive(t, report);
});

t.test('openwakeword: bernoulli with float 0/1 labels; its fixed batch of 1 is fed sample by sample', async (t) => {
  const n = 6;
  const data = {
    input: { dims: [n, 25, 96], data: randomFloats(n * 25 * 96, 3, -2, 2) },
    labels: { dims: [n, 1], data: Float32Array.from({ length: n }, (_, i) => i % 2) },
  };
  const one = await sensitivity(MODELS.owwHello, { data, batchSize: 1, tolerance: 0, workers: 1 });
  t.equal(one.estimator, 'empirical');
  t.equal(one.likelihood, 'bernoulli');
  t.equal(one.samples, n);
  t.same(one.layers.map((l) => l.op), ['Gemm', 'Gemm', 'Gemm']);
  t.equal(one.layers[0]!.activation.count, 25 * 96, 'the first Gemm reads the flattened 25x96 features');
  checkFinitePositive(t, one);
  // batchSize 4 (and the default 32) on a model whose input is [1, 25, 96]: fed one sample at a time,
  // which gives the same per-sample Fisher
  for (const batchSize of [4, undefined]) {
    const four = await sensitivity(MODELS.owwHello, { data, batchSize, tolerance: 0, workers: 1 });
    t.equal(four.samples, n, `batchSize ${batchSize}: all samples used`);
    t.ok(four.layers.every((l, i) => relDiff(l.weight.fisherTrace, one.layers[i]!.weight.fisherTrace) < 1e-9 && relDiff(l.activation.fisherTrace, one.layers[i]!.activation.fisherTrace) < 1e-9),
      `batchSize ${batchSize}: the same traces as batchSize 1`);
  }
  // the batch estimator needs real batches: a clear error
  const err = await sensitivity(MODELS.owwHello, { data, batchSize: 4, estimator: 'batch', tolerance: 0, workers: 1 }).catch((e: unknown) => e);
  t.ok(err instanceof InvalidOptionError, 'batch estimator with batchSize 4 on a batch-1 model: InvalidOptionError');
  t.equal((err as OnnxFitError).code, 'ERR_INVALID_OPTION');
  t.match((err as Error).message, /onnx::Flatten_0.*fixed batch of 1.*batchSize: 1/);
  // with B = 1 the batch estimator is the empirical one
  const b1 = await sensitivity(MODELS.owwHello, { data, batchSize: 1, estimator: 'batch', tolerance: 0, workers: 1 });
  t.ok(b1.layers.every((l, i) => relDiff(l.weight.fisherTrace, one.layers[i]!.weight.fisherTrace) < 1e-5), 'batch estimator with B = 1 equals the empirical Fisher');
  t.comment(`openwakeword: Tr F_w ${one.layers.map((l) => `${l.name} ${l.weight.fisherTrace.toPrecision(5)}`).join(', ')}`);
});

// ---------------------------------------------------------------------------------------------
// 3. Bad data

const D = 5;
const C = 3;
const W = randomFloats(C * D, 77, -0.5, 0.5);
/** x [N, D] -> Gemm (W [C, D], transB) -> Softmax: a 3-class model */
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
const linearData = (n: number, seed: number) => ({
  input: { dims: [n, D], data: randomFloats(n * D, seed) },
  labels: { dims: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % C)) },
});

async function rejectsWith(t: T, run: () => Promise<unknown>, Cls: abstract new (...args: never[]) => OnnxFitError, code: string, message: RegExp, what: string): Promise<void> {
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof Cls, `${what}: ${Cls.name} (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
  t.equal((err as OnnxFitError)?.code, code, `${what}: code ${code}`);
  t.match((err as Error)?.message ?? '', message, `${what}: the message names what is wrong`);
}

t.test('bad data: a clear OnnxFitError naming what is wrong, never a crash', async (t) => {
  const N = 12;
  const good = linearData(N, 5);
  {
    const workers = 1;
    const run = (data: SensitivityOptions['data'], extra: Partial<SensitivityOptions> = {}) => () =>
      sensitivity(linearSoftmax, { data, batchSize: 4, tolerance: 0, workers, ...extra });
    const tag = `workers ${workers}`;

    const nan = good.input.data.slice();
    nan[7 * D + 2] = NaN;
    await rejectsWith(t, run({ ...good, input: { dims: [N, D], data: nan } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /input 'x' holds NaN at index \[7, 2\] \(sample 7/i, `${tag}: NaN in the inputs`);
    const inf = good.input.data.slice();
    inf[10 * D] = -Infinity;
    await rejectsWith(t, run({ input: { dims: [N, D], data: inf } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /-Infinity.*sample 10/, `${tag}: -Inf in the inputs (label-free run)`);

    const high = good.labels.data.slice();
    high[9] = 7n;
    await rejectsWith(t, run({ ...good, labels: { dims: [N], data: high } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /class label 7 for sample 9.*3 classes.*0\.\.2/, `${tag}: label 7 for a 3-class model`);
    const edge = good.labels.data.slice();
    edge[2] = 3n;
    await rejectsWith(t, run({ ...good, labels: { dims: [N], data: edge } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /class label 3 for sample 2/, `${tag}: label 3 (one past the last class)`);
    const neg = good.labels.data.slice();
    neg[4] = -1n;
    await rejectsWith(t, run({ ...good, labels: { dims: [N], data: neg } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /class label -1 at index \[4\]/, `${tag}: negative label`);
    await rejectsWith(t, run({ ...good, labels: { dims: [N], data: Float32Array.from({ length: N }, (_, i) => (i === 6 ? 1.5 : i % 3)) } }, { estimator: 'empirical' }),
      InvalidInputError, 'ERR_INVALID_INPUT', /class label 1\.5 for sample 6/, `${tag}: fractional class label`);

    await rejectsWith(t, run({ input: { dims: [0, D], data: new Float32Array(0) }, labels: { dims: [0], data: new BigInt64Array(0) } }),
      InvalidInputError, 'ERR_INVALID_INPUT', /0 samples/, `${tag}: empty data`);
    await rejectsWith(t, run({ ...good, labels: { dims: [N - 2], data: good.labels.data.slice(0, N - 2) } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /labels array has 10 samples.*inputs have 12/, `${tag}: 10 labels for 12 samples`);
    await rejectsWith(t, run({ input: { dims: [N, D + 1], data: new Float32Array(N * (D + 1)) }, labels: good.labels }), InvalidInputError, 'ERR_INVALID_INPUT',
      /dim 1 of input 'x' to be 5.*\[12, 6\]/, `${tag}: per-sample dims [6] for an input declared [N, 5]`);
    await rejectsWith(t, run({ input: { dims: [N, D, 1], data: good.input.data }, labels: good.labels }), InvalidInputError, 'ERR_INVALID_INPUT',
      /rank 2.*\[12, 5, 1\]/, `${tag}: per-sample dims [5, 1]`);
    await rejectsWith(t, run({ input: { dims: [N, D], data: good.input.data.subarray(0, N * D - 1) } }), InvalidInputError, 'ERR_INVALID_INPUT',
      /59 elements.*\[12, 5\] need 60/, `${tag}: data shorter than its dims`);
  }
  // the same error from a worker thread keeps its class, code and message
  const high = good.labels.data.slice();
  high[9] = 7n;
  await rejectsWith(t, () => sensitivity(linearSoftmax, { data: { ...good, labels: { dims: [N], data: high } }, batchSize: 4, tolerance: 0, workers: 2 }),
    InvalidInputError, 'ERR_INVALID_INPUT', /class label 7 for sample 9.*3 classes.*0\.\.2/, 'workers 2: label 7 for a 3-class model');
  // an empty async iterable is empty data too
  async function* none(): AsyncGenerator<never> {}
  await rejectsWith(t, () => sensitivity(linearSoftmax, { data: none(), tolerance: 0 }), InvalidInputError, 'ERR_INVALID_INPUT', /no batches/, 'empty iterable');
});

// ---------------------------------------------------------------------------------------------
// 4. Convergence and sample limits

t.test('convergence: tolerance stops early, tolerance 0 uses all data, maxSamples caps', async (t) => {
  const N = 400;
  const data = linearData(N, 9);
  const rel = (r: SensitivityReport) => Math.max(...r.layers.flatMap((l) => [l.weight.stdError! / l.weight.fisherTrace, l.activation.stdError! / l.activation.fisherTrace]));
  const early = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0.5, minSamples: 8, workers: 1 });
  t.ok(early.samples >= 8 && early.samples < N, `tolerance 0.5: stopped early after ${early.samples} of ${N} samples`);
  t.ok(rel(early) < 0.5, `every trace's stdError / fisherTrace < 0.5 (max ${rel(early).toFixed(3)})`);
  const full = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0, workers: 1 });
  t.equal(full.samples, N, `tolerance 0: all ${N} samples`);
  t.ok(rel(full) < rel(early), `more samples, smaller relative error (${rel(full).toFixed(4)} < ${rel(early).toFixed(4)})`);
  const e = early.layers[0]!.weight;
  const f = full.layers[0]!.weight;
  t.ok(Math.abs(e.fisherTrace - f.fisherTrace) < 5 * e.stdError!, `early trace ${e.fisherTrace.toFixed(4)} within 5 SE (${e.stdError!.toFixed(4)}) of the full ${f.fisherTrace.toFixed(4)}`);
  const def = await sensitivity(linearSoftmax, { data, batchSize: 8, workers: 1 });
  t.ok((def.samples >= 64 && rel(def) < 0.05) || def.samples === N, `default tolerance 0.05 / minSamples 64: ${def.samples} samples, max rel. error ${rel(def).toFixed(4)}`);
  const capped = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0, maxSamples: 40, workers: 1 });
  t.equal(capped.samples, 40, 'maxSamples 40 caps at 40');
  const odd = await sensitivity(linearSoftmax, { data, batchSize: 16, tolerance: 0, maxSamples: 40, workers: 1 });
  t.equal(odd.samples, 40, 'maxSamples 40 with batches of 16: 16 + 16 + 8');
  t.ok(relDiff(odd.layers[0]!.weight.fisherTrace, capped.layers[0]!.weight.fisherTrace) < 1e-6, 'the same 40 samples give the same trace whatever the batching');
  const tight = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 1e-6, minSamples: 8, maxSamples: 64, workers: 1 });
  t.equal(tight.samples, 64, 'an unreachable tolerance runs to maxSamples');
  const min = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 10, minSamples: 48, workers: 1 });
  t.equal(min.samples, 48, 'a loose tolerance still runs minSamples');

  // on two workers: the shared stop flag ends both shards early, progress still counts up batch by batch
  const seen: SensitivityProgress[] = [];
  const started = Date.now();
  const pooled = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0.5, minSamples: 8, workers: 2, onProgress: (p) => seen.push({ ...p }) });
  t.comment(`two workers, tolerance 0.5: ${pooled.samples} samples, ${Date.now() - started} ms (mostly pool start-up)`);
  t.ok(pooled.samples >= 8 && pooled.samples < N, `workers 2: stopped early after ${pooled.samples} of ${N} samples`);
  t.ok(rel(pooled) < 0.5, `workers 2: every trace's stdError / fisherTrace < 0.5 (max ${rel(pooled).toFixed(3)})`);
  t.same(seen.map((p) => p.batches), seen.map((_, i) => i + 1), 'workers 2: one call per batch');
  t.ok(seen.every((p, i) => p.samples === 8 * (i + 1)), 'workers 2: samples increase by a batch each call');
  t.equal(seen.at(-1)!.samples, pooled.samples, 'workers 2: the last progress call counts every sample in the report');
});

// ---------------------------------------------------------------------------------------------
// 5. Progress and abort

t.test('onProgress is called once per batch with increasing samples', async (t) => {
  const data = linearData(44, 13);
  const seen: SensitivityProgress[] = [];
  const report = await sensitivity(linearSoftmax, { data, batchSize: 8, tolerance: 0, workers: 1, onProgress: (p) => seen.push({ ...p }) });
  t.same(seen.map((p) => [p.batches, p.samples, p.total]), [[1, 8, 44], [2, 16, 44], [3, 24, 44], [4, 32, 44], [5, 40, 44], [6, 44, 44]],
    '6 batches (5 of 8, 1 of 4): one call each, samples counting up, total known');
  t.equal(report.samples, 44);
  t.equal(seen[0]!.maxRelStdError, Infinity, 'no error estimate after one batch');
  const last = seen.at(-1)!.maxRelStdError;
  const rel = Math.max(...report.layers.flatMap((l) => [l.weight.stdError! / l.weight.fisherTrace, l.activation.stdError! / l.activation.fisherTrace]));
  t.ok(relDiff(last, rel) < 1e-9, `the last maxRelStdError (${last.toFixed(4)}) is the report's largest stdError / fisherTrace`);
});

t.test('an AbortSignal aborted from onProgress after the 2nd batch rejects promptly with AbortError', async (t) => {
  const N = 4000;
  const data = linearData(N, 17);
  for (const workers of [1, 2]) {
    const ac = new AbortController();
    let calls = 0;
    let abortedAt = 0;
    const err = await sensitivity(linearSoftmax, {
      data,
      batchSize: 8,
      tolerance: 0,
      workers,
      signal: ac.signal,
      onProgress: (p) => {
        calls++;
        if (p.batches === 2) {
          abortedAt = Date.now();
          ac.abort();
        }
      },
    }).catch((e: unknown) => e);
    const ms = Date.now() - abortedAt;
    t.ok(err instanceof AbortError, `workers ${workers}: AbortError (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
    t.equal((err as OnnxFitError).code, 'ERR_ABORTED');
    if (workers === 1) t.equal(calls, 2, 'workers 1: no batch runs after the abort');
    else t.ok(calls >= 2 && calls < 50, `workers ${workers}: ${calls} of ${N / 8} batches reported`);
    t.ok(abortedAt > 0 && ms < 3000, `workers ${workers}: rejected ${ms} ms after the abort`);
  }
  const ac = new AbortController();
  ac.abort();
  const err = await sensitivity(linearSoftmax, { data, signal: ac.signal, workers: 1 }).catch((e: unknown) => e);
  t.ok(err instanceof AbortError && (err as OnnxFitError).code === 'ERR_ABORTED', 'an already aborted signal rejects before any work');
});

// Tiny batches run synchronously on the main thread (mainThreadCompute) but must still yield: timers fire during the pass,
// and an abort from a timer stops it.
t.test('a pass of tiny synchronous batches keeps the event loop turning and stops on an abort from a timer', async (t) => {
  const N = 4000;
  const x = randomFloats(N * D, 19);
  // an async iterable that itself never yields to the event loop (its items resolve as microtasks)
  async function* data() {
    for (let i = 0; i < N; i++) yield { inputs: { x: { dims: [1, D], data: x.subarray(i * D, (i + 1) * D) } }, labels: { dims: [1], data: BigInt64Array.of(BigInt(i % C)) } };
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const ac = new AbortController();
  let batches = 0;
  setTimeout(() => ac.abort(), 150);
  const t0 = Date.now();
  const err = await sensitivity(linearSoftmax, { data: data(), batchSize: 1, tolerance: 0, workers: 1, signal: ac.signal, onProgress: (p) => (batches = p.batches) }).catch((e: unknown) => e);
  clearInterval(timer);
  t.ok(err instanceof AbortError, `AbortError (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
  t.ok(batches > 0 && batches < N, `${batches} of ${N} one-sample batches ran before the abort`);
  t.ok(ticks >= 5, `a 5 ms interval ticked ${ticks} times during the ${Date.now() - t0} ms pass`);
});

// the demo's calibration set, read directly, is what the demo test above feeds from .npy paths
t.test('the demo CNN data from arrays gives the report it gives from .npy paths', async (t) => {
  const dir = fileURLToPath(new URL('../assets/demo/', import.meta.url));
  const x = readNpy(`${dir}calib_x.npy`);
  const y = readNpy(`${dir}calib_y.npy`);
  const opts = { maxSamples: 8, batchSize: 8, tolerance: 0, workers: 1 } as const;
  const a = await sensitivity(MODELS.demoCnn, { ...opts, data: { input: { dims: x.dims, data: x.data }, labels: { dims: y.dims, data: y.data } } });
  const b = await sensitivity(MODELS.demoCnn, { ...opts, data: { input: `${dir}calib_x.npy`, labels: `${dir}calib_y.npy` } });
  t.ok(a.layers.every((l, i) => l.weight.fisherTrace === b.layers[i]!.weight.fisherTrace && l.activation.fisherTrace === b.layers[i]!.activation.fisherTrace), 'identical traces');
});
