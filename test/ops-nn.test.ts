/**
 * NN ops against onnxruntime-node: Gemm, MatMul, Conv, ConvTranspose, MaxPool, AveragePool,
 * GlobalAveragePool, GlobalMaxPool, Resize, Upsample, BatchNormalization, LayerNormalization,
 * InstanceNormalization; plus float64 runs of a subset and the documented failures.
 */
import t from 'tap';
import type { Test } from 'tap';
import { buildOpModel, caseLabel, checkOps, runOrt, type OpCase } from './helpers/ops.js';
import { EngineModel } from '../src/engine/model.js';

const f = (value: number) => ({ type: 'float' as const, value });
const fs = (value: number[]) => ({ type: 'floats' as const, value });
const i64 = (data: number[]) => ({ dims: [data.length], type: 'int64' as const, data, const: true });
const c32 = (data: number[]) => ({ dims: [data.length], data, const: true });
const emptyRoi = { dims: [0], data: [], const: true };

// ------------------------------------------------------------------------------------------------
const gemmCases: OpCase[] = [];
{
  const M = 3, K = 5, N = 4;
  const cShapes: Array<number[] | null> = [[N], [1, N], [M, N], [M, 1], [], null];
  let k = 0;
  for (const transA of [0, 1])
    for (const transB of [0, 1])
      for (const cd of cShapes) {
        k++;
        const inputs: OpCase['inputs'] = [
          { dims: transA ? [K, M] : [M, K] },
          { dims: transB ? [N, K] : [K, N], const: k % 2 === 0 },
        ];
        if (cd) inputs.push({ dims: cd, const: k % 3 !== 0 });
        gemmCases.push({
          op: 'Gemm',
          opset: cd ? (k % 4 === 0 ? 7 : 13) : 13,
          attrs: { transA, transB, ...(k % 2 ? { alpha: f(0.75), beta: f(1.5) } : {}) },
          inputs,
        });
      }
  gemmCases.push({ name: 'beta 0 ignores C', op: 'Gemm', attrs: { beta: f(0) }, inputs: [{ dims: [2, 3] }, { dims: [3, 4], const: true }, { dims: [4], const: true }] });
  gemmCases.push({ name: 'classifier head 1x64 * 64x10^T', op: 'Gemm', attrs: { transB: 1 }, inputs: [{ dims: [1, 64] }, { dims: [10, 64], const: true }, { dims: [10], const: true }] });
  gemmCases.push({ name: 'larger 37x70x29', op: 'Gemm', inputs: [{ dims: [37, 70] }, { dims: [70, 29], const: true }, { dims: [29], const: true }], rtol: 1e-4, atol: 1e-4 });
}

const matmulCases: OpCase[] = [
  { op: 'MatMul', inputs: [{ dims: [3, 4] }, { dims: [4, 5] }] },
  { op: 'MatMul', inputs: [{ dims: [3, 4] }, { dims: [4, 5], const: true }] },
  { name: '1-D x 2-D', op: 'MatMul', inputs: [{ dims: [4] }, { dims: [4, 5], const: true }] },
  { name: '2-D x 1-D', op: 'MatMul', inputs: [{ dims: [3, 4] }, { dims: [4] }] },
  { name: '1-D x 1-D', op: 'MatMul', inputs: [{ dims: [6] }, { dims: [6] }] },
  { name: 'batch broadcast [2,1,3,4] x [5,4,6]', op: 'MatMul', inputs: [{ dims: [2, 1, 3, 4] }, { dims: [5, 4, 6] }] },
  { name: 'batch broadcast const B', op: 'MatMul', inputs: [{ dims: [2, 1, 3, 4] }, { dims: [5, 4, 6], const: true }] },
  { name: 'batched x shared 2-D weight', op: 'MatMul', inputs: [{ dims: [2, 5, 7] }, { dims: [7, 3], const: true }] },
  { name: 'shared A x batched B', op: 'MatMul', inputs: [{ dims: [3, 7] }, { dims: [2, 7, 4] }] },
  { name: '1-D x batched', op: 'MatMul', inputs: [{ dims: [7] }, { dims: [2, 7, 3] }] },
  { name: 'batched x 1-D', op: 'MatMul', inputs: [{ dims: [2, 3, 4, 5] }, { dims: [5] }] },
  { name: '[1,3,4] x [2,4,2]', op: 'MatMul', inputs: [{ dims: [1, 3, 4] }, { dims: [2, 4, 2] }] },
  { name: '[2,3,4] x [2,4,5]', op: 'MatMul', inputs: [{ dims: [2, 3, 4] }, { dims: [2, 4, 5] }] },
  { name: '[3,1,2,4] x [1,2,4,3]', op: 'MatMul', inputs: [{ dims: [3, 1, 2, 4] }, { dims: [1, 2, 4, 3] }] },
  { name: 'larger 1x49x96 x 96x80', op: 'MatMul', inputs: [{ dims: [1, 49, 96] }, { dims: [96, 80], const: true }], atol: 1e-4 },
];

// ------------------------------------------------------------------------------------------------
const convCases: OpCase[] = [
  { name: 'basic 3x3 pads 1, const W + bias', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 8, 8] }, { dims: [4, 3, 3, 3], const: true }, { dims: [4], const: true }] },
  { name: 'non-const W, no bias, asymmetric pads, strides', op: 'Conv', attrs: { pads: [0, 1, 2, 0], strides: [2, 1] }, inputs: [{ dims: [1, 4, 7, 9] }, { dims: [6, 4, 3, 2] }] },
  { name: 'kernel_shape given', op: 'Conv', attrs: { kernel_shape: [3, 3], strides: [2, 2] }, inputs: [{ dims: [1, 2, 9, 9] }, { dims: [3, 2, 3, 3], const: true }] },
  { name: 'group 2', op: 'Conv', attrs: { group: 2, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 4, 6, 6] }, { dims: [6, 2, 3, 3], const: true }, { dims: [6], const: true }] },
  { name: 'group 3 strided, non-const bias', op: 'Conv', attrs: { group: 3, strides: [2, 2], pads: [1, 0, 1, 0] }, inputs: [{ dims: [2, 6, 7, 6] }, { dims: [9, 2, 3, 3], const: true }, { dims: [9] }] },
  { name: 'depthwise 3x3 stride 2', op: 'Conv', attrs: { group: 8, pads: [1, 1, 1, 1], strides: [2, 2] }, inputs: [{ dims: [2, 8, 9, 9] }, { dims: [8, 1, 3, 3], const: true }, { dims: [8], const: true }] },
  { name: 'depthwise 5x5 stride 1 no bias', op: 'Conv', attrs: { group: 6, pads: [2, 2, 2, 2] }, inputs: [{ dims: [1, 6, 10, 11] }, { dims: [6, 1, 5, 5], const: true }] },
  { name: 'depthwise multiplier 2', op: 'Conv', attrs: { group: 4, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 4, 7, 7] }, { dims: [8, 1, 3, 3], const: true }, { dims: [8], const: true }] },
  { name: 'depthwise dilated, asymmetric pads, stride [1,2]', op: 'Conv', attrs: { group: 3, dilations: [2, 2], pads: [2, 1, 0, 3], strides: [1, 2] }, inputs: [{ dims: [1, 3, 8, 9] }, { dims: [3, 1, 3, 3] }] },
  { name: 'depthwise SAME_UPPER stride 2', op: 'Conv', attrs: { group: 5, auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 5, 8, 7] }, { dims: [5, 1, 3, 3], const: true }] },
  { name: 'depthwise kernel [2,6] (generic row path)', op: 'Conv', attrs: { group: 3, pads: [1, 2, 0, 3] }, inputs: [{ dims: [2, 3, 7, 9] }, { dims: [3, 1, 2, 6], const: true }, { dims: [3], const: true }] },
  { name: 'depthwise 7x7 stride 3, kernel [4,1]', op: 'Conv', attrs: { group: 2, pads: [3, 3, 3, 3], strides: [3, 3] }, inputs: [{ dims: [1, 2, 13, 11] }, { dims: [2, 1, 7, 7], const: true }] },
  { name: 'depthwise kernel [4,1] stride [1,2]', op: 'Conv', attrs: { group: 4, strides: [1, 2], pads: [1, 0, 2, 0] }, inputs: [{ dims: [1, 4, 6, 7] }, { dims: [8, 1, 4, 1], const: true }] },
  { name: 'dilations 2', op: 'Conv', attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] }, inputs: [{ dims: [1, 3, 9, 10] }, { dims: [4, 3, 3, 3], const: true }, { dims: [4], const: true }] },
  { name: 'dilations [1,3] strides [2,1]', op: 'Conv', attrs: { dilations: [1, 3], strides: [2, 1] }, inputs: [{ dims: [2, 2, 9, 12] }, { dims: [3, 2, 2, 3], const: true }] },
  { name: 'auto_pad SAME_UPPER stride 2', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 3, 7, 8] }, { dims: [4, 3, 3, 3], const: true }] },
  { name: 'auto_pad SAME_LOWER kernel 4x3', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [1, 2, 6, 7] }, { dims: [3, 2, 4, 3], const: true }, { dims: [3], const: true }] },
  { name: 'auto_pad SAME_LOWER stride 3', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER', strides: [3, 3] }, inputs: [{ dims: [1, 2, 10, 8] }, { dims: [3, 2, 4, 4], const: true }] },
  { name: 'auto_pad VALID', op: 'Conv', attrs: { auto_pad: 'VALID', strides: [2, 2] }, inputs: [{ dims: [1, 3, 9, 8] }, { dims: [2, 3, 3, 3], const: true }] },
  { name: '1x1 (direct gemm)', op: 'Conv', inputs: [{ dims: [2, 8, 5, 5] }, { dims: [4, 8, 1, 1], const: true }, { dims: [4], const: true }] },
  { name: '1x1 stride 2', op: 'Conv', attrs: { strides: [2, 2] }, inputs: [{ dims: [1, 8, 6, 5] }, { dims: [4, 8, 1, 1], const: true }] },
  { name: '1x1 grouped', op: 'Conv', attrs: { group: 2 }, inputs: [{ dims: [1, 6, 4, 4] }, { dims: [4, 3, 1, 1] }] },
  { name: '1-D', op: 'Conv', attrs: { strides: [2], pads: [1, 2], dilations: [2] }, inputs: [{ dims: [2, 3, 10] }, { dims: [5, 3, 3], const: true }, { dims: [5], const: true }] },
  { name: '1-D depthwise (im2col path)', op: 'Conv', attrs: { group: 4, pads: [1, 1] }, inputs: [{ dims: [1, 4, 9] }, { dims: [4, 1, 3], const: true }] },
  { name: '1-D SAME_UPPER', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER', strides: [2] }, inputs: [{ dims: [1, 2, 11] }, { dims: [3, 2, 4] }] },
  { name: '3-D', op: 'Conv', attrs: { pads: [1, 0, 1, 1, 0, 0], strides: [1, 2, 1] }, inputs: [{ dims: [1, 2, 5, 6, 4] }, { dims: [3, 2, 3, 3, 2], const: true }, { dims: [3], const: true }] },
  { name: '3-D grouped dilated', op: 'Conv', attrs: { group: 2, dilations: [1, 2, 1], pads: [1, 2, 1, 1, 2, 1] }, inputs: [{ dims: [2, 4, 4, 5, 4] }, { dims: [4, 2, 3, 3, 3] }] },
  { name: 'pads larger than the kernel', op: 'Conv', attrs: { pads: [3, 0, 2, 4] }, inputs: [{ dims: [1, 2, 4, 5] }, { dims: [2, 2, 2, 2], const: true }] },
  { name: 'MobileNet-style depthwise 3x3 s1 on 14x14', op: 'Conv', attrs: { group: 32, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 32, 14, 14] }, { dims: [32, 1, 3, 3], const: true }, { dims: [32], const: true }] },
  // Column matrices over 1 MiB are built in chunks of output rows.
  { name: 'chunked im2col 3x3 on 64x64', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 16, 64, 64] }, { dims: [8, 16, 3, 3], const: true }, { dims: [8], const: true }], atol: 1e-4 },
  { name: 'chunked im2col, stride 2, dilation, asymmetric pads', op: 'Conv', attrs: { strides: [2, 1], pads: [2, 1, 3, 0], dilations: [2, 1] }, inputs: [{ dims: [1, 16, 70, 66] }, { dims: [6, 16, 3, 5], const: true }], atol: 1e-4 },
  { name: 'chunked im2col, grouped, no bias', op: 'Conv', attrs: { group: 2, pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 32, 48, 48] }, { dims: [16, 16, 3, 3] }], atol: 1e-4 },
  { name: 'chunked im2col 1-D', op: 'Conv', attrs: { pads: [2, 2] }, inputs: [{ dims: [1, 64, 5000] }, { dims: [8, 64, 5], const: true }, { dims: [8], const: true }], atol: 1e-4 },
  { name: 'chunked im2col 3-D', op: 'Conv', attrs: { pads: [1, 1, 1, 1, 1, 1], strides: [2, 1, 1] }, inputs: [{ dims: [1, 8, 20, 24, 24] }, { dims: [4, 8, 3, 3, 3], const: true }], atol: 1e-4 },
  { name: 'larger 16->32 3x3 on 20x20', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 16, 20, 20] }, { dims: [32, 16, 3, 3], const: true }, { dims: [32], const: true }], atol: 1e-4 },
];

const convTransposeCases: OpCase[] = [
  { name: 'basic + bias', op: 'ConvTranspose', inputs: [{ dims: [1, 3, 4, 4] }, { dims: [3, 2, 3, 3], const: true }, { dims: [2], const: true }] },
  { name: 'non-const W', op: 'ConvTranspose', inputs: [{ dims: [2, 2, 3, 5] }, { dims: [2, 3, 2, 3] }] },
  { name: 'strides 2 pads 1 output_padding 1', op: 'ConvTranspose', attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, inputs: [{ dims: [1, 3, 5, 5] }, { dims: [3, 4, 3, 3], const: true }, { dims: [4], const: true }] },
  { name: 'strides [3,2] asymmetric pads', op: 'ConvTranspose', attrs: { strides: [3, 2], pads: [1, 2, 0, 1] }, inputs: [{ dims: [1, 1, 3, 3] }, { dims: [1, 2, 3, 3], const: true }] },
  { name: 'stride 2 kernel 2 (PP-OCR det head)', op: 'ConvTranspose', attrs: { strides: [2, 2] }, inputs: [{ dims: [1, 4, 6, 6] }, { dims: [4, 4, 2, 2], const: true }, { dims: [4], const: true }] },
  { name: 'output_shape', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 9] }, inputs: [{ dims: [1, 2, 5, 4] }, { dims: [2, 3, 3, 3], const: true }] },
  { name: 'output_shape, odd total padding in both dims', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 8] }, inputs: [{ dims: [1, 2, 5, 5] }, { dims: [2, 3, 3, 3], const: true }] },
  { name: 'output_shape with SAME_UPPER', op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [10, 8], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 5, 5] }, { dims: [2, 3, 3, 3], const: true }] },
  { name: 'group 2', op: 'ConvTranspose', attrs: { group: 2, strides: [2, 1], pads: [1, 0, 1, 0] }, inputs: [{ dims: [1, 4, 5, 5] }, { dims: [4, 3, 3, 3], const: true }, { dims: [6], const: true }] },
  { name: 'depthwise group 3', op: 'ConvTranspose', attrs: { group: 3, strides: [2, 2] }, inputs: [{ dims: [2, 3, 4, 4] }, { dims: [3, 1, 3, 3], const: true }] },
  { name: 'dilations 2', op: 'ConvTranspose', attrs: { dilations: [2, 2] }, inputs: [{ dims: [1, 2, 4, 5] }, { dims: [2, 2, 3, 3], const: true }] },
  { name: 'auto_pad SAME_UPPER stride 2', op: 'ConvTranspose', attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 4] }, { dims: [2, 2, 3, 3], const: true }] },
  { name: 'auto_pad SAME_LOWER stride 2', op: 'ConvTranspose', attrs: { auto_pad: 'SAME_LOWER', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 4] }, { dims: [2, 2, 3, 3], const: true }] },
  { name: 'auto_pad VALID', op: 'ConvTranspose', attrs: { auto_pad: 'VALID', strides: [2, 2] }, inputs: [{ dims: [1, 2, 3, 3] }, { dims: [2, 1, 3, 3], const: true }] },
  { name: '1x1 stride 1 (direct gemm)', op: 'ConvTranspose', inputs: [{ dims: [2, 5, 3, 4] }, { dims: [5, 3, 1, 1], const: true }, { dims: [3], const: true }] },
  { name: 'group 2 + dilation + output_padding', op: 'ConvTranspose', attrs: { group: 2, dilations: [2, 1], strides: [3, 2], output_padding: [2, 1], pads: [1, 1, 0, 2] }, inputs: [{ dims: [2, 4, 3, 4] }, { dims: [4, 2, 3, 2], const: true }, { dims: [4], const: true }] },
  { name: '3-D', op: 'ConvTranspose', attrs: { strides: [2, 1, 2], pads: [1, 0, 0, 0, 1, 1] }, inputs: [{ dims: [1, 2, 3, 4, 3] }, { dims: [2, 3, 2, 3, 3], const: true }, { dims: [3], const: true }] },
  { name: '1-D stride 3', op: 'ConvTranspose', attrs: { strides: [3], pads: [1, 0] }, inputs: [{ dims: [2, 3, 6] }, { dims: [3, 4, 3], const: true }, { dims: [4], const: true }] },
];

// ------------------------------------------------------------------------------------------------
const poolCases: OpCase[] = [
  { name: '3x3 s2 p1', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 9, 8] }] },
  { name: '2x2 s2', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 2, 8, 6] }] },
  { name: 'ceil_mode', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'ceil_mode drops a window starting in the pad', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 1, 5, 5] }] },
  { name: 'asymmetric pads', op: 'MaxPool', attrs: { kernel_shape: [3, 2], pads: [0, 1, 2, 0] }, inputs: [{ dims: [1, 2, 6, 7] }] },
  { name: 'dilations', op: 'MaxPool', attrs: { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'SAME_UPPER', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 8, 7] }] },
  { name: 'SAME_LOWER', op: 'MaxPool', attrs: { kernel_shape: [2, 2], auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [1, 2, 5, 6] }] },
  { name: 'VALID', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'VALID' }, inputs: [{ dims: [1, 2, 8, 7] }] },
  { name: 'opset 8', op: 'MaxPool', opset: 8, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 3, 6, 6] }] },
  { name: '1-D', op: 'MaxPool', attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] }, inputs: [{ dims: [2, 3, 11] }] },
  { name: '3-D', op: 'MaxPool', attrs: { kernel_shape: [2, 3, 2], strides: [2, 1, 2], pads: [0, 1, 1, 1, 1, 0] }, inputs: [{ dims: [1, 2, 5, 6, 5] }] },
  { name: 'ceil_mode + dilations + pads', op: 'MaxPool', attrs: { kernel_shape: [3, 2], strides: [2, 3], dilations: [2, 1], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 10, 11] }] },
  { name: 'count_include_pad 0', op: 'AveragePool', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 6, 7] }] },
  { name: 'count_include_pad 1', op: 'AveragePool', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [2, 3, 6, 7] }] },
  { name: 'strides, asymmetric pads', op: 'AveragePool', attrs: { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 0, 0, 2] }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'ceil_mode', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'ceil_mode + pads + count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }, inputs: [{ dims: [1, 2, 8, 8] }] },
  { name: 'ceil_mode + pads, exclude pad', op: 'AveragePool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 1, 5, 6] }] },
  { name: 'SAME_UPPER', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 8, 7] }] },
  { name: 'SAME_LOWER', op: 'AveragePool', attrs: { kernel_shape: [2, 2], auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [1, 2, 5, 6] }] },
  { name: 'opset 19 dilations', op: 'AveragePool', opset: 19, attrs: { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'opset 19 dilations count_include_pad', op: 'AveragePool', opset: 19, attrs: { kernel_shape: [2, 2], dilations: [2, 1], pads: [1, 1, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'opset 7', op: 'AveragePool', opset: 7, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 3, 6, 6] }] },
  { name: '1-D', op: 'AveragePool', attrs: { kernel_shape: [4], strides: [2], pads: [1, 2] }, inputs: [{ dims: [2, 3, 11] }] },
  { name: '3-D count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [2, 2, 3], strides: [1, 2, 2], pads: [1, 0, 1, 0, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [1, 2, 4, 6, 7] }] },
  { name: '1-D ceil_mode count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [3], strides: [2], pads: [1, 1], ceil_mode: 1, count_include_pad: 1 }, inputs: [{ dims: [1, 2, 10] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [2, 3, 5, 6] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [2, 3, 7] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [1, 2, 3, 4, 5] }] },
  { op: 'GlobalMaxPool', inputs: [{ dims: [2, 3, 5, 6] }] },
  { op: 'GlobalMaxPool', inputs: [{ dims: [1, 4, 9] }] },
];

// ------------------------------------------------------------------------------------------------
const resizeCases: OpCase[] = [
  { name: 'PP-OCR det: nearest, scales [1,1,2,2], opset 11', op: 'Resize', opset: 11, attrs: { mode: 'nearest' }, inputs: [{ dims: [1, 3, 5, 6] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'nearest asymmetric floor (PP-OCR export attrs)', op: 'Resize', opset: 11, attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'nearest opset 13 roi absent', op: 'Resize', opset: 13, inputs: [{ dims: [2, 3, 4, 4] }, { dims: [0], absent: true }, c32([1, 1, 3, 2])] },
  { name: 'nearest downsample round_prefer_ceil', op: 'Resize', opset: 13, attrs: { nearest_mode: 'round_prefer_ceil' }, inputs: [{ dims: [1, 2, 9, 8] }, { dims: [0], absent: true }, c32([1, 1, 0.5, 0.6])] },
  { name: 'nearest downsample x0.5 round_prefer_floor (ties)', op: 'Resize', opset: 13, inputs: [{ dims: [1, 2, 8, 8] }, { dims: [0], absent: true }, c32([1, 1, 0.5, 0.5])] },
  { name: 'nearest scales on N and C too', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'asymmetric' }, inputs: [{ dims: [2, 3, 3, 2] }, { dims: [0], absent: true }, c32([1.5, 0.67, 2, 1])] },
  { name: 'nearest align_corners', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'align_corners' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, c32([1, 1, 1.75, 2.5])] },
  // onnxruntime only knows the spec's 'tf_half_pixel_for_nearest' by its own name 'tf_half_pixel_for_nn'; the engine takes both.
  { name: 'nearest tf_half_pixel_for_nn (opset 11)', op: 'Resize', opset: 11, attrs: { coordinate_transformation_mode: 'tf_half_pixel_for_nn' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, c32([1, 1, 1.5, 2])] },
  { name: 'nearest pytorch_half_pixel ceil, sizes', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'pytorch_half_pixel', nearest_mode: 'ceil' }, inputs: [{ dims: [1, 2, 5, 4] }, emptyRoi, { dims: [0], absent: true }, i64([1, 2, 8, 1])] },
  { name: 'nearest half_pixel floor, sizes', op: 'Resize', opset: 13, attrs: { nearest_mode: 'floor' }, inputs: [{ dims: [2, 2, 6, 7] }, emptyRoi, { dims: [0], absent: true }, i64([2, 2, 4, 11])] },
  { name: 'nearest 3-D input', op: 'Resize', opset: 13, inputs: [{ dims: [2, 3, 5] }, emptyRoi, c32([1, 1, 3])] },
  { name: 'linear half_pixel x2', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 3, 5, 6] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'linear half_pixel downsample', op: 'Resize', opset: 11, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 9, 10] }, emptyRoi, c32([1, 1, 0.5, 0.7])] },
  { name: 'linear align_corners, sizes', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, { dims: [0], absent: true }, i64([1, 2, 7, 9])] },
  { name: 'linear asymmetric', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'asymmetric' }, inputs: [{ dims: [2, 2, 3, 4] }, emptyRoi, c32([1, 1, 2.5, 1.5])] },
  { name: 'linear pytorch_half_pixel to size 1', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, inputs: [{ dims: [1, 2, 5, 6] }, emptyRoi, { dims: [0], absent: true }, i64([1, 2, 1, 9])] },
  { name: 'linear tf_crop_and_resize + extrapolation', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: f(-2) }, inputs: [{ dims: [1, 1, 6, 6] }, c32([0, 0, 0.2, -0.1, 1, 1, 1.2, 0.9]), { dims: [0], absent: true }, i64([1, 1, 5, 7])] },
  { name: 'nearest tf_crop_and_resize', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'tf_crop_and_resize' }, inputs: [{ dims: [1, 2, 6, 5] }, c32([0, 0, 0.1, 0.3, 1, 1, 0.8, 1.3]), { dims: [0], absent: true }, i64([1, 2, 4, 6])] },
  { name: 'linear 5-D trilinear', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4, 3] }, emptyRoi, c32([1, 1, 2, 1.5, 2])] },
  { name: 'linear 3-D input', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [2, 3, 5] }, emptyRoi, c32([1, 1, 2])] },
  { name: 'opset 18 axes + sizes', op: 'Resize', opset: 18, attrs: { mode: 'linear', axes: [2, 3] }, inputs: [{ dims: [1, 2, 4, 6] }, { dims: [0], absent: true }, { dims: [0], absent: true }, i64([6, 9])] },
  { name: 'opset 18 keep_aspect_ratio_policy not_larger', op: 'Resize', opset: 18, attrs: { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' }, inputs: [{ dims: [1, 2, 4, 6] }, { dims: [0], absent: true }, { dims: [0], absent: true }, i64([8, 9])] },
  { name: 'opset 18 keep_aspect_ratio_policy not_smaller', op: 'Resize', opset: 18, attrs: { mode: 'linear', axes: [2, 3], keep_aspect_ratio_policy: 'not_smaller' }, inputs: [{ dims: [1, 2, 4, 6] }, { dims: [0], absent: true }, { dims: [0], absent: true }, i64([8, 9])] },
  { name: 'opset 19 half_pixel_symmetric', op: 'Resize', opset: 19, attrs: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' }, inputs: [{ dims: [1, 1, 4, 5] }, { dims: [0], absent: true }, c32([1, 1, 1.7, 2.3])] },
  { name: 'opset 10 nearest', op: 'Resize', opset: 10, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 3])] },
  { name: 'opset 10 nearest downsample', op: 'Resize', opset: 10, inputs: [{ dims: [1, 2, 8, 9] }, c32([1, 1, 0.5, 0.4])] },
  { name: 'opset 10 linear', op: 'Resize', opset: 10, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 2.5])] },
  { name: 'opset 9 nearest', op: 'Upsample', opset: 9, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 2])] },
  { name: 'opset 9 linear', op: 'Upsample', opset: 9, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 3])] },
  { name: 'opset 7 scales attribute', op: 'Upsample', opset: 7, attrs: { mode: 'nearest', scales: fs([1, 1, 3, 2]) }, inputs: [{ dims: [1, 2, 3, 4] }] },
  { name: 'opset 7 linear non-integer scale', op: 'Upsample', opset: 7, attrs: { mode: 'linear', scales: fs([1, 1, 1.5, 2]) }, inputs: [{ dims: [2, 1, 4, 3] }] },
];

// ------------------------------------------------------------------------------------------------
const positive = { low: 0.5, high: 1.5 };
const normCases: OpCase[] = [
  { name: 'NCHW', op: 'BatchNormalization', opset: 15, inputs: [{ dims: [2, 3, 4, 5] }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true, ...positive }] },
  { name: 'epsilon, opset 9', op: 'BatchNormalization', opset: 9, attrs: { epsilon: f(0.01) }, inputs: [{ dims: [2, 4, 3, 3] }, { dims: [4], const: true }, { dims: [4], const: true }, { dims: [4], const: true }, { dims: [4], const: true, ...positive }] },
  { name: 'rank 2, opset 14', op: 'BatchNormalization', opset: 14, inputs: [{ dims: [5, 3] }, { dims: [3] }, { dims: [3] }, { dims: [3], const: true }, { dims: [3], const: true, ...positive }] },
  { name: '1-D spatial', op: 'BatchNormalization', inputs: [{ dims: [2, 3, 7] }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true, ...positive }] },
  { name: 'opset 7 spatial=0 (per-element parameters)', op: 'BatchNormalization', opset: 7, attrs: { spatial: 0 }, inputs: [{ dims: [2, 3, 4, 5] }, { dims: [3, 4, 5], const: true }, { dims: [3, 4, 5], const: true }, { dims: [3, 4, 5], const: true }, { dims: [3, 4, 5], const: true, ...positive }] },
  { name: 'axis -1 with B', op: 'LayerNormalization', inputs: [{ dims: [2, 3, 8] }, { dims: [8], const: true }, { dims: [8], const: true }] },
  { name: 'axis -2', op: 'LayerNormalization', attrs: { axis: -2 }, inputs: [{ dims: [2, 3, 8] }, { dims: [3, 8], const: true }, { dims: [3, 8], const: true }] },
  { name: 'axis 1 of rank 4, no B, epsilon', op: 'LayerNormalization', attrs: { axis: 1, epsilon: f(1e-3) }, inputs: [{ dims: [2, 3, 2, 4] }, { dims: [3, 2, 4] }] },
  { name: 'Mean and InvStdDev outputs', op: 'LayerNormalization', outputs: 3, inputs: [{ dims: [4, 16] }, { dims: [16], const: true }, { dims: [16], const: true }] },
  { name: 'Mean and InvStdDev outputs axis -2', op: 'LayerNormalization', attrs: { axis: -2 }, outputs: 3, inputs: [{ dims: [2, 3, 5] }, { dims: [3, 5], const: true }, { dims: [3, 5], const: true }] },
  { name: 'scale broadcast [1, D]', op: 'LayerNormalization', attrs: { axis: -2 }, inputs: [{ dims: [2, 3, 5] }, { dims: [1, 5], const: true }, { dims: [5], const: true }] },
  { op: 'InstanceNormalization', inputs: [{ dims: [2, 3, 5, 4] }, { dims: [3], const: true }, { dims: [3], const: true }] },
  { name: '1-D spatial, epsilon', op: 'InstanceNormalization', attrs: { epsilon: f(1e-2) }, inputs: [{ dims: [2, 4, 9] }, { dims: [4] }, { dims: [4] }] },
];

// ------------------------------------------------------------------------------------------------
/** Runs the engine in float64 and compares with onnxruntime's float32 result. */
async function checkF64(t: Test, cases: OpCase[]): Promise<void> {
  for (const c of cases) {
    await t.test(`float64 ${caseLabel(c)}`, async (tt) => {
      const { bytes, graph, feeds, feedDims, outputs } = buildOpModel(c, 3);
      const expected = await runOrt(bytes, feeds, feedDims);
      const model = new EngineModel(graph);
      const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dims: feedDims[k]!, data: Float64Array.from(v) }]));
      const got = model.run(inputs, { precision: 'float64' });
      model.dispose();
      for (const name of outputs) {
        const e = expected[name]!;
        const g = got[name]!;
        tt.same(g.dims, Array.from(e.dims, Number), `${name} dims`);
        const ed = e.data as Float32Array;
        let bad = -1;
        for (let i = 0; i < ed.length; i++) if (!(Math.abs(g.data[i] as number - ed[i]!) <= 1e-4 + 1e-4 * Math.abs(ed[i]!))) bad = i;
        tt.ok(bad < 0, `${name} within tolerance`, bad >= 0 ? { index: bad, got: g.data[bad], expected: ed[bad] } : {});
      }
    });
  }
}

/** Builds the one-node model and expects the engine to refuse it with a message matching `re`. */
async function checkFails(t: Test, c: OpCase, re: RegExp): Promise<void> {
  await t.test(`fails: ${caseLabel(c)}`, async (tt) => {
    const { graph, feeds, feedDims } = buildOpModel(c);
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dims: feedDims[k]!, data: v }]));
    let err: unknown;
    try {
      const model = new EngineModel(graph);
      try {
        model.run(inputs);
      } finally {
        model.dispose();
      }
    } catch (e) {
      err = e;
    }
    tt.ok(err instanceof Error, 'throws');
    tt.match((err as Error)?.message ?? '', re);
  });
}

t.test('Gemm', async (t) => checkOps(t, gemmCases));
t.test('MatMul', async (t) => checkOps(t, matmulCases));
t.test('Conv', async (t) => checkOps(t, convCases));
t.test('ConvTranspose', async (t) => checkOps(t, convTransposeCases));
t.test('pooling', async (t) => checkOps(t, poolCases));
t.test('Resize / Upsample', async (t) => checkOps(t, resizeCases));
t.test('normalization', async (t) => checkOps(t, normCases));

t.test('float64 engine runs', async (t) => {
  const pick = (cases: OpCase[], ...names: string[]) =>
    names.map((n) => {
      const c = cases.find((x) => x.name === n);
      if (!c) throw new Error(`no case named '${n}'`);
      return c;
    });
  await checkF64(t, [
    gemmCases[2]!,
    gemmCases[9]!,
    ...pick(matmulCases, 'batch broadcast [2,1,3,4] x [5,4,6]', 'batched x shared 2-D weight', '1-D x 2-D'),
    ...pick(convCases, 'basic 3x3 pads 1, const W + bias', 'depthwise 3x3 stride 2', 'group 3 strided, non-const bias', '3-D', '1x1 (direct gemm)'),
    ...pick(convTransposeCases, 'strides 2 pads 1 output_padding 1', 'group 2', 'output_shape'),
    ...pick(poolCases, '3x3 s2 p1', 'count_include_pad 1', 'ceil_mode + pads + count_include_pad'),
    ...pick(resizeCases, 'PP-OCR det: nearest, scales [1,1,2,2], opset 11', 'linear half_pixel x2', 'linear tf_crop_and_resize + extrapolation'),
    ...pick(normCases, 'NCHW', 'Mean and InvStdDev outputs', 'axis -2'),
    normCases.find((c) => c.op === 'InstanceNormalization')!,
  ]);
});

t.test('clear failures', async (t) => {
  await checkFails(t, { op: 'MaxPool', outputs: 2, attrs: { kernel_shape: [2, 2] }, inputs: [{ dims: [1, 1, 4, 4] }] }, /Indices output of MaxPool is not supported/);
  await checkFails(t, { op: 'Resize', opset: 13, attrs: { mode: 'cubic' }, inputs: [{ dims: [1, 1, 4, 4] }, emptyRoi, c32([1, 1, 2, 2])] }, /mode 'cubic' is not supported/);
  await checkFails(t, { op: 'Conv', inputs: [{ dims: [1, 3, 8, 8] }, { dims: [4, 3, 3], const: true }] }, /expected W of rank 3 to match X of rank 4|expected W of rank 4 to match X of rank 4 but got rank 3/);
  await checkFails(t, { op: 'Conv', inputs: [{ dims: [1, 3, 8, 8] }, { dims: [4, 2, 3, 3], const: true }] }, /input channels/);
  await checkFails(t, { op: 'Gemm', inputs: [{ dims: [2, 3] }, { dims: [4, 5], const: true }] }, /inner dimensions/);
  await checkFails(t, { op: 'MatMul', inputs: [{ dims: [2, 3, 4] }, { dims: [3, 5, 6] }] }, /last dim of A|batch dims/);
  await checkFails(t, { op: 'BatchNormalization', opset: 15, attrs: { training_mode: 1 }, inputs: [{ dims: [2, 3, 4] }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true }, { dims: [3], const: true, ...positive }] }, /training_mode/);
});
