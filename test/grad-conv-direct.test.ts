/**
 * The direct convolution for few input channels and unit strides (ops/conv_direct.cpp): forward against onnxruntime-node,
 * gradients against central finite differences (float64), per-sample squared weight gradients against a batch-1 loop; and the
 * vectorized 2x2 MaxPool forward (ops/pool2x2.cpp) against onnxruntime-node on rows longer and shorter than one vector.
 */
import t from 'tap';
import { checkGrads, checkPerSampleSquares, type GradCase } from './helpers/grad.js';
import { checkOps, type OpCase } from './helpers/ops.js';
import { loadEngineModel } from '../src/engine/load.js';
import { MODELS } from './helpers/models.js';
import { randomFloats } from './helpers/random.js';

// Each case takes the direct path: group 1, unit strides, C * KH * KW <= 100, M <= 128.
const forward: OpCase[] = [
  { name: 'C1 3x3 pad 1 (the demo CNN conv1)', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [3, 1, 28, 28] }, { dims: [8, 1, 3, 3], const: true }, { dims: [8], const: true }] },
  { name: 'C8 3x3 pad 1 (conv2)', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 8, 14, 14] }, { dims: [16, 8, 3, 3], const: true }, { dims: [16], const: true }] },
  { name: 'C3 M5 (M not a multiple of 4) valid', op: 'Conv', inputs: [{ dims: [2, 3, 9, 11] }, { dims: [5, 3, 3, 3], const: true }] },
  { name: 'C2 asymmetric pads 3x2', op: 'Conv', attrs: { pads: [0, 1, 2, 0] }, inputs: [{ dims: [2, 2, 7, 9] }, { dims: [6, 2, 3, 2], const: true }, { dims: [6], const: true }] },
  { name: 'C5 dilations 2x3', op: 'Conv', attrs: { dilations: [2, 3], pads: [1, 2, 2, 1] }, inputs: [{ dims: [1, 5, 10, 12] }, { dims: [3, 5, 3, 3], const: true }] },
  { name: 'C1 7x7 SAME_LOWER', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [2, 1, 9, 20] }, { dims: [4, 1, 7, 7], const: true }] },
  { name: 'C4 even kernel SAME_UPPER', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [2, 4, 6, 5] }, { dims: [2, 4, 4, 4], const: true }] },
  { name: 'C2 1x2 kernel, wide rows', op: 'Conv', attrs: { pads: [0, 0, 0, 1] }, inputs: [{ dims: [2, 2, 3, 70] }, { dims: [7, 2, 1, 2], const: true }] },
  { name: 'C11 3x3 (C * 9 = 99), M 33', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 11, 6, 6] }, { dims: [33, 11, 3, 3], const: true }, { dims: [33], const: true }] },
  { name: 'pads larger than the kernel', op: 'Conv', attrs: { pads: [3, 0, 2, 4] }, inputs: [{ dims: [2, 2, 4, 5] }, { dims: [2, 2, 2, 2], const: true }] },
  // a left pad far beyond the kernel and no bottom pad: the padded planes must hold the last row's pads
  { name: 'left pad 40, no bottom pad', op: 'Conv', attrs: { pads: [0, 40, 0, 0] }, inputs: [{ dims: [3, 1, 2, 4] }, { dims: [2, 1, 2, 2], const: true }] },
];
t.test('direct Conv forward against onnxruntime', async (t) => checkOps(t, forward));

const grads: GradCase[] = [
  { name: 'C1 3x3 pad 1 with bias', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [3, 1, 9, 10] }, { dims: [8, 1, 3, 3] }, { dims: [8] }], samples: 40 },
  { name: 'C8 3x3 pad 1', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 8, 7, 7] }, { dims: [16, 8, 3, 3] }, { dims: [16] }], samples: 40 },
  { name: 'C3 M5 valid', op: 'Conv', inputs: [{ dims: [2, 3, 9, 11] }, { dims: [5, 3, 3, 3] }], samples: 40 },
  { name: 'C2 asymmetric pads 3x2', op: 'Conv', attrs: { pads: [0, 1, 2, 0] }, inputs: [{ dims: [3, 2, 7, 9] }, { dims: [6, 2, 3, 2] }], samples: 40 },
  { name: 'C5 dilations 2x3', op: 'Conv', attrs: { dilations: [2, 3], pads: [1, 2, 2, 1] }, inputs: [{ dims: [2, 5, 10, 12] }, { dims: [3, 5, 3, 3] }], samples: 40 },
  { name: 'C1 7x7 SAME_LOWER (odd taps)', op: 'Conv', attrs: { auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [2, 1, 9, 20] }, { dims: [4, 1, 7, 7] }], samples: 40 },
  { name: 'C4 even kernel SAME_UPPER', op: 'Conv', attrs: { auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [4, 4, 6, 5] }, { dims: [2, 4, 4, 4] }], samples: 40 },
  { name: 'pads larger than the kernel', op: 'Conv', attrs: { pads: [3, 0, 2, 4] }, inputs: [{ dims: [2, 2, 4, 5] }, { dims: [2, 2, 2, 2] }], samples: 40 },
  { name: 'left pad 9, no bottom pad', op: 'Conv', attrs: { pads: [0, 9, 0, 0] }, inputs: [{ dims: [3, 1, 2, 4] }, { dims: [2, 1, 2, 2] }], samples: 40 },
  { name: 'left pad 40, no bottom pad', op: 'Conv', attrs: { pads: [0, 40, 0, 0] }, inputs: [{ dims: [2, 2, 2, 4] }, { dims: [3, 2, 2, 2] }], samples: 40 },
  // 2 * 8 planes of 42 x 42 doubles per image: 3 images per 512 KB group, so groups of 3 + 2.
  { name: 'N5 in two groups', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [5, 1, 40, 40] }, { dims: [8, 1, 3, 3] }], samples: 30 },
  { name: 'only W', op: 'Conv', attrs: { pads: [1, 0, 0, 1] }, inputs: [{ dims: [2, 3, 5, 5] }, { dims: [4, 3, 3, 3] }], wrt: [1] },
  { name: 'only X', op: 'Conv', attrs: { pads: [1, 0, 0, 1] }, inputs: [{ dims: [2, 3, 5, 5] }, { dims: [4, 3, 3, 3] }], wrt: [0] },
];
t.test('direct Conv backward against finite differences', async (t) => checkGrads(t, grads));

const squares: GradCase[] = [
  { name: 'C1 3x3 pad 1', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [4, 1, 9, 10] }, { dims: [8, 1, 3, 3], const: true }, { dims: [8], const: true }] },
  { name: 'C3 M5 asymmetric pads', op: 'Conv', attrs: { pads: [0, 1, 2, 0] }, inputs: [{ dims: [3, 3, 7, 9] }, { dims: [5, 3, 3, 2], const: true }] },
  { name: 'C5 dilations, weight also wanted', op: 'Conv', attrs: { dilations: [2, 3], pads: [1, 2, 2, 1] }, inputs: [{ dims: [3, 5, 10, 12] }, { dims: [3, 5, 3, 3] }] },
  { name: 'N5 in two groups', op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [5, 1, 40, 40] }, { dims: [8, 1, 3, 3], const: true }] },
];
t.test('direct Conv backward: per-sample squared weight gradients', async (t) => {
  for (const c of squares) await t.test(c.name!, async (tt) => checkPerSampleSquares(tt, c));
});

const pools: OpCase[] = [
  { name: 'rows of 14 windows (one partial vector)', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [2, 3, 28, 28] }] },
  { name: 'rows of 7 windows', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [2, 16, 14, 14] }] },
  { name: 'rows of 37 windows, odd sizes', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 2, 9, 75] }] },
  { name: 'rows of 16 windows', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 1, 4, 32] }] },
];
t.test('2x2 MaxPool vector rows against onnxruntime', async (t) => checkOps(t, pools));

// float32 runs the 16-lane kernels (float64: 8 lanes, checked against the batch-1 loop above): the demo CNN's two convolutions
// both take the direct path; their float32 per-sample squares must match float64's.
t.test('direct Conv per-sample squares in float32 match float64 (demo CNN conv1 and conv2)', async (t) => {
  const n = 6;
  const { engine, layers } = loadEngineModel(MODELS.demoCnn, { inputShapes: { input: [n, 1, 28, 28] } });
  const inputs = { input: { dims: [n, 1, 28, 28], data: randomFloats(n * 784, 5, -1, 1) } };
  const req = {
    loss: { tensor: 'logits', likelihood: 'categorical' as const, sampleSeed: 3 },
    layers: layers.map((l) => ({ node: l.name, dataInput: 0, weightInput: l.weightInput })),
    perSampleSquares: true,
  };
  const f32 = engine.gradients(inputs, { ...req, precision: 'float32' });
  const f64 = engine.gradients(inputs, { ...req, precision: 'float64' });
  engine.dispose();
  for (const name of ['conv1', 'conv2']) {
    const a = f32.sqWeightGrads[name]!.data, b = f64.sqWeightGrads[name]!.data;
    let worst = 0, scale = 0;
    for (let i = 0; i < b.length; i++) {
      worst = Math.max(worst, Math.abs(Number(a[i]) - Number(b[i])));
      scale = Math.max(scale, Math.abs(Number(b[i])));
    }
    t.ok(scale > 0 && worst <= 1e-4 * scale, `${name}: ${b.length} squares, max |f32 - f64| ${worst.toExponential(2)} vs scale ${scale.toExponential(2)}`);
  }
});
