/** exportModel: fake-quant and QDQ export, against a JS reference and onnxruntime-node. */
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../src/onnx/build.js';
import { readModel } from '../src/onnx/read.js';
import { tensorProtoToData, type TensorProto } from '../src/onnx/proto.js';
import { exportModel, prepareQuantization, quantizeModel } from '../src/onnx/write.js';
import { rintEven } from '../src/onnx/quantize.js';
import { weightStep } from '../src/fisher/report.js';
import { InvalidOptionError } from '../src/errors.js';
import { randomFloats } from './helpers/random.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-export-'));
const N = 64;
// dyadic inputs and first-layer parameters: the float math up to fc2's input is exact, so the JS
// reference and onnxruntime see the very same values at every quantizer
const dyadic = (a: Float32Array, k: number) => a.map((v) => Math.round(v * k) / k);
const W1 = dyadic(randomFloats(20, 3, -1, 1), 16); // [4, 5]
const B1 = dyadic(randomFloats(4, 4, -0.25, 0.25), 16);
const W2 = randomFloats(12, 5, -2, 2); // [3, 4]
const X = dyadic(randomFloats(N * 5, 6, -1, 2), 8);

/** x [N, 5] -> Gemm fc1 (transB) -> Relu -> MatMul fc2 (W2^T stored [4, 3]) -> z */
function mlp(opset = 13): Uint8Array {
  const w2t = new Float32Array(12);
  for (let o = 0; o < 3; o++) for (let i = 0; i < 4; i++) w2t[i * 3 + o] = W2[o * 4 + i]!;
  return makeModel({
    opset,
    inputs: [{ name: 'x', dims: ['N', 5] }],
    outputs: [{ name: 'z' }],
    initializers: [
      { name: 'W1', dims: [4, 5], type: 'float32', data: W1 },
      { name: 'B1', dims: [4], type: 'float32', data: B1 },
      { name: 'W2', dims: [4, 3], type: 'float32', data: w2t },
    ],
    nodes: [
      { op: 'Gemm', name: 'fc1', inputs: ['x', 'W1', 'B1'], outputs: ['h'], attrs: { transB: 1 } },
      { op: 'Relu', name: 'relu', inputs: ['h'], outputs: ['hr'] },
      { op: 'MatMul', name: 'fc2', inputs: ['hr', 'W2'], outputs: ['z'] },
    ],
  });
}

/** ORT's optimizations fuse QDQ patterns into integer kernels (DequantizeLinear -> MatMul even with dynamically quantized activations); 'disabled' keeps the float math the fake-quant model does, so outputs compare bit for bit. */
async function run(model: string | Uint8Array, level: 'disabled' | 'all' = 'disabled', x = X, n = N): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(typeof model === 'string' ? readFileSync(model) : model, { graphOptimizationLevel: level });
  const r = await s.run({ x: new ort.Tensor('float32', x, [n, 5]) });
  await s.release();
  return r[s.outputNames[0]!]!.data as Float32Array;
}

const init = (path: string, name: string): TensorProto | undefined => readModel(path).proto.graph!.initializer.find((i) => i.name === name);
const values = (tp: TensorProto) => tensorProtoToData(tp).data as Float32Array;
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return a.length === b.length ? m : Infinity;
};

/*
 * Reference quantizers written here from the ONNX QuantizeLinear / DequantizeLinear definitions and
 * the numerical contract (src/onnx/quantize.ts header), independent of the implementation's code:
 *   QuantizeLinear:   q = saturate(round_half_even(x / scale) + zero_point), x / scale in float32
 *   DequantizeLinear: x' = (q - zero_point) * scale, in float32; scales are stored as float32
 * Weights: symmetric, narrow range, zero point 0, scale = max|w| / (2^(b-1) - 1) per tensor or per
 * output channel, q clipped to [-(2^(b-1) - 1), 2^(b-1) - 1].
 * Activations: asymmetric over [min(lo, 0), max(hi, 0)], scale = (hi - lo) / (2^b - 1),
 * zero point = round_half_even(-lo / scale) clipped to [0, 2^b - 1], q clipped to [0, 2^b - 1].
 */
const f32 = Math.fround;
const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** round half to even, from floor and the fractional part */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Dequantized b-bit weights of a row-major [rows, cols] matrix (rows = output channels), per tensor or per row. */
function refWeight(w: ArrayLike<number>, rows: number, cols: number, bits: number, perRow = false): Float32Array {
  const qmax = 2 ** (bits - 1) - 1;
  const out = new Float32Array(rows * cols);
  const groups = perRow ? rows : 1;
  const size = perRow ? cols : rows * cols;
  for (let g = 0; g < groups; g++) {
    let amax = 0;
    for (let j = 0; j < size; j++) amax = Math.max(amax, Math.abs(w[g * size + j]!));
    const scale = amax > 0 ? f32(amax / qmax) : 1;
    for (let j = 0; j < size; j++) {
      const q = clamp(roundHalfEven(f32(w[g * size + j]! / scale)), -qmax, qmax);
      out[g * size + j] = f32(q * scale);
    }
  }
  return out;
}

/** Dequantized b-bit activations over the range [min, max] (widened to include 0). */
function refActivation(x: ArrayLike<number>, min: number, max: number, bits: number): Float32Array {
  const qmax = 2 ** bits - 1;
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = f32((hi - lo) / qmax);
  const zp = clamp(roundHalfEven(-lo / scale), 0, qmax);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = clamp(roundHalfEven(f32(x[i]! / scale)) + zp, 0, qmax);
    out[i] = f32((q - zp) * scale);
  }
  return out;
}

/** W2 as stored in the model: its transpose [4, 3] */
const transpose34 = (w: ArrayLike<number>) => Float32Array.from({ length: 12 }, (_, k) => w[(k % 3) * 4 + Math.floor(k / 3)]!);

/** JS reference of the quantized MLP: fake-quant activations, quantized weights, float math in double. */
function reference(wBits: { fc1?: number; fc2?: number }, aBits: { fc1?: number; fc2?: number }, ranges: Record<string, { min: number; max: number }>, perChannel = false): Float64Array {
  const w1 = wBits.fc1 ? refWeight(W1, 4, 5, wBits.fc1, perChannel) : W1;
  const w2 = wBits.fc2 ? refWeight(W2, 3, 4, wBits.fc2, perChannel) : W2;
  const xa = aBits.fc1 ? refActivation(X, ranges.x!.min, ranges.x!.max, aBits.fc1) : X;
  const h = new Float32Array(N * 4);
  for (let s = 0; s < N; s++)
    for (let o = 0; o < 4; o++) {
      let acc = B1[o]!;
      for (let i = 0; i < 5; i++) acc += xa[s * 5 + i]! * w1[o * 5 + i]!;
      h[s * 4 + o] = Math.max(0, acc);
    }
  const ha = aBits.fc2 ? refActivation(h, ranges.hr!.min, ranges.hr!.max, aBits.fc2) : h;
  const z = new Float64Array(N * 3);
  for (let s = 0; s < N; s++)
    for (let o = 0; o < 3; o++) {
      let acc = 0;
      for (let i = 0; i < 4; i++) acc += ha[s * 4 + i]! * w2[o * 4 + i]!;
      z[s * 3 + o] = acc;
    }
  return z;
}

const modelPath = join(dir, 'mlp.onnx');
writeFileSync(modelPath, mlp());
const model21 = join(dir, 'mlp21.onnx');
writeFileSync(model21, mlp(21));

t.test('rintEven rounds half to even', async (t) => {
  t.same([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(rintEven).map((v) => v + 0), [0, 2, 2, 0, -2, -2, 2, -3]);
  // and the test's own reference rounding
  t.same([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven).map((v) => v + 0), [0, 2, 2, 0, -2, -2, 2, -3]);
});

t.test('fake-quant weights lie on the grid; layers left out are bit-identical', async (t) => {
  for (const bits of [2, 4, 8]) {
    const out = join(dir, `fq-${bits}.onnx`);
    const s = await exportModel(modelPath, { weights: { fc1: bits } }, out, { format: 'fake-quant' });
    t.equal(s.format, 'fake-quant');
    const w = values(init(out, 'W1')!);
    const delta = weightStep(Math.min(...W1), Math.max(...W1), bits);
    const qmax = 2 ** (bits - 1) - 1;
    let off = 0;
    let top = 0;
    for (const v of w) {
      off = Math.max(off, Math.abs(v / delta - Math.round(v / delta)));
      top = Math.max(top, Math.abs(Math.round(v / delta)));
    }
    t.ok(off < 1e-5, `${bits} bits: w/Delta is an integer (max distance ${off})`);
    t.ok(top <= qmax && top === qmax, `${bits} bits: |q| <= ${qmax} and the extreme weight maps to it`);
    t.same([...w], [...refWeight(W1, 4, 5, bits)], `${bits} bits: W1 equals the reference quantizer bit for bit`);
    t.same(Buffer.from(init(out, 'W2')!.rawData as Uint8Array), Buffer.from(init(modelPath, 'W2')!.rawData as Uint8Array), 'W2 untouched');
    t.same(Buffer.from(init(out, 'B1')!.rawData as Uint8Array), Buffer.from(init(modelPath, 'B1')!.rawData as Uint8Array), 'bias untouched');
  }
});

t.test('per-channel fake-quant: each output channel on its own grid', async (t) => {
  const out = join(dir, 'fq-pc.onnx');
  const s = await exportModel(modelPath, { weights: { fc1: 3, fc2: 3 } }, out, { format: 'fake-quant', perChannel: true });
  t.equal(s.layers[0]!.weight!.axis, 0, 'Gemm transB: axis 0');
  t.equal(s.layers[1]!.weight!.axis, 1, 'MatMul weight [K, N]: axis 1');
  const w = values(init(out, 'W1')!);
  for (let o = 0; o < 4; o++) {
    const row = W1.subarray(o * 5, o * 5 + 5);
    const delta = weightStep(Math.min(...row), Math.max(...row), 3);
    for (let i = 0; i < 5; i++) {
      const q = w[o * 5 + i]! / delta;
      t.ok(Math.abs(q - Math.round(q)) < 1e-5 && Math.abs(Math.round(q)) <= 3, `channel ${o} element ${i}: ${q}`);
    }
  }
  t.same([...w], [...refWeight(W1, 4, 5, 3, true)], 'W1 equals the per-row reference bit for bit');
  t.same([...values(init(out, 'W2')!)], [...transpose34(refWeight(W2, 3, 4, 3, true))], 'W2 (stored transposed) equals the per-output reference bit for bit');
  t.ok(maxAbsDiff(await run(out), reference({ fc1: 3, fc2: 3 }, {}, {}, true)) < 1e-5, 'matches the JS reference');
});

t.test('QDQ weights: int8 initializers with the right scale, int4 at opset 21', async (t) => {
  const out = join(dir, 'qdq8.onnx');
  const s = await exportModel(modelPath, { weights: { fc1: 4, fc2: 8 } }, out, { format: 'qdq' });
  t.match(s.warnings[0], /int4 needs opset 21/);
  const m = readModel(out);
  const g = m.proto.graph!;
  t.notOk(g.initializer.some((i) => i.name === 'W1'), 'the float weight is gone');
  const q1 = g.initializer.find((i) => i.name === 'W1_quantized')!;
  t.equal(q1.dataType, 3, 'int8');
  const scale = values(g.initializer.find((i) => i.name === 'W1_scale')!);
  t.equal(scale[0], Math.fround(weightStep(Math.min(...W1), Math.max(...W1), 4)));
  const q = tensorProtoToData(q1).data as BigInt64Array;
  t.ok([...q].every((v) => v >= -7n && v <= 7n), '4-bit values in int8');
  t.same([...q].map(Number), [...W1].map((w) => roundHalfEven(Math.fround(w / scale[0]!)) + 0));
  t.same([...q].map((v) => Math.fround(Number(v) * scale[0]!)), [...refWeight(W1, 4, 5, 4)], 'q * scale equals the reference quantizer');
  t.ok(g.node.some((n) => n.opType === 'DequantizeLinear' && n.output[0] === 'W1_dequantized'));
  const fq = join(dir, 'fq48.onnx');
  await exportModel(modelPath, { weights: { fc1: 4, fc2: 8 } }, fq, { format: 'fake-quant' });
  const [a, b] = [await run(out), await run(fq)];
  t.equal(maxAbsDiff(a, b), 0, 'qdq and fake-quant give the same outputs');
  t.ok(maxAbsDiff(a, reference({ fc1: 4, fc2: 8 }, {}, {})) < 1e-5, 'and match the JS reference');
  // default optimizations: ORT runs DQ -> MatMul on dynamically quantized uint8 activations
  const [c, d] = [await run(out, 'all'), await run(fq, 'all')];
  const top = Math.max(...d.map(Math.abs));
  t.ok(maxAbsDiff(c, d) < 0.01 * top, `qdq under default optimizations stays within 1% of fake-quant (${maxAbsDiff(c, d) / top})`);

  const out4 = join(dir, 'qdq4.onnx');
  const s4 = await exportModel(model21, { weights: { fc1: 4, fc2: 3 } }, out4, { format: 'qdq', perChannel: true });
  t.same(s4.layers.map((l) => l.weight!.storage), ['int4', 'int4']);
  const q4 = readModel(out4).proto.graph!.initializer.find((i) => i.name === 'W1_quantized')!;
  t.equal(q4.dataType, 22, 'int4');
  t.equal((q4.rawData as Uint8Array).length, 10, 'packed two per byte');
  t.ok(maxAbsDiff(await run(out4), reference({ fc1: 4, fc2: 3 }, {}, {}, true)) < 1e-5, 'int4 model runs and matches the reference');

  const raised = join(dir, 'qdq-raised.onnx');
  const sr = await exportModel(modelPath, { weights: { fc1: 4 } }, raised, { format: 'qdq', raiseOpset: true });
  t.equal(sr.opset, 21);
  t.ok(sr.irVersion >= 10);
  t.equal(sr.layers[0]!.weight!.storage, 'int4');
  t.ok(maxAbsDiff(await run(raised), reference({ fc1: 4 }, {}, {})) < 1e-5);

  const wide = join(dir, 'qdq12.onnx');
  const sw = await exportModel(modelPath, { weights: { fc1: 12 } }, wide, { format: 'qdq' });
  t.equal(sw.layers[0]!.weight!.storage, 'int32', '> 8 bits below opset 21: int32');
  t.ok(maxAbsDiff(await run(wide), reference({ fc1: 12 }, {}, {})) < 1e-5);
});

t.test('activations: b-bit QDQ (uint8 + Clip for b < 8) matches the JS reference', async (t) => {
  const ranges = { x: { min: -1, max: 2 }, hr: { min: 0, max: 3 } };
  for (const [a1, a2] of [[8, 8], [4, 3], [2, 6], [12, 5]] as [number, number][]) {
    const outs: Float32Array[] = [];
    for (const format of ['fake-quant', 'qdq'] as const) {
      const out = join(dir, `act-${a1}-${a2}-${format}.onnx`);
      const s = await exportModel(modelPath, { weights: { fc1: 6, fc2: 5 }, activations: { fc1: a1, fc2: a2 } }, out, { format, calibration: ranges });
      t.equal(s.layers[0]!.activation!.scale, Math.fround(3 / (2 ** a1 - 1)));
      outs.push(await run(out));
    }
    t.equal(maxAbsDiff(outs[0]!, outs[1]!), 0, `a=${a1}/${a2}: fake-quant and qdq give the same outputs`);
    // each quantizer against the reference where the float math before it is exact
    for (const [cfg, a] of [[{ fc1: a1 }, { fc1: a1 }], [{ fc2: a2 }, { fc2: a2 }]] as const) {
      const { bytes } = await quantizeModel(modelPath, { weights: { fc2: 5 }, activations: cfg }, { format: 'qdq', calibration: ranges });
      const d = maxAbsDiff(await run(bytes), reference({ fc2: 5 }, a, ranges));
      t.ok(d < 1e-5, `activations ${JSON.stringify(cfg)} match the JS reference (${d})`);
    }
  }
  // the activation quantizer alone: Gemm with an identity weight, left in float
  const eye = Array.from({ length: 25 }, (_, i) => (i % 6 === 0 ? 1 : 0));
  const id = makeModel({
    opset: 13,
    inputs: [{ name: 'x', dims: ['N', 5] }],
    outputs: [{ name: 'y' }],
    initializers: [{ name: 'I', dims: [5, 5], type: 'float32', data: eye }],
    nodes: [{ op: 'Gemm', name: 'g', inputs: ['x', 'I'], outputs: ['y'] }],
  });
  for (const bits of [2, 3, 5, 7, 8]) {
    const { bytes } = await quantizeModel(id, { activations: { g: bits } }, { calibration: { x: { min: -0.7, max: 1.6 } } });
    const got = await run(bytes);
    const want = refActivation(X, -0.7, 1.6, bits);
    t.equal(maxAbsDiff(got, want), 0, `${bits}-bit activations exactly equal the JS reference`);
    t.ok(new Set(want).size <= 2 ** bits, `at most 2^${bits} levels`);
  }
});

t.test('activation ranges are calibrated on data with onnxruntime', async (t) => {
  const { summary } = await quantizeModel(modelPath, { activations: { fc1: 8, fc2: 8 } }, { calibration: { input: { dims: [N, 5], data: X } } });
  const a = summary.layers.map((l) => l.activation!);
  t.equal(a[0]!.min, Math.min(...X));
  t.equal(a[0]!.max, Math.max(...X));
  t.equal(a[1]!.min, 0, 'hr is a Relu output');
  t.ok(a[1]!.max > 0);
  // ranges from a sensitivity report (its layers' activation ranges) work too
  const fromReport = await quantizeModel(modelPath, { activations: { fc2: 4 } }, { calibration: { layers: [{ name: 'fc2', activation: { name: 'hr', min: 0, max: 5 } }] } });
  t.equal(fromReport.summary.layers[0]!.activation!.max, 5);
});

t.test('BatchNorm is folded by default on the demo CNN', async (t) => {
  const out = join(dir, 'cnn.onnx');
  const s = await exportModel('assets/demo/cnn.onnx', { weights: { conv1: 8, conv2: 4 } }, out, { format: 'qdq', perChannel: true });
  t.same(s.foldedBatchNorm, ['conv1', 'conv2']);
  const ops = readModel(out).proto.graph!.node.map((n) => n.opType);
  t.notOk(ops.includes('BatchNormalization'));
  t.equal(ops.filter((o) => o === 'DequantizeLinear').length, 2);
  const unfolded = await quantizeModel('assets/demo/cnn.onnx', { weights: { conv1: 8 } }, { foldBatchNorm: false });
  t.equal(unfolded.summary.foldedBatchNorm.length, 0);
  const p = prepareQuantization('assets/demo/cnn.onnx');
  t.same(p.layers.map((l) => l.name), ['conv1', 'conv2', 'fc1', 'fc2']);
});

t.test('errors', async (t) => {
  const e = await exportModel(modelPath, { weights: { fc1: 4, nope: 4 }, activations: { relu: 8, other: 2 } }, join(dir, 'e.onnx')).catch((x: Error) => x);
  t.ok(e instanceof InvalidOptionError);
  t.match((e as Error).message, /names 3 layer\(s\)/);
  t.match((e as Error).message, /'nope'/);
  t.match((e as Error).message, /'relu' \(a Relu, not a quantizable op\)/);
  t.match((e as Error).message, /'other'/);
  t.match((e as Error).message, /'fc1', 'fc2'/);
  for (const bits of [1, 17, 3.5, '4']) {
    await t.rejects(exportModel(modelPath, { weights: { fc1: bits as number } }, join(dir, 'e.onnx')), {
      name: 'InvalidOptionError',
      message: `Expected an integer bit width in [2, 16] for the weight of layer 'fc1' but received ${JSON.stringify(bits)}`,
    });
  }
  await t.rejects(exportModel(modelPath, {}, join(dir, 'e.onnx'), { format: 'int8' as never }), {
    message: `Expected 'fake-quant' or 'qdq' for option format but received "int8"`,
  });
  await t.rejects(exportModel(modelPath, { activations: { fc1: 8 } }, join(dir, 'e.onnx')), { name: 'InvalidOptionError', message: /calibration/ });
  await t.rejects(exportModel(modelPath, { weights: { fc1: 4 }, bits: 3 } as never, join(dir, 'e.onnx')), { message: /only 'weights' and 'activations'/ });
  t.notOk(existsSync(join(dir, 'e.onnx')));
  // the `onnx-fit search` wrapper is accepted
  const s = await quantizeModel(modelPath, { config: { weights: { fc1: 4 } }, fit: 1 } as never);
  t.equal(s.summary.layers[0]!.weight!.bits, 4);
});

t.test('atomic write', async (t) => {
  const sub = join(dir, 'atomic');
  mkdirSync(sub);
  const out = join(sub, 'model.onnx');
  writeFileSync(out, 'previous');
  await t.rejects(exportModel(modelPath, { weights: { missing: 4 } }, out), InvalidOptionError);
  t.equal(readFileSync(out, 'utf8'), 'previous', 'a failed export leaves the existing file alone');
  mkdirSync(join(sub, 'taken.onnx'));
  await t.rejects(exportModel(modelPath, { weights: { fc1: 4 } }, join(sub, 'taken.onnx')), { name: 'InvalidOptionError', message: /could not write/ });
  await t.rejects(exportModel(modelPath, { weights: { fc1: 4 } }, join(sub, 'no', 'such', 'dir.onnx')), { message: /could not write/ });
  t.same(readdirSync(sub).sort(), ['model.onnx', 'taken.onnx'], 'no temp file is left behind');
  await exportModel(modelPath, { weights: { fc1: 4 } }, out);
  t.not(readFileSync(out, 'utf8'), 'previous', 'a successful export replaces it');
  t.equal(readModel(out).proto.graph!.node.length, 4);
});

t.test('Constant and Identity weights, unnamed nodes: names as normalize gives them', async (t) => {
  const { normalize } = await import('../src/onnx/normalize.js');
  const { findQuantizableLayers } = await import('../src/onnx/layers.js');
  const bytes = makeModel({
    opset: 11,
    inputs: [{ name: 'x', dims: [2, 5] }],
    outputs: [{ name: 'y' }],
    nodes: [
      { op: 'Constant', inputs: [], outputs: ['Wc'], attrs: { value: { type: 'tensor', value: { dims: [4, 5], elemType: 'float32', data: W1 } } } },
      { op: 'Identity', inputs: ['Wc'], outputs: ['Wi'] },
      { op: 'Gemm', inputs: ['x', 'Wi'], outputs: ['h'], attrs: { transB: 1 } },
      { op: 'Relu', inputs: ['h'], outputs: ['y'] },
    ],
  });
  const graph = normalize(readModel(bytes), { supportedOps: new Set(['Gemm', 'Relu']) });
  const names = findQuantizableLayers(graph).map((l) => l.name);
  t.same(names, ['Gemm_2']);
  const ranges = { x: { min: -1, max: 2 } };
  const { bytes: out, summary } = await quantizeModel(bytes, { weights: { Gemm_2: 4 }, activations: { Gemm_2: 3 } }, { format: 'qdq', calibration: ranges });
  t.equal(summary.layers[0]!.weight!.name, 'Wc');
  const s = await ort.InferenceSession.create(out, { graphOptimizationLevel: 'disabled' });
  const x = X.subarray(0, 10);
  const got = (await s.run({ x: new ort.Tensor('float32', x, [2, 5]) })).y!.data as Float32Array;
  const w = refWeight(W1, 4, 5, 4);
  const xa = refActivation(x, -1, 2, 3);
  const want = Array.from({ length: 8 }, (_, k) => {
    const [sIdx, o] = [Math.floor(k / 4), k % 4];
    let acc = 0;
    for (let i = 0; i < 5; i++) acc += xa[sIdx * 5 + i]! * w[o * 5 + i]!;
    return Math.max(0, acc);
  });
  t.ok(maxAbsDiff(got, want) < 1e-5, 'opset 11: the float-domain Clip gives the b-bit quantizer too');
});

t.test('weightClip and activationClip narrow the ranges', async (t) => {
  const { bytes, summary } = await quantizeModel(
    modelPath,
    { weights: { fc1: 4 }, activations: { fc1: 4 }, weightClip: { fc1: 0.5 }, activationClip: { fc1: 0.5 } },
    { format: 'fake-quant', calibration: { x: { min: -1, max: 2 } } },
  );
  const sorted = [...W1].map(Math.abs).sort((a, b) => a - b);
  t.equal(summary.layers[0]!.weight!.scale[0], Math.fround(sorted[9]! / 7), 'the median |w| sets the step');
  t.equal(summary.layers[0]!.activation!.scale, Math.fround(1.5 / 15), 'half the range');
  const m = readModel(bytes);
  const w = values(m.proto.graph!.initializer.find((i) => i.name === 'W1')!);
  t.equal(Math.max(...w.map(Math.abs)), Math.fround(7 * Math.fround(sorted[9]! / 7)), 'larger weights saturate');
  await t.rejects(quantizeModel(modelPath, { weights: { fc1: 4 }, weightClip: { fc1: 1.5 } }), { message: /Expected a number in \(0, 1\] for weightClip of layer 'fc1' but received 1.5/ });
});

t.test('an opset-9 model is raised to 11 for QDQ: Slice and Clip attributes become inputs, outputs unchanged but for the quantization', async (t) => {
  const W = randomFloats(6 * 4, 21, -1, 1);
  const spec = (extra: { op: string; attrs?: Record<string, number | number[]> }[] = []): Parameters<typeof makeModel>[0] => ({
    opset: 9,
    inputs: [{ name: 'x', elemType: 'float32', dims: ['N', 4] }],
    outputs: [{ name: extra.length ? 'z' : 'y' }],
    initializers: [{ name: 'W', dims: [4, 6], type: 'float32' as const, data: W }],
    nodes: [
      { op: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: ['h'] },
      { op: 'Clip', name: 'clip', inputs: ['h'], outputs: ['c'], attrs: { min: { type: 'float', value: 0 }, max: { type: 'float', value: 0.5 } } },
      { op: 'Slice', name: 'slice', inputs: ['c'], outputs: ['y'], attrs: { starts: [1], ends: [4], axes: [1] } },
      ...extra.map((e, i) => ({ op: e.op, name: `extra${i}`, inputs: ['y'], outputs: ['z'], attrs: e.attrs })),
    ],
  });
  const model = makeModel(spec());
  const x = randomFloats(8 * 4, 22, -1, 1);
  const run = async (bytes: Uint8Array) => {
    const s = await ort.InferenceSession.create(bytes);
    const out = (await s.run({ x: new ort.Tensor('float32', x, [8, 4]) }))[s.outputNames[0]!]!;
    return { dims: out.dims, data: out.data as Float32Array };
  };
  const float = await run(model);
  t.same(float.dims, [8, 3]);
  const { bytes, summary } = await quantizeModel(model, { weights: { mm: 8 } }, { format: 'qdq' });
  t.equal(summary.opset, 11);
  t.match(summary.warnings.join(' '), /opset raised from 9 to 11/);
  const q = await run(bytes);
  t.same(q.dims, [8, 3]);
  const step = weightStep(Math.min(...W), Math.max(...W), 8);
  let maxDiff = 0;
  for (let i = 0; i < q.data.length; i++) {
    t.ok(q.data[i]! >= 0 && q.data[i]! <= 0.5, 'still clipped to [0, 0.5]');
    maxDiff = Math.max(maxDiff, Math.abs(q.data[i]! - float.data[i]!));
  }
  // each output sums 4 products, each off by at most |x| * step / 2
  t.ok(maxDiff > 0 && maxDiff <= 4 * step * 0.5 + 1e-6, `8-bit weights move the outputs by ${maxDiff} (<= ${2 * step})`);
  // a model with an op that changed meaning by opset 11 is refused, naming it
  await t.rejects(quantizeModel(makeModel(spec([{ op: 'TopK', attrs: { k: 2 } }])), { weights: { mm: 8 } }, { format: 'qdq' }), {
    code: 'ERR_INVALID_MODEL',
    message: /TopK node\(s\) changed meaning by opset 11/,
  });
});
