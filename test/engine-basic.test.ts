/** Engine basics: the harness itself, both SGEMM paths, float64 runs, the op registry. */
import t from 'tap';
import { checkOps, type OpCase } from './helpers/ops.js';
import { loadAddon } from '../src/engine/addon.js';
import { loadEngineModel } from '../src/engine/load.js';
import { MODELS } from './helpers/models.js';
import { randomFloats } from './helpers/random.js';

const gemmHeavy: OpCase[] = [
  { op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 9, 9] }, { dims: [5, 3, 3, 3], const: true }, { dims: [5], const: true }] },
  { op: 'MatMul', inputs: [{ dims: [2, 37, 71] }, { dims: [71, 29], const: true }] },
  { op: 'Gemm', attrs: { transA: 1, transB: 1, alpha: { type: 'float', value: 0.5 } }, inputs: [{ dims: [65, 33] }, { dims: [17, 65] }, { dims: [17], const: true }] },
  { op: 'MatMul', inputs: [{ dims: [130, 257] }, { dims: [257, 131] }], rtol: 2e-4 },
];

t.test('the SGEMM path in use agrees with onnxruntime', async (t) => {
  t.match(loadAddon().cpuFeatures().gemmPath, /^(avx512f|avx2-fma|portable)$/);
  await checkOps(t, gemmHeavy);
});

t.test('the portable SGEMM path agrees with onnxruntime too', async (t) => {
  const addon = loadAddon();
  const prev = addon.forcePortableGemm(true);
  try {
    t.equal(addon.cpuFeatures().gemmPath, 'portable');
    await checkOps(t, gemmHeavy);
  } finally {
    addon.forcePortableGemm(prev);
  }
});

t.test('Resize linear align_corners downsampling matches onnxruntime', async (t) => {
  await checkOps(t, [
    {
      op: 'Resize',
      opset: 13,
      attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' },
      inputs: [{ dims: [1, 1, 2, 4] }, { dims: [0], const: true, data: [] }, { dims: [4], const: true, data: [1, 1, 0.6, 0.6] }],
    },
  ]);
});

t.test('float64 runs agree with float32 runs on a real model', async (t) => {
  const { engine } = loadEngineModel(MODELS.ocrCls, { inputShapes: { x: [2, 3, 48, 192] } });
  const data = randomFloats(2 * 3 * 48 * 192, 5, -1, 1);
  const a = engine.run({ x: { dims: [2, 3, 48, 192], data } });
  const b = engine.run({ x: { dims: [2, 3, 48, 192], data } }, { precision: 'float64' });
  const name = engine.outputNames[0]!;
  t.equal(b[name]!.type, 'float64');
  t.type(b[name]!.data, Float64Array);
  const x = a[name]!.data as Float32Array;
  const y = b[name]!.data as Float64Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  t.ok(worst < 1e-5, `max |f32 - f64| = ${worst.toExponential(2)}`);
  t.ok(worst > 0, 'the two precisions really differ');
  engine.dispose();
});

t.test('the registry lists every op of the forward issue', async (t) => {
  const ops = new Set(loadAddon().supportedOps());
  const required = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'Relu', 'LeakyRelu', 'PRelu', 'Clip', 'Sigmoid',
    'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Gelu', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Neg', 'Exp', 'Log', 'Abs',
    'Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Flatten',
    'Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Squeeze', 'Unsqueeze', 'Pad', 'Resize', 'Upsample', 'LayerNormalization'];
  t.same(required.filter((o) => !ops.has(o)), []);
});
