/**
 * The batched Conv backward path (ops/conv_batched.cpp) and the 2x2 MaxPool fast path (ops/pool2x2.cpp) against central finite
 * differences. Input channels are chosen so that C * KH * KW > 100: smaller convolutions with unit strides take the direct path
 * (ops/conv_direct.cpp, test/grad-conv-direct.test.ts).
 */
import t from 'tap';
import { checkGrads, checkPerSampleSquares, type GradCase } from './helpers/grad.js';
const cases: GradCase[] = [
  { name: 'N3 asymmetric pads', op: 'Conv', attrs: { pads: [0, 1, 2, 0] }, inputs: [{ dims: [3, 18, 7, 9] }, { dims: [6, 18, 3, 2] }], samples: 40 },
  { name: 'N2 valid', op: 'Conv', inputs: [{ dims: [2, 12, 9, 9] }, { dims: [3, 12, 3, 3] }, { dims: [3] }], samples: 40 },
  { name: 'N2 pads larger than kernel', op: 'Conv', attrs: { pads: [3, 0, 2, 4] }, inputs: [{ dims: [2, 26, 4, 5] }, { dims: [2, 26, 2, 2] }], samples: 40 },
  { name: 'N4 SAME_UPPER even kernel', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [4, 7, 6, 5] }, { dims: [2, 7, 4, 4] }], samples: 40 },
  { name: 'N2 pads 2 5x5', op: 'Conv', attrs: { pads: [2, 2, 2, 2] }, inputs: [{ dims: [2, 5, 8, 7] }, { dims: [4, 5, 5, 5] }, { dims: [4] }], samples: 40 },
  { name: 'N3 kernel 1x3 pad end only', op: 'Conv', attrs: { pads: [0, 0, 1, 2] }, inputs: [{ dims: [3, 34, 5, 6] }, { dims: [3, 34, 1, 3] }], samples: 40 },
  // K * S = 108 * 144 doubles: 2 images per 256 KB chunk, so chunks of 2 + 2 + 1.
  { name: 'N5 chunked (2 + 2 + 1 images)', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [5, 12, 12, 12] }, { dims: [4, 12, 3, 3] }], samples: 30 },
  { name: 'N2 only W', op: 'Conv', attrs: { pads: [1, 0, 0, 1] }, inputs: [{ dims: [2, 12, 5, 5] }, { dims: [4, 12, 3, 3] }], wrt: [1] },
  { name: 'N2 only X', op: 'Conv', attrs: { pads: [1, 0, 0, 1] }, inputs: [{ dims: [2, 12, 5, 5] }, { dims: [4, 12, 3, 3] }], wrt: [0] },
];
t.test("batched Conv backward: several images per GEMM, pads, chunks", async (t) => checkGrads(t, cases));

// Per-sample squares on the batched path: sum_i (dW_i)^2 against a batch-1 loop.
const sqCases: GradCase[] = [
  { name: 'N3 asymmetric pads', op: 'Conv', attrs: { pads: [0, 1, 2, 0] }, inputs: [{ dims: [3, 18, 7, 9] }, { dims: [6, 18, 3, 2], const: true }] },
  { name: 'N2 valid with bias', op: 'Conv', inputs: [{ dims: [2, 12, 9, 9] }, { dims: [3, 12, 3, 3], const: true }, { dims: [3], const: true }] },
  { name: 'N4 SAME_UPPER even kernel', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [4, 7, 6, 5] }, { dims: [2, 7, 4, 4], const: true }] },
  { name: 'N2 pads 2 5x5 bias', op: 'Conv', attrs: { pads: [2, 2, 2, 2] }, inputs: [{ dims: [2, 5, 8, 7] }, { dims: [4, 5, 5, 5], const: true }, { dims: [4] }] },
  // K * S = 108 * 144: 2 images per 256 KB chunk in float64, so chunks of 2 + 2 + 1.
  { name: 'N5 chunked (2 + 2 + 1 images)', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [5, 12, 12, 12] }, { dims: [4, 12, 3, 3], const: true }] },
  { name: 'N5 chunked, weight and bias also wanted', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [5, 12, 12, 12] }, { dims: [4, 12, 3, 3] }, { dims: [4] }] },
];
t.test('batched Conv backward: per-sample squared weight gradients', async (t) => {
  for (const c of sqCases) await t.test(c.name!, async (tt) => checkPerSampleSquares(tt, c));
});

const poolCases: GradCase[] = [
  { name: 'odd sizes', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [2, 3, 7, 9] }], samples: 60 },
  { name: 'pad end', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1] }, inputs: [{ dims: [1, 2, 5, 6] }], samples: 60 },
  { name: 'even', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [2, 2, 8, 6] }], samples: 60 },
  { name: 'ceil', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 5, 7] }], samples: 60 },
  // Rows longer than one vector (8 doubles): full vectors, then a partial one that spills into the next row.
  { name: 'rows of 19 windows, odd width', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [2, 2, 6, 39] }], samples: 80 },
  { name: 'rows of 16 windows', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 3, 4, 32] }], samples: 80 },
];
t.test('MaxPool 2x2 stride 2 fast path', async (t) => checkGrads(t, poolCases));
