/**
 * Gradients of Gemm, MatMul, Conv and ConvTranspose: central finite differences (float64) over the
 * attribute combinations of the forward tests with every operand a runtime input; exact per-sample
 * squared weight gradients against a batch-1 loop; the weight gradient is the same with and without
 * per-sample squares; float32 gradients agree with float64.
 */
import t from 'tap';
import type { Test } from 'tap';
import { checkGrads, checkPerSampleSquares, prepareGradCase, type GradCase } from './helpers/grad.js';
import type { OpCase } from './helpers/ops.js';
import { rng } from './helpers/random.js';
import { EngineModel } from '../src/engine/model.js';

const f = (value: number) => ({ type: 'float' as const, value });
const SAMPLES = 20;

// ------------------------------------------------------------------------------------------------
const gemmCases: GradCase[] = [];
{
  const M = 3, K = 5, N = 4;
  const cShapes: Array<number[] | null> = [[N], [1, N], [M, N], [M, 1], [], [1], null];
  let k = 0;
  for (const transA of [0, 1])
    for (const transB of [0, 1])
      for (const cd of cShapes) {
        k++;
        const inputs: OpCase['inputs'] = [{ dims: transA ? [K, M] : [M, K] }, { dims: transB ? [N, K] : [K, N] }];
        if (cd) inputs.push({ dims: cd });
        gemmCases.push({
          op: 'Gemm',
          opset: cd ? (k % 4 === 0 ? 7 : 13) : 13,
          attrs: { transA, transB, ...(k % 2 ? { alpha: f(0.75), beta: f(1.5) } : {}) },
          inputs,
          samples: SAMPLES,
        });
      }
  gemmCases.push({ name: 'beta 0 ignores C', op: 'Gemm', attrs: { beta: f(0) }, inputs: [{ dims: [2, 3] }, { dims: [3, 4] }, { dims: [4] }] });
  gemmCases.push({ name: 'classifier head 1x64 * 64x10^T', op: 'Gemm', attrs: { transB: 1 }, inputs: [{ dims: [1, 64] }, { dims: [10, 64] }, { dims: [10] }] });
  gemmCases.push({ name: 'only the weight wanted', op: 'Gemm', attrs: { transA: 1, alpha: f(-2) }, inputs: [{ dims: [5, 3] }, { dims: [5, 4] }, { dims: [4] }], wrt: [1] });
  gemmCases.push({ name: 'only the data input wanted', op: 'Gemm', attrs: { transB: 1 }, inputs: [{ dims: [3, 5] }, { dims: [4, 5] }, { dims: [3, 4] }], wrt: [0] });
}

const matmulCases: GradCase[] = [
  { op: 'MatMul', inputs: [{ dims: [3, 4] }, { dims: [4, 5] }] },
  { name: '1-D x 2-D', op: 'MatMul', inputs: [{ dims: [4] }, { dims: [4, 5] }] },
  { name: '2-D x 1-D', op: 'MatMul', inputs: [{ dims: [3, 4] }, { dims: [4] }] },
  { name: '1-D x 1-D', op: 'MatMul', inputs: [{ dims: [6] }, { dims: [6] }] },
  { name: 'batch broadcast [2,1,3,4] x [5,4,6]', op: 'MatMul', inputs: [{ dims: [2, 1, 3, 4] }, { dims: [5, 4, 6] }], samples: SAMPLES },
  { name: 'batched x shared 2-D weight', op: 'MatMul', inputs: [{ dims: [2, 5, 7] }, { dims: [7, 3] }], samples: SAMPLES },
  { name: 'shared A x batched B', op: 'MatMul', inputs: [{ dims: [3, 7] }, { dims: [2, 7, 4] }], samples: SAMPLES },
  { name: '1-D x batched', op: 'MatMul', inputs: [{ dims: [7] }, { dims: [2, 7, 3] }] },
  { name: 'batched x 1-D', op: 'MatMul', inputs: [{ dims: [2, 3, 4, 5] }, { dims: [5] }] },
  { name: '[1,3,4] x [2,4,2]', op: 'MatMul', inputs: [{ dims: [1, 3, 4] }, { dims: [2, 4, 2] }] },
  { name: '[2,3,4] x [2,4,5]', op: 'MatMul', inputs: [{ dims: [2, 3, 4] }, { dims: [2, 4, 5] }] },
  { name: '[3,1,2,4] x [1,2,4,3]', op: 'MatMul', inputs: [{ dims: [3, 1, 2, 4] }, { dims: [1, 2, 4, 3] }], samples: SAMPLES },
  { name: 'only B wanted, batched broadcast', op: 'MatMul', inputs: [{ dims: [2, 1, 3, 4] }, { dims: [5, 4, 6] }], wrt: [1] },
];

// Each forward case of ops-nn.test.ts with every operand a runtime input (the large ones shrunk).
const convCases: GradCase[] = [
  { name: 'basic 3x3 pads 1, bias', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 6, 6] }, { dims: [4, 3, 3, 3] }, { dims: [4] }] },
  { name: 'asymmetric pads, strides', op: 'Conv', attrs: { pads: [0, 1, 2, 0], strides: [2, 1] }, inputs: [{ dims: [1, 4, 7, 9] }, { dims: [6, 4, 3, 2] }] },
  { name: 'kernel_shape given', op: 'Conv', attrs: { kernel_shape: [3, 3], strides: [2, 2] }, inputs: [{ dims: [1, 2, 9, 9] }, { dims: [3, 2, 3, 3] }] },
  { name: 'group 2', op: 'Conv', attrs: { group: 2, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 4, 6, 6] }, { dims: [6, 2, 3, 3] }, { dims: [6] }] },
  { name: 'group 3 strided', op: 'Conv', attrs: { group: 3, strides: [2, 2], pads: [1, 0, 1, 0] }, inputs: [{ dims: [2, 6, 7, 6] }, { dims: [9, 2, 3, 3] }, { dims: [9] }] },
  { name: 'depthwise 3x3 stride 2', op: 'Conv', attrs: { group: 8, pads: [1, 1, 1, 1], strides: [2, 2] }, inputs: [{ dims: [2, 8, 9, 9] }, { dims: [8, 1, 3, 3] }, { dims: [8] }] },
  { name: 'depthwise 5x5 stride 1 no bias', op: 'Conv', attrs: { group: 6, pads: [2, 2, 2, 2] }, inputs: [{ dims: [1, 6, 10, 11] }, { dims: [6, 1, 5, 5] }] },
  { name: 'depthwise multiplier 2', op: 'Conv', attrs: { group: 4, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 4, 7, 7] }, { dims: [8, 1, 3, 3] }, { dims: [8] }] },
  { name: 'depthwise dilated, asymmetric pads, stride [1,2]', op: 'Conv', attrs: { group: 3, dilations: [2, 2], pads: [2, 1, 0, 3], strides: [1, 2] }, inputs: [{ dims: [1, 3, 8, 9] }, { dims: [3, 1, 3, 3] }] },
  { name: 'depthwise SAME_UPPER stride 2', op: 'Conv', attrs: { group: 5, auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 5, 8, 7] }, { dims: [5, 1, 3, 3] }] },
  { name: 'depthwise kernel [2,6]', op: 'Conv', attrs: { group: 3, pads: [1, 2, 0, 3] }, inputs: [{ dims: [2, 3, 7, 9] }, { dims: [3, 1, 2, 6] }, { dims: [3] }] },
  { name: 'depthwise 7x7 stride 3', op: 'Conv', attrs: { group: 2, pads: [3, 3, 3, 3], strides: [3, 3] }, inputs: [{ dims: [1, 2, 13, 11] }, { dims: [2, 1, 7, 7] }] },
  { name: 'depthwise kernel [4,1] stride [1,2]', op: 'Conv', attrs: { group: 4, strides: [1, 2], pads: [1, 0, 2, 0] }, inputs: [{ dims: [1, 4, 6, 7] }, { dims: [8, 1, 4, 1] }] },
  { name: 'depthwise, input rows the taps never reach', op: 'Conv', attrs: { group: 2, strides: [3, 3] }, inputs: [{ dims: [1, 2, 9, 9] }, { dims: [2, 1, 2, 2] }], samples: 200 },
  { name: 'dilations 2', op: 'Conv', attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] }, inputs: [{ dims: [1, 3, 9, 10] }, { dims: [4, 3, 3, 3] }, { dims: [4] }] },
  { name: 'dilations [1,3] strides [2,1]', op: 'Conv', attrs: { dilations: [1, 3], strides: [2, 1] }, inputs: [{ dims: [2, 2, 9, 12] }, { dims: [3, 2, 2, 3] }] },
  { name: 'auto_pad SAME_UPPER stride 2', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 3, 7, 8] }, { dims: [4, 3, 3, 3] }] },
  { name: 'auto_pad SAME_LOWER kernel 4x3', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [1, 2, 6, 7] }, { dims: [3, 2, 4, 3] }, { dims: [3] }] },
  { name: 'auto_pad SAME_LOWER stride 3', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER', strides: [3, 3] }, inputs: [{ dims: [1, 2, 10, 8] }, { dims: [3, 2, 4, 4] }] },
  { name: 'auto_pad VALID', op: 'Conv', attrs: { auto_pad: 'VALID', strides: [2, 2] }, inputs: [{ dims: [1, 3, 9, 8] }, { dims: [2, 3, 3, 3] }] },
  { name: '1x1 (direct gemm)', op: 'Conv', inputs: [{ dims: [2, 8, 5, 5] }, { dims: [4, 8, 1, 1] }, { dims: [4] }] },
  { name: '1x1 stride 2', op: 'Conv', attrs: { strides: [2, 2] }, inputs: [{ dims: [1, 8, 6, 5] }, { dims: [4, 8, 1, 1] }] },
  { name: '1x1 grouped', op: 'Conv', attrs: { group: 2 }, inputs: [{ dims: [1, 6, 4, 4] }, { dims: [4, 3, 1, 1] }] },
  { name: '1-D', op: 'Conv', attrs: { strides: [2], pads: [1, 2], dilations: [2] }, inputs: [{ dims: [2, 3, 10] }, { dims: [5, 3, 3] }, { dims: [5] }] },
  { name: '1-D depthwise (im2col path)', op: 'Conv', attrs: { group: 4, pads: [1, 1] }, inputs: [{ dims: [1, 4, 9] }, { dims: [4, 1, 3] }] },
  { name: '1-D SAME_UPPER', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER', strides: [2] }, inputs: [{ dims: [1, 2, 11] }, { dims: [3, 2, 4] }] },
  { name: '3-D', op: 'Conv', attrs: { pads: [1, 0, 1, 1, 0, 0], strides: [1, 2, 1] }, inputs: [{ dims: [1, 2, 5, 6, 4] }, { dims: [3, 2, 3, 3, 2] }, { dims: [3] }] },
  { name: '3-D grouped dilated', op: 'Conv', attrs: { group: 2, dilations: [1, 2, 1], pads: [1, 2, 1, 1, 2, 1] }, inputs: [{ dims: [2, 4, 4, 5, 4] }, { dims: [4, 2, 3, 3, 3] }] },
  { name: '3-D depthwise', op: 'Conv', attrs: { group: 2, pads: [1, 1, 1, 1, 1, 1] }, inputs: [{ dims: [1, 2, 3, 4, 3] }, { dims: [4, 1, 2, 3, 2] }] },
  { name: 'pads larger than the kernel', op: 'Conv', attrs: { pads: [3, 0, 2, 4] }, inputs: [{ dims: [1, 2, 4, 5] }, { dims: [2, 2, 2, 2] }] },
  { name: 'chunked im2col, grouped, stride, asymmetric pads', op: 'Conv', attrs: { group: 2, pads: [2, 1, 1, 0], strides: [2, 1] }, inputs: [{ dims: [1, 32, 66, 60] }, { dims: [4, 16, 3, 3] }, { dims: [4] }], samples: 30 },
  { name: 'only W wanted', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 5, 5] }, { dims: [4, 3, 3, 3] }, { dims: [4] }], wrt: [1] },
  { name: 'only X wanted, depthwise', op: 'Conv', attrs: { group: 3, pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 5, 5] }, { dims: [3, 1, 3, 3] }, { dims: [3] }], wrt: [0] },
  { name: 'only B wanted', op: 'Conv', inputs: [{ dims: [2, 3, 5, 5] }, { dims: [4, 3, 3, 3] }, { dims: [4] }], wrt: [2] },
].map((c) => ({ samples: SAMPLES, ...c }) as GradCase);

const convTransposeCases: GradCase[] = [
  { name: 'basic + bias', op: 'ConvTranspose', inputs: [{ dims: [1, 3, 4, 4] }, { dims: [3, 2, 3, 3] }, { dims: [2] }] },
  { name: 'batch 2', op: 'ConvTranspose', inputs: [{ dims: [2, 2, 3, 5] }, { dims: [2, 3, 2, 3] }] },
  { name: 'strides 2 pads 1 output_padding 1', op: 'ConvTranspose', attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, inputs: [{ dims: [1, 3, 5, 5] }, { dims: [3, 4, 3, 3] }, { dims: [4] }] },
  { name: 'strides [3,2] asymmetric pads', op: 'ConvTranspose', attrs: { strides: [3, 2], pads: [1, 2, 0, 1] }, inputs: [{ dims: [1, 1, 3, 3] }, { dims: [1, 2, 3, 3] }] },
  { name: 'stride 2 kernel 2', op: 'ConvTranspose', attrs: { strides: [2, 2] }, inputs: [{ dims: [1, 4, 6, 6] }, { dims: [4, 4, 2, 2] }, { dims: [4] }] },
  { name: 'output_shape', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 9] }, inputs: [{ dims: [1, 2, 5, 4] }, { dims: [2, 3, 3, 3] }] },
  { name: 'output_shape, odd total padding', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 8] }, inputs: [{ dims: [1, 2, 5, 5] }, { dims: [2, 3, 3, 3] }] },
  { name: 'output_shape with SAME_UPPER', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 8], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 5, 5] }, { dims: [2, 3, 3, 3] }] },
  { name: 'group 2', op: 'ConvTranspose', attrs: { group: 2, strides: [2, 1], pads: [1, 0, 1, 0] }, inputs: [{ dims: [1, 4, 5, 5] }, { dims: [4, 3, 3, 3] }, { dims: [6] }] },
  { name: 'depthwise group 3', op: 'ConvTranspose', attrs: { group: 3, strides: [2, 2] }, inputs: [{ dims: [2, 3, 4, 4] }, { dims: [3, 1, 3, 3] }] },
  { name: 'dilations 2', op: 'ConvTranspose', attrs: { dilations: [2, 2] }, inputs: [{ dims: [1, 2, 4, 5] }, { dims: [2, 2, 3, 3] }] },
  { name: 'auto_pad SAME_UPPER stride 2', op: 'ConvTranspose', attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 4] }, { dims: [2, 2, 3, 3] }] },
  { name: 'auto_pad SAME_LOWER stride 2', op: 'ConvTranspose', attrs: { auto_pad: 'SAME_LOWER', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 4] }, { dims: [2, 2, 3, 3] }] },
  { name: 'auto_pad VALID', op: 'ConvTranspose', attrs: { auto_pad: 'VALID', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 3] }, { dims: [2, 1, 3, 3] }] },
  { name: '1x1 stride 1 (direct gemm)', op: 'ConvTranspose', inputs: [{ dims: [2, 5, 3, 4] }, { dims: [5, 3, 1, 1] }, { dims: [3] }] },
  { name: 'group 2 + dilation + output_padding', op: 'ConvTranspose', attrs: { group: 2, dilations: [2, 1], strides: [3, 2], output_padding: [2, 1], pads: [1, 1, 0, 2] }, inputs: [{ dims: [2, 4, 3, 4] }, { dims: [4, 2, 3, 2] }, { dims: [4] }] },
  { name: '3-D', op: 'ConvTranspose', attrs: { strides: [2, 1, 2], pads: [1, 0, 0, 0, 1, 1] }, inputs: [{ dims: [1, 2, 3, 4, 3] }, { dims: [2, 3, 2, 3, 3] }, { dims: [3] }] },
  { name: '1-D stride 3', op: 'ConvTranspose', attrs: { strides: [3], pads: [1, 0] }, inputs: [{ dims: [2, 3, 6] }, { dims: [3, 4, 3] }, { dims: [4] }] },
].map((c) => ({ samples: SAMPLES, ...c }) as GradCase);

t.test('Gemm gradient', async (t) => checkGrads(t, gemmCases));
t.test('MatMul gradient', async (t) => checkGrads(t, matmulCases));
t.test('Conv gradient', async (t) => checkGrads(t, convCases));
t.test('ConvTranspose gradient', async (t) => checkGrads(t, convTransposeCases));

// ------------------------------------------------------------------------------------------------
// Per-sample squared weight gradients.

type SqCase = OpCase & { dataInput?: number; weightInput?: number };

/**
 * The batch-1 oracle for a data input whose samples lie along `axis` (Gemm with transA = 1: the
 * samples are the columns of A, the rows of the output).
 */
async function checkPerSampleSquaresAlong(t: Test, c: SqCase, axis: number, seed = 3): Promise<void> {
  const dataInput = c.dataInput ?? 0;
  const weightInput = c.weightInput ?? 1;
  const p = prepareGradCase(c, seed);
  const model = new EngineModel(p.graph);
  const y = model.run(p.feeds, { precision: 'float64' });
  const r = rng(seed + 100);
  const coef = Float64Array.from({ length: y.out0!.data.length }, () => 2 * r() - 1);
  const res = model.gradients(p.feeds, {
    precision: 'float64',
    seeds: { out0: { dims: y.out0!.dims, data: coef } },
    layers: [{ node: 'node', dataInput, weightInput }],
    perSampleSquares: true,
  });
  model.dispose();
  const sq = res.sqWeightGrads.node!.data as Float64Array;
  const dims = c.inputs[dataInput]!.dims;
  const n = dims[axis]!;
  const x = p.feeds[`in${dataInput}`]!.data as Float64Array;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const perOut = coef.length / y.out0!.dims[0]!;
  const loop = new Float64Array(sq.length);
  for (let i = 0; i < n; i++) {
    const xi = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) xi.set(x.subarray((o * n + i) * inner, (o * n + i + 1) * inner), o * inner);
    const overrides: Record<number, Float64Array> = { [dataInput]: xi };
    for (const k of p.runtime) if (k !== dataInput) overrides[k] = p.feeds[`in${k}`]!.data as Float64Array;
    const one = prepareGradCase(c, seed, { [dataInput]: dims.map((d, j) => (j === axis ? 1 : d)) }, overrides);
    const m1 = new EngineModel(one.graph);
    const y1 = m1.run(one.feeds, { precision: 'float64' });
    const g1 = m1.gradients(one.feeds, {
      precision: 'float64',
      seeds: { out0: { dims: y1.out0!.dims, data: coef.slice(i * perOut, (i + 1) * perOut) } },
      want: [`in${weightInput}`],
    });
    m1.dispose();
    const w = g1.grads[`in${weightInput}`]!.data as Float64Array;
    for (let j = 0; j < loop.length; j++) loop[j]! += w[j]! * w[j]!;
  }
  let worst = 0;
  let scale = 0;
  for (let j = 0; j < loop.length; j++) {
    worst = Math.max(worst, Math.abs(loop[j]! - sq[j]!));
    scale = Math.max(scale, Math.abs(loop[j]!));
  }
  t.ok(scale > 0, 'per-sample squares are not all zero');
  t.ok(worst <= 1e-6 * scale, `sum_i (dl_i/dW)^2 equals the batch-1 loop (max diff ${worst.toExponential(2)})`);
}

const sqCases: Array<SqCase & { axis?: number }> = [
  { name: 'Gemm', op: 'Gemm', inputs: [{ dims: [5, 4] }, { dims: [4, 3], const: true }, { dims: [3], const: true }] },
  { name: 'Gemm transB alpha', op: 'Gemm', attrs: { transB: 1, alpha: f(0.7), beta: f(2) }, inputs: [{ dims: [6, 4] }, { dims: [3, 4], const: true }, { dims: [1, 3], const: true }] },
  { name: 'Gemm transA alpha (samples are the columns of A)', op: 'Gemm', attrs: { transA: 1, alpha: f(-1.3) }, inputs: [{ dims: [4, 5] }, { dims: [4, 3], const: true }], axis: 1 },
  { name: 'Gemm transA transB alpha', op: 'Gemm', attrs: { transA: 1, transB: 1, alpha: f(2.5) }, inputs: [{ dims: [4, 5] }, { dims: [3, 4], const: true }, { dims: [3] }], axis: 1 },
  { name: 'MatMul [N,K] x [K,M]', op: 'MatMul', inputs: [{ dims: [6, 5] }, { dims: [5, 4], const: true }] },
  { name: 'MatMul [N,T,K] x [K,M] (sequence)', op: 'MatMul', inputs: [{ dims: [3, 4, 5] }, { dims: [5, 2], const: true }] },
  { name: 'MatMul [N,H,T,K] x [K,M]', op: 'MatMul', inputs: [{ dims: [3, 2, 4, 5] }, { dims: [5, 2], const: true }] },
  { name: 'MatMul weight first: [M,K] x [N,K,T]', op: 'MatMul', inputs: [{ dims: [3, 5], const: true }, { dims: [4, 5, 2] }], dataInput: 1, weightInput: 0 },
  { name: 'MatMul weight broadcast over the batch [1,K,M]', op: 'MatMul', inputs: [{ dims: [3, 4, 5] }, { dims: [1, 5, 2] }] },
  { name: 'Conv', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [3, 3, 5, 5] }, { dims: [4, 3, 3, 3], const: true }, { dims: [4], const: true }] },
  { name: 'Conv groups strides dilations asymmetric pads', op: 'Conv', attrs: { group: 2, strides: [2, 1], dilations: [1, 2], pads: [1, 2, 0, 1] }, inputs: [{ dims: [3, 4, 7, 8] }, { dims: [6, 2, 3, 3], const: true }] },
  { name: 'Conv depthwise (direct path)', op: 'Conv', attrs: { group: 4, pads: [1, 1, 1, 1], strides: [2, 2] }, inputs: [{ dims: [3, 4, 7, 7] }, { dims: [4, 1, 3, 3], const: true }, { dims: [4], const: true }] },
  { name: 'Conv depthwise multiplier 2 dilated', op: 'Conv', attrs: { group: 3, dilations: [2, 2], pads: [2, 1, 0, 3] }, inputs: [{ dims: [2, 3, 8, 9] }, { dims: [6, 1, 3, 3], const: true }] },
  { name: 'Conv 1x1 (direct gemm)', op: 'Conv', inputs: [{ dims: [3, 6, 4, 4] }, { dims: [4, 6, 1, 1], const: true }] },
  { name: 'Conv 1-D', op: 'Conv', attrs: { strides: [2], pads: [1, 2], dilations: [2] }, inputs: [{ dims: [3, 3, 10] }, { dims: [5, 3, 3], const: true }, { dims: [5], const: true }] },
  { name: 'Conv 3-D grouped', op: 'Conv', attrs: { group: 2, pads: [1, 0, 1, 1, 0, 0], strides: [1, 2, 1] }, inputs: [{ dims: [2, 4, 4, 5, 3] }, { dims: [4, 2, 3, 3, 2], const: true }] },
  { name: 'Conv chunked im2col (products summed over chunks before squaring)', op: 'Conv', attrs: { group: 2, strides: [2, 1], pads: [2, 1, 1, 0] }, inputs: [{ dims: [2, 16, 96, 40] }, { dims: [4, 8, 3, 3], const: true }] },
  { name: 'ConvTranspose', op: 'ConvTranspose', attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, inputs: [{ dims: [3, 3, 4, 4] }, { dims: [3, 2, 3, 3], const: true }, { dims: [2], const: true }] },
  { name: 'ConvTranspose groups strides', op: 'ConvTranspose', attrs: { group: 2, strides: [2, 1], pads: [1, 0, 1, 0] }, inputs: [{ dims: [3, 4, 4, 5] }, { dims: [4, 3, 3, 3], const: true }] },
  { name: 'ConvTranspose 1x1 (direct)', op: 'ConvTranspose', inputs: [{ dims: [3, 4, 3, 3] }, { dims: [4, 2, 1, 1], const: true }] },
];

t.test('per-sample squared weight gradients', async (t) => {
  for (const c of sqCases)
    await t.test(c.name!, async (tt) => {
      if (c.axis !== undefined) await checkPerSampleSquaresAlong(tt, c, c.axis);
      else await checkPerSampleSquares(tt, c);
    });
});

// ------------------------------------------------------------------------------------------------

function gradsOf(c: SqCase, precision: 'float32' | 'float64', perSampleSquares: boolean) {
  const dataInput = c.dataInput ?? 0;
  const weightInput = c.weightInput ?? 1;
  const p = prepareGradCase(c, 5);
  const model = new EngineModel(p.graph);
  try {
    const y = model.run(p.feeds, { precision: 'float64' });
    const r = rng(77);
    const coef = Float64Array.from({ length: y.out0!.data.length }, () => 2 * r() - 1);
    return model.gradients(p.feeds, {
      precision,
      seeds: { out0: { dims: y.out0!.dims, data: coef } },
      want: p.runtime.map((k) => `in${k}`),
      ...(perSampleSquares ? { layers: [{ node: 'node', dataInput, weightInput }], perSampleSquares } : {}),
    });
  } finally {
    model.dispose();
  }
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s > 0 ? d / s : d;
}

t.test('a weight batched along the samples: each sample owns its slice, so the squares are dW^2', async (t) => {
  const c: SqCase = { op: 'MatMul', inputs: [{ dims: [3, 4, 5] }, { dims: [3, 5, 2] }] };
  const g = gradsOf(c, 'float64', true);
  const dw = g.grads.in1!.data as Float64Array;
  const sq = g.sqWeightGrads.node!.data as Float64Array;
  t.ok(maxRel(sq, Float64Array.from(dw, (v) => v * v)) < 1e-14, 'sum_i (dl_i/dW)^2 = (dL/dW)^2');
});

t.test('the weight gradient is the same with per-sample squares', async (t) => {
  const cases: SqCase[] = [
    { name: 'Conv grouped chunked', op: 'Conv', attrs: { group: 2, strides: [2, 1], pads: [2, 1, 1, 0] }, inputs: [{ dims: [2, 16, 96, 40] }, { dims: [4, 8, 3, 3] }, { dims: [4] }] },
    { name: 'Conv depthwise', op: 'Conv', attrs: { group: 4, pads: [1, 1, 1, 1] }, inputs: [{ dims: [3, 4, 6, 6] }, { dims: [8, 1, 3, 3] }] },
    { name: 'ConvTranspose', op: 'ConvTranspose', attrs: { group: 2, strides: [2, 2] }, inputs: [{ dims: [3, 4, 3, 3] }, { dims: [4, 2, 3, 3] }] },
    { name: 'MatMul sequence', op: 'MatMul', inputs: [{ dims: [3, 4, 5] }, { dims: [5, 2] }] },
    { name: 'MatMul weight first', op: 'MatMul', inputs: [{ dims: [3, 5] }, { dims: [4, 5, 2] }], dataInput: 1, weightInput: 0 },
    { name: 'Gemm transB', op: 'Gemm', attrs: { transB: 1, alpha: f(0.5) }, inputs: [{ dims: [4, 3] }, { dims: [2, 3] }, { dims: [2] }] },
  ];
  for (const c of cases) {
    const plain = gradsOf(c, 'float64', false);
    const withSq = gradsOf(c, 'float64', true);
    for (const [name, g] of Object.entries(plain.grads))
      t.ok(maxRel(withSq.grads[name]!.data, g.data) < 1e-12, `${c.name}: d L / d ${name} unchanged`);
  }
});

t.test('float32 gradients agree with float64', async (t) => {
  const cases: SqCase[] = [
    { name: 'Conv grouped strided', op: 'Conv', attrs: { group: 2, strides: [2, 1], pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 4, 9, 8] }, { dims: [6, 2, 3, 3] }, { dims: [6] }] },
    { name: 'Conv chunked (float32 chunk size)', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 16, 48, 48] }, { dims: [4, 16, 3, 3] }, { dims: [4] }] },
    { name: 'Conv depthwise', op: 'Conv', attrs: { group: 4, pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 4, 7, 7] }, { dims: [4, 1, 3, 3] }] },
    { name: 'ConvTranspose', op: 'ConvTranspose', attrs: { strides: [2, 2] }, inputs: [{ dims: [2, 3, 4, 4] }, { dims: [3, 2, 3, 3] }, { dims: [2] }] },
    { name: 'Gemm', op: 'Gemm', attrs: { transB: 1 }, inputs: [{ dims: [4, 6] }, { dims: [5, 6] }, { dims: [5] }] },
    { name: 'MatMul batched', op: 'MatMul', inputs: [{ dims: [2, 3, 6] }, { dims: [6, 4] }] },
  ];
  for (const c of cases) {
    const g64 = gradsOf(c, 'float64', true);
    const g32 = gradsOf(c, 'float32', true);
    for (const [name, g] of Object.entries(g64.grads)) {
      t.equal(g32.grads[name]!.data.constructor, Float32Array, `${c.name}: ${name} gradient is float32`);
      const rel = maxRel(g32.grads[name]!.data, g.data);
      t.ok(rel < 1e-4, `${c.name}: d L / d ${name} float32 vs float64 (max rel ${rel.toExponential(2)})`);
    }
    const rel = maxRel(g32.sqWeightGrads.node!.data, g64.sqWeightGrads.node!.data);
    t.ok(rel < 1e-4, `${c.name}: per-sample squares float32 vs float64 (max rel ${rel.toExponential(2)})`);
  }
});
