import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel, makeModelObject } from '../src/onnx/build.js';
import { decodeModel, encodeModel, tensorProtoToData, dataToTensorProto, toNum, halfToFloat, floatToHalf } from '../src/onnx/proto.js';
import type { TensorProto } from '../src/onnx/proto.js';
import { readModel } from '../src/onnx/read.js';
import { ModelLoadError, InvalidModelError } from '../src/errors.js';
import { runOrt, randomFloats, maxAbsDiff } from './fixtures/onnx/ort-helper.js';

const tmp = mkdtempSync(join(tmpdir(), 'onnx-fit-read-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('a built Relu model round-trips and runs in onnxruntime', async (t) => {
  const bytes = makeModel({
    opset: 13,
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'relu' }],
    inputs: [{ name: 'x', elemType: 'float32', dims: [2, 3] }],
    outputs: [{ name: 'y', elemType: 'float32', dims: [2, 3] }],
  });
  const m = decodeModel(bytes);
  t.equal(toNum(m.irVersion), 7);
  t.equal(m.graph!.node[0]!.opType, 'Relu');
  t.equal(m.graph!.node[0]!.name, 'relu');
  const x = new Float32Array([-1, 2, -3, 4, 0, -0.5]);
  const out = await runOrt(bytes, { x: { dims: [2, 3], data: x } });
  t.same([...out.y!.data as Float32Array], [0, 2, 0, 4, 0, 0]);
  t.same(out.y!.dims, [2, 3]);
  // re-encoding the decoded message gives the same bytes
  t.same(Buffer.from(encodeModel(m)), Buffer.from(bytes));
});

t.test('a built Conv with float/int attrs matches a hand computation in onnxruntime', async (t) => {
  // 1x1x3x3 input, 1x1x2x2 kernel of ones, stride 1, pads 0 -> 2x2 window sums; then LeakyRelu(alpha=0.5)
  const bytes = makeModel({
    opset: 17,
    nodes: [
      { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: { kernel_shape: [2, 2], strides: [1, 1], pads: [0, 0, 0, 0] } },
      { op: 'LeakyRelu', inputs: ['c'], outputs: ['y'], attrs: { alpha: { type: 'float', value: 0.5 } } },
    ],
    inputs: [{ name: 'x', elemType: 'float32', dims: [1, 1, 3, 3] }],
    outputs: [{ name: 'y' }],
    initializers: [
      { name: 'w', dims: [1, 1, 2, 2], type: 'float32', data: [1, 1, 1, 1] },
      { name: 'b', dims: [1], type: 'float32', data: [-10] },
    ],
  });
  t.equal(toNum(decodeModel(bytes).irVersion), 8);
  const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const out = await runOrt(bytes, { x: { dims: [1, 1, 3, 3], data: x } });
  // sums: 12,16,24,28 minus 10 -> 2,6,14,18
  t.same([...out.y!.data as Float32Array], [2, 6, 14, 18]);
  const neg = await runOrt(bytes, { x: { dims: [1, 1, 3, 3], data: new Float32Array(9) } });
  t.same([...neg.y!.data as Float32Array], [-5, -5, -5, -5]);
});

t.test('IR versions chosen per opset load in onnxruntime', async (t) => {
  for (const opset of [7, 9, 11, 12, 13, 15, 17, 18, 19, 20, 21, 22, 23]) {
    const bytes = makeModel({
      opset,
      nodes: [{ op: 'Abs', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: [3] }],
      outputs: [{ name: 'y' }],
    });
    const out = await runOrt(bytes, { x: { dims: [3], data: new Float32Array([-1, 2, -3]) } });
    t.same([...out.y!.data as Float32Array], [1, 2, 3], `opset ${opset}`);
  }
});

t.test('tensor conversion handles every storage form', async (t) => {
  const base = { name: 'v', floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], stringData: [], externalData: [] };
  const mk = (p: Partial<TensorProto>): TensorProto => ({ ...base, dims: [3], dataType: 1, ...p }) as TensorProto;
  t.same([...tensorProtoToData(mk({ floatData: [1.5, -2, 3] })).data], [1.5, -2, 3]);
  t.same([...tensorProtoToData(mk({ dataType: 11, doubleData: [0.25, 2, -8] })).data], [0.25, 2, -8]);
  const i64 = tensorProtoToData(mk({ dataType: 7, int64Data: [1, -2, 2 ** 40] }));
  t.equal(i64.type, 'int64');
  t.same([...i64.data], [1n, -2n, 2n ** 40n]);
  t.same([...tensorProtoToData(mk({ dataType: 6, int32Data: [7, -7, 0] })).data], [7n, -7n, 0n]);
  t.same([...tensorProtoToData(mk({ dataType: 9, int32Data: [1, 0, 1] })).data], [1n, 0n, 1n]);
  t.same([...tensorProtoToData(mk({ dataType: 10, int32Data: [0x3c00, 0xc000, 0x3800] })).data], [1, -2, 0.5]);
  // raw data at an odd byte offset (unaligned) for float32 and int64
  const rawF = new Uint8Array(13);
  new DataView(rawF.buffer).setFloat32(1, 3.25, true);
  new DataView(rawF.buffer).setFloat32(5, -1, true);
  new DataView(rawF.buffer).setFloat32(9, 1e-3, true);
  const f = tensorProtoToData(mk({ rawData: rawF.subarray(1) }));
  t.equal(f.data.length, 3);
  t.equal((f.data as Float32Array)[0], 3.25);
  t.equal((f.data as Float32Array)[2], Math.fround(1e-3));
  const rawI = new Uint8Array(25);
  new DataView(rawI.buffer).setBigInt64(1, -5n, true);
  new DataView(rawI.buffer).setBigInt64(9, 1n << 50n, true);
  new DataView(rawI.buffer).setBigInt64(17, 9n, true);
  t.same([...tensorProtoToData(mk({ dataType: 7, rawData: rawI.subarray(1) })).data], [-5n, 1n << 50n, 9n]);
  t.same([...tensorProtoToData(mk({ dataType: 3, rawData: new Uint8Array([255, 1, 128]) })).data], [-1n, 1n, -128n]);
  t.same([...tensorProtoToData(mk({ dataType: 2, rawData: new Uint8Array([255, 1, 128]) })).data], [255n, 1n, 128n]);
  t.throws(() => tensorProtoToData(mk({ rawData: new Uint8Array(11) })), InvalidModelError);
  t.throws(() => tensorProtoToData(mk({ floatData: [1] })), /Expected 3 values/);
  t.throws(() => tensorProtoToData(mk({ dataType: 8 })), /string/);
  // dataToTensorProto round trips through raw_data
  for (const [elemType, vals] of [['float32', [1.5, -2, 0]], ['int64', [1, -2, 3]], ['int32', [5, -6, 7]], ['uint8', [0, 200, 3]], ['int8', [-128, 127, 0]], ['bool', [1, 0, 1]], ['float16', [1, -0.5, 65504]], ['float64', [0.1, 2, 3]]] as const) {
    const p = dataToTensorProto('z', { dims: [3], elemType, data: vals as unknown as number[] });
    const back = tensorProtoToData({ ...base, ...p } as unknown as TensorProto);
    const expect = elemType === 'float32' || elemType === 'float16' || elemType === 'float64'
      ? vals.map((v) => Math.fround(v)) : vals.map((v) => BigInt(v));
    t.same([...back.data], expect, elemType);
  }
  t.equal(halfToFloat(floatToHalf(0.1)), 0.0999755859375);
  t.equal(floatToHalf(1e-8), 0);
  t.equal(halfToFloat(floatToHalf(6e-5)), 6.002187728881836e-05); // subnormal half, numpy agrees
});

const reluBytes = () => makeModel({
  opset: 13,
  nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
  inputs: [{ name: 'x', dims: [2] }],
  outputs: [{ name: 'y' }],
});

t.test('readModel returns metadata', async (t) => {
  const p = join(tmp, 'relu.onnx');
  writeFileSync(p, reluBytes());
  const m = readModel(p);
  t.equal(m.name, 'relu.onnx');
  t.equal(m.path, p);
  t.equal(m.baseDir, tmp);
  t.equal(m.opset, 13);
  t.equal(m.irVersion, 7);
  t.equal(m.producer.name, 'onnx-fit');
  t.same([...m.opsets], [['', 13]]);
  const b = readModel(reluBytes(), { name: 'mine' });
  t.equal(b.name, 'mine');
  t.equal(b.baseDir, undefined);
});

t.test('readModel rejects bad files with ModelLoadError naming the file', async (t) => {
  const missing = join(tmp, 'nope.onnx');
  t.throws(() => readModel(missing), { name: 'ModelLoadError', code: 'ERR_MODEL_LOAD', message: /nope\.onnx does not exist/ });
  const empty = join(tmp, 'empty.onnx');
  writeFileSync(empty, new Uint8Array(0));
  t.throws(() => readModel(empty), { code: 'ERR_MODEL_LOAD', message: /empty\.onnx is empty/ });
  const full = reluBytes();
  const trunc = join(tmp, 'trunc.onnx');
  writeFileSync(trunc, full.subarray(0, full.length - 7));
  t.throws(() => readModel(trunc), { code: 'ERR_MODEL_LOAD', message: /trunc\.onnx/ });
  const rnd = join(tmp, 'random.onnx');
  writeFileSync(rnd, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)));
  t.throws(() => readModel(rnd), { code: 'ERR_MODEL_LOAD', message: /random\.onnx/ });
  // valid protobuf, but not a model: a serialized TensorProto-ish byte string with only field 1
  t.throws(() => readModel(new Uint8Array([0x08, 0x07]), { name: 'x.onnx' }), { code: 'ERR_MODEL_LOAD', message: /x\.onnx.*not an ONNX model/ });
  t.throws(() => readModel(tmp), { code: 'ERR_MODEL_LOAD', message: /directory/ });
});

t.test('readModel rejects unsupported opsets', async (t) => {
  for (const opset of [6, 24]) {
    const bytes = makeModel({ opset, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', dims: [2] }], outputs: [{ name: 'y' }] });
    t.throws(() => readModel(bytes, { name: `op${opset}.onnx` }), InvalidModelError);
    t.throws(() => readModel(bytes, { name: `op${opset}.onnx` }), { code: 'ERR_INVALID_MODEL', message: new RegExp(`op${opset}\\.onnx uses ONNX opset ${opset}`) });
  }
});

function externalModel(location: string, offset: number, length: number): Uint8Array {
  const obj = makeModelObject({
    opset: 13,
    nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [3] }],
    outputs: [{ name: 'y' }],
  });
  const graph = obj.graph as { initializer: unknown[] };
  graph.initializer.push({
    name: 'w', dims: [3], dataType: 1, dataLocation: 1,
    externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  });
  return encodeModel(obj);
}

t.test('external data is read from beside the file', async (t) => {
  const dir = mkdtempSync(join(tmp, 'ext-'));
  const data = new Uint8Array(16);
  const dv = new DataView(data.buffer);
  [10, 20, 30].forEach((v, i) => dv.setFloat32(4 + i * 4, v, true));
  writeFileSync(join(dir, 'weights.bin'), data);
  const p = join(dir, 'ext.onnx');
  writeFileSync(p, externalModel('weights.bin', 4, 12));
  const m = readModel(p);
  const w = tensorProtoToData(m.proto.graph!.initializer[0]!);
  t.same([...w.data], [10, 20, 30]);
  // onnxruntime agrees on the resolved file
  const out = await runOrt(encodeModel(m.proto), { x: { dims: [3], data: new Float32Array([1, 2, 3]) } });
  t.same([...out.y!.data as Float32Array], [11, 22, 33]);

  t.throws(() => readModel(externalModel('weights.bin', 4, 12)), { code: 'ERR_MODEL_LOAD', message: /given as a buffer.*Pass the model path/ });
  const p2 = join(dir, 'short.onnx');
  writeFileSync(p2, externalModel('weights.bin', 8, 12));
  t.throws(() => readModel(p2), { code: 'ERR_MODEL_LOAD', message: /too short for tensor 'w'/ });
  const p3 = join(dir, 'missing.onnx');
  writeFileSync(p3, externalModel('gone.bin', 0, 12));
  t.throws(() => readModel(p3), { code: 'ERR_MODEL_LOAD', message: /gone\.bin.*could not be opened/ });
  const p4 = join(dir, 'escape.onnx');
  writeFileSync(p4, externalModel('../weights.bin', 0, 12));
  t.throws(() => readModel(p4), { code: 'ERR_MODEL_LOAD', message: /outside the model's directory/ });
  const p5 = join(dir, 'abs.onnx');
  writeFileSync(p5, externalModel(join(dir, 'weights.bin'), 0, 12));
  t.throws(() => readModel(p5), { code: 'ERR_MODEL_LOAD', message: /outside the model's directory/ });
});
