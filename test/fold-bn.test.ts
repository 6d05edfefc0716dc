/**
 * BatchNorm folding: the folded graph computes what the unfolded one does (on the engine), names of
 * layers and weights are kept, pairs that must not fold are left alone, the input graph is not
 * mutated, and gradients obey the chain rule dL/dW = dL/dW' * s.
 */
import t from 'tap';
import type { Test } from 'tap';
import { prepareModel, supportedOps } from '../src/engine/load.js';
import { EngineModel } from '../src/engine/model.js';
import { makeModel, type BuildInitializer, type BuildNode } from '../src/onnx/build.js';
import { bnChannelScale, foldBatchNorm, weightChannelScale } from '../src/onnx/fold-bn.js';
import { findQuantizableLayers } from '../src/onnx/layers.js';
import { normalize } from '../src/onnx/normalize.js';
import { readModel } from '../src/onnx/read.js';
import type { Graph } from '../src/onnx/types.js';
import { MODELS } from './helpers/models.js';
import { randomFloats, rng, syntheticPage } from './helpers/random.js';

const OPS = supportedOps();

/** max |a - b| / max |b| */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}

function runAll(graph: Graph, inputs: Record<string, { dims: number[]; data: Float32Array }>): Record<string, Float32Array> {
  const m = new EngineModel(graph);
  try {
    const out = m.run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    m.dispose();
  }
}

function snapshot(graph: Graph): string {
  return JSON.stringify({
    nodes: graph.nodes,
    inits: [...graph.initializers].map(([k, v]) => [k, v.dims, v.type, Array.from(v.data as Float32Array, Number)]),
    shapes: [...graph.shapes],
    outputs: graph.outputs,
  });
}

/** BN parameters replaced with seeded random values (var > 0), in a new graph. */
function randomizeBn(graph: Graph, seed: number): Graph {
  const r = rng(seed);
  const inits = new Map(graph.initializers);
  for (const n of graph.nodes) {
    if (n.op !== 'BatchNormalization') continue;
    n.inputs.slice(1).forEach((name, k) => {
      const old = inits.get(name)!;
      const data = new Float32Array(old.data.length);
      for (let i = 0; i < data.length; i++) {
        const u = r();
        data[i] = k === 0 ? (u < 0.5 ? -1 : 1) * (0.5 + 1.5 * r()) : k === 3 ? 0.1 + 2 * u : 2 * u - 1;
      }
      inits.set(name, { dims: old.dims, type: 'float32', data });
    });
  }
  return { ...graph, initializers: inits };
}

/** The BNs that should fold: input from a Conv/ConvTranspose with one consumer and an unshared weight. */
function foldable(graph: Graph): string[] {
  const reads = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) reads.set(i, (reads.get(i) ?? 0) + 1);
  for (const o of graph.outputs) reads.set(o.name, (reads.get(o.name) ?? 0) + 1);
  return graph.nodes
    .filter((bn) => {
      if (bn.op !== 'BatchNormalization') return false;
      const conv = graph.nodes.find((n) => n.outputs.includes(bn.inputs[0]!));
      return !!conv && (conv.op === 'Conv' || conv.op === 'ConvTranspose') && reads.get(bn.inputs[0]!) === 1 && reads.get(conv.inputs[1]!) === 1;
    })
    .map((n) => n.name);
}

function layerKeys(graph: Graph) {
  return findQuantizableLayers(graph).map((l) => ({ name: l.name, op: l.op, weight: l.weight, count: l.count, activation: l.activation, weightInput: l.weightInput }));
}

function checkFold(t: Test, graph: Graph, inputs: Record<string, { dims: number[]; data: Float32Array }>, tol = 1e-5) {
  const before = snapshot(graph);
  const { graph: g2, folded, skipped } = foldBatchNorm(graph);
  t.equal(snapshot(graph), before, 'the input graph is not mutated');
  const want = foldable(graph);
  t.same(folded.map((f) => f.bn).sort(), [...want].sort(), `the ${want.length} foldable BNs are folded`);
  const left = new Set(g2.nodes.filter((n) => n.op === 'BatchNormalization').map((n) => n.name));
  t.ok(want.every((b) => !left.has(b)), 'every folded BN is gone');
  t.same([...left].sort(), skipped.map((s) => s.bn).sort(), 'the BNs left are reported as skipped');
  t.same(layerKeys(g2), layerKeys(graph), 'layer names, weight names and activations are unchanged');
  for (const f of folded) {
    const w = g2.initializers.get(f.weight)!;
    t.ok(w.data.buffer instanceof SharedArrayBuffer, `${f.weight} lives in a SharedArrayBuffer`);
    t.ok(g2.initializers.get(f.bias)!.data.buffer instanceof SharedArrayBuffer, `${f.bias} lives in a SharedArrayBuffer`);
  }
  const unknown = g2.nodes.flatMap((n) => n.inputs).filter((i) => i && !g2.initializers.has(i) && !g2.shapes.has(i));
  t.same(unknown, [], 'every tensor read has an initializer or a shape');
  const a = runAll(graph, inputs);
  const b = runAll(g2, inputs);
  for (const k of Object.keys(a)) {
    const e = relErr(b[k]!, a[k]!);
    t.ok(e <= tol, `output ${k}: rel err ${e.toExponential(2)} <= ${tol}`);
  }
  return { g2, folded, skipped };
}

t.test('demo CNN with random BN statistics', async (t) => {
  const graph = randomizeBn(prepareModel(MODELS.demoCnn, { batch: 4 }).graph, 7);
  const x = { dims: [4, 1, 28, 28], data: randomFloats(4 * 28 * 28, 3, 0, 1) };
  const { g2, folded } = checkFold(t, graph, { input: x });
  t.same(folded.map((f) => [f.conv, f.bn, f.weight, f.bias, f.biasAdded]), [
    ['conv1', 'bn1', 'conv1.weight', 'conv1.bias', false],
    ['conv2', 'bn2', 'conv2.weight', 'conv2.bias', false],
  ]);
  t.same(g2.nodes.map((n) => n.op), ['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
  t.same(g2.nodes[0]!.outputs, ['b1'], 'the conv takes over the BN output name');
  for (const p of ['bn1.scale', 'bn1.bias', 'bn1.mean', 'bn1.var', 'bn2.var']) t.notOk(g2.initializers.has(p), `${p} is dropped`);
  t.notOk(g2.shapes.has('c1'), 'the old conv output is gone');

  // the folded values, by hand for one channel
  const s = bnChannelScale(graph.initializers.get('bn1.scale')!.data as Float32Array, graph.initializers.get('bn1.var')!.data as Float32Array, 1e-5);
  t.same(Array.from(folded[0]!.scale), Array.from(s));
  const w = graph.initializers.get('conv1.weight')!.data as Float32Array;
  const w2 = g2.initializers.get('conv1.weight')!.data as Float32Array;
  t.ok(Math.abs(w2[9 * 3 + 4]! - w[9 * 3 + 4]! * s[3]!) < 1e-6, 'W\'[3] = W[3] * s[3]');
  const g = (n: string) => graph.initializers.get(n)!.data as Float32Array;
  const b2 = g2.initializers.get('conv1.bias')!.data as Float32Array;
  t.ok(Math.abs(b2[5]! - ((g('conv1.bias')[5]! - g('bn1.mean')[5]!) * s[5]! + g('bn1.bias')[5]!)) < 1e-6, 'b\' = (b - mean) * s + B');

  // chain rule: dL/dW (unfolded) = dL/dW' (folded) * s per output channel
  const labels = BigInt64Array.from([1n, 7n, 3n, 0n]);
  const req = {
    precision: 'float64' as const,
    loss: { tensor: 'logits', likelihood: 'categorical' as const, target: { dims: [4], data: labels } },
    want: ['conv1.weight', 'conv2.weight'],
  };
  const m1 = new EngineModel(graph);
  const m2 = new EngineModel(g2);
  const r1 = m1.gradients({ input: x }, req);
  const r2 = m2.gradients({ input: x }, req);
  for (const f of folded) {
    const fac = weightChannelScale(f.op, g2.initializers.get(f.weight)!.dims, f.group, f.scale);
    const gf = r2.grads[f.weight]!.data as Float64Array;
    const chained = Float64Array.from(gf, (v, i) => v * fac[i]!);
    const e = relErr(chained, r1.grads[f.weight]!.data as Float64Array);
    t.ok(e < 1e-5, `${f.weight}: dL/dW = dL/dW' * s (rel err ${e.toExponential(2)})`);
  }
  m1.dispose();
  m2.dispose();
});

t.test('PP-OCR mobile v2 cls: 35 BNs fold', async (t) => {
  const prepared = prepareModel(MODELS.ocrCls, { inputShapes: { x: [2, 3, 48, 192] } });
  const base = prepared.graph;
  t.equal(base.nodes.filter((n) => n.op === 'BatchNormalization').length, 35);
  // also compare the logits (the Softmax input), not only the probabilities
  const softmax = base.nodes.find((n) => n.op === 'Softmax')!;
  const logits = softmax.inputs[0]!;
  const graph: Graph = { ...base, outputs: [...base.outputs, { name: logits, elemType: 'float32', dims: base.shapes.get(logits)! }] };
  const { g2, folded } = checkFold(t, graph, { x: { dims: [2, 3, 48, 192], data: syntheticPage(2, 48, 192, 5) } });
  t.equal(folded.length, 35, 'all 35 BNs are folded');
  t.notOk(g2.nodes.some((n) => n.op === 'BatchNormalization'), 'no BatchNormalization is left');
  t.equal(g2.nodes.length, graph.nodes.length - 35);
});

/** A small model: input x, nodes, initializers with seeded random values. */
function small(nodes: BuildNode[], inits: { name: string; dims: number[]; positive?: boolean }[], x: number[], y: { name: string; dims: number[] }[]): Graph {
  const r = rng(11);
  const initializers: BuildInitializer[] = inits.map((i) => {
    const n = i.dims.reduce((a, b) => a * b, 1);
    return { name: i.name, dims: i.dims, type: 'float32', data: Float32Array.from({ length: n }, () => (i.positive ? 0.2 + r() : 2 * r() - 1)) };
  });
  const bytes = makeModel({ opset: 13, nodes, initializers, inputs: [{ name: 'x', dims: x }], outputs: y.map((o) => ({ name: o.name, dims: o.dims })) });
  return normalize(readModel(bytes, { name: 'small.onnx' }), { supportedOps: OPS });
}

const bnInits = (p: string, c: number) => [
  { name: `${p}.scale`, dims: [c] }, { name: `${p}.B`, dims: [c] }, { name: `${p}.mean`, dims: [c] }, { name: `${p}.var`, dims: [c], positive: true },
];
const bnNode = (name: string, x: string, p: string, y: string, eps = 1e-3): BuildNode => ({
  op: 'BatchNormalization', name, inputs: [x, `${p}.scale`, `${p}.B`, `${p}.mean`, `${p}.var`], outputs: [y], attrs: { epsilon: { type: 'float', value: eps } },
});

function chainRule(t: Test, graph: Graph, g2: Graph, x: { dims: number[]; data: Float32Array }, f: ReturnType<typeof foldBatchNorm>['folded'][number]) {
  const out = graph.outputs[0]!.name;
  const seed = { dims: graph.shapes.get(out)!, data: Float64Array.from(randomFloats(graph.shapes.get(out)!.reduce((a, b) => a * b, 1), 9)) };
  const req = { precision: 'float64' as const, seeds: { [out]: seed }, want: [f.weight] };
  const m1 = new EngineModel(graph);
  const m2 = new EngineModel(g2);
  const g1 = m1.gradients({ x }, req).grads[f.weight]!.data as Float64Array;
  const gf = m2.gradients({ x }, req).grads[f.weight]!.data as Float64Array;
  const fac = weightChannelScale(f.op, g2.initializers.get(f.weight)!.dims, f.group, f.scale);
  const e = relErr(Float64Array.from(gf, (v, i) => v * fac[i]!), g1);
  t.ok(e < 1e-5, `chain rule for ${f.op} group ${f.group}: rel err ${e.toExponential(2)}`);
  m1.dispose();
  m2.dispose();
}

t.test('ConvTranspose (grouped, no bias) + BN', async (t) => {
  // W [Cin=4, Cout/g=3, 3, 3], group 2 -> 6 output channels
  const graph = small(
    [
      { op: 'ConvTranspose', name: 'deconv', inputs: ['x', 'W'], outputs: ['c'], attrs: { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] } },
      bnNode('bn', 'c', 'bn', 'y'),
    ],
    [{ name: 'W', dims: [4, 3, 3, 3] }, ...bnInits('bn', 6)],
    [2, 4, 5, 5],
    [{ name: 'y', dims: [2, 6, 9, 9] }],
  );
  const x = { dims: [2, 4, 5, 5], data: randomFloats(200, 1) };
  const { g2, folded } = checkFold(t, graph, { x });
  t.equal(folded.length, 1);
  t.same([folded[0]!.conv, folded[0]!.weight, folded[0]!.bias, folded[0]!.biasAdded, folded[0]!.group], ['deconv', 'W', 'W__bn_bias', true, 2]);
  t.same(g2.nodes[0]!.inputs, ['x', 'W', 'W__bn_bias'], 'a bias is added');
  t.same(g2.shapes.get('W__bn_bias'), [6]);
  t.same(g2.nodes.map((n) => n.op), ['ConvTranspose']);
  // axis 1 of a grouped ConvTranspose weight: input channel 3 (group 1), column 2 -> output channel 5
  const fac = weightChannelScale('ConvTranspose', [4, 3, 3, 3], 2, [0, 1, 2, 3, 4, 5]);
  t.equal(fac[(3 * 3 + 2) * 9 + 4], 5);
  t.equal(fac[(1 * 3 + 2) * 9], 2, 'input channel 1 (group 0), column 2 -> output channel 2');
  chainRule(t, graph, g2, x, folded[0]!);
});

t.test('grouped and depthwise Conv + BN', async (t) => {
  const graph = small(
    [
      { op: 'Conv', name: 'gconv', inputs: ['x', 'W1', 'b1'], outputs: ['c1'], attrs: { group: 2, pads: [1, 1, 1, 1] } },
      bnNode('bn1', 'c1', 'bn1', 'y1', 1e-5),
      { op: 'Relu', name: 'relu', inputs: ['y1'], outputs: ['r'] },
      { op: 'Conv', name: 'dwconv', inputs: ['r', 'W2'], outputs: ['c2'], attrs: { group: 6, strides: [2, 2] } },
      bnNode('bn2', 'c2', 'bn2', 'y'),
    ],
    [{ name: 'W1', dims: [6, 2, 3, 3] }, { name: 'b1', dims: [6] }, ...bnInits('bn1', 6), { name: 'W2', dims: [6, 1, 3, 3] }, ...bnInits('bn2', 6)],
    [2, 4, 7, 7],
    [{ name: 'y', dims: [2, 6, 3, 3] }],
  );
  const x = { dims: [2, 4, 7, 7], data: randomFloats(392, 2) };
  const { g2, folded } = checkFold(t, graph, { x });
  t.same(folded.map((f) => [f.conv, f.bias, f.biasAdded, f.group]), [['gconv', 'b1', false, 2], ['dwconv', 'W2__bn_bias', true, 6]]);
  t.same(g2.nodes.map((n) => n.op), ['Conv', 'Relu', 'Conv']);
  for (const f of folded) chainRule(t, graph, g2, x, f);
});

t.test('a conv whose output feeds two nodes is not folded', async (t) => {
  const graph = small(
    [
      { op: 'Conv', name: 'conv', inputs: ['x', 'W', 'b'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
      bnNode('bn', 'c', 'bn', 'n'),
      { op: 'Add', name: 'res', inputs: ['n', 'c'], outputs: ['y'] },
    ],
    [{ name: 'W', dims: [3, 3, 3, 3] }, { name: 'b', dims: [3] }, ...bnInits('bn', 3)],
    [1, 3, 4, 4],
    [{ name: 'y', dims: [1, 3, 4, 4] }],
  );
  const { g2, folded, skipped } = checkFold(t, graph, { x: { dims: [1, 3, 4, 4], data: randomFloats(48, 3) } });
  t.equal(folded.length, 0);
  t.match(skipped, [{ bn: 'bn', reason: /output 'c' of Conv 'conv' is also read elsewhere/ }]);
  t.same(g2.nodes.map((n) => n.op), ['Conv', 'BatchNormalization', 'Add']);
});

t.test('a conv output that is also a graph output is not folded', async (t) => {
  const graph = small(
    [{ op: 'Conv', name: 'conv', inputs: ['x', 'W'], outputs: ['c'] }, bnNode('bn', 'c', 'bn', 'y')],
    [{ name: 'W', dims: [2, 3, 1, 1] }, ...bnInits('bn', 2)],
    [1, 3, 4, 4],
    [{ name: 'y', dims: [1, 2, 4, 4] }, { name: 'c', dims: [1, 2, 4, 4] }],
  );
  const { folded } = checkFold(t, graph, { x: { dims: [1, 3, 4, 4], data: randomFloats(48, 4) } });
  t.equal(folded.length, 0);
});

t.test('a weight shared by two convs is not folded; a shared bias gets a new name', async (t) => {
  const graph = small(
    [
      { op: 'Conv', name: 'convA', inputs: ['x', 'W', 'b'], outputs: ['a'] },
      bnNode('bnA', 'a', 'bnA', 'ya'),
      { op: 'Conv', name: 'convB', inputs: ['x', 'W', 'b'], outputs: ['bb'] },
      bnNode('bnB', 'bb', 'bnB', 'yb'),
      { op: 'Conv', name: 'convC', inputs: ['x', 'W3', 'b'], outputs: ['cc'] },
      bnNode('bnC', 'cc', 'bnC', 'yc'),
      { op: 'Add', name: 'add1', inputs: ['ya', 'yb'], outputs: ['s'] },
      { op: 'Add', name: 'add2', inputs: ['s', 'yc'], outputs: ['y'] },
    ],
    [{ name: 'W', dims: [2, 3, 1, 1] }, { name: 'W3', dims: [2, 3, 1, 1] }, { name: 'b', dims: [2] }, ...bnInits('bnA', 2), ...bnInits('bnB', 2), ...bnInits('bnC', 2)],
    [1, 3, 4, 4],
    [{ name: 'y', dims: [1, 2, 4, 4] }],
  );
  const { g2, folded, skipped } = checkFold(t, graph, { x: { dims: [1, 3, 4, 4], data: randomFloats(48, 5) } });
  t.same(folded.map((f) => [f.conv, f.weight, f.bias, f.biasAdded]), [['convC', 'W3', 'W3__bn_bias', true]]);
  t.same(skipped.map((s) => s.bn), ['bnA', 'bnB']);
  t.match(skipped[0]!.reason, /weight 'W' of Conv 'convA' is shared/);
  t.same(Array.from(g2.initializers.get('b')!.data as Float32Array), Array.from(graph.initializers.get('b')!.data as Float32Array), 'the shared bias is unchanged');
  t.same(Array.from(g2.initializers.get('W')!.data as Float32Array), Array.from(graph.initializers.get('W')!.data as Float32Array), 'the shared weight is unchanged');
});

t.test('a graph without BatchNormalization comes back equal', async (t) => {
  const graph = small([{ op: 'Conv', name: 'conv', inputs: ['x', 'W'], outputs: ['y'] }], [{ name: 'W', dims: [2, 3, 1, 1] }], [1, 3, 2, 2], [{ name: 'y', dims: [1, 2, 2, 2] }]);
  const { graph: g2, folded, skipped } = foldBatchNorm(graph);
  t.same(folded, []);
  t.same(skipped, []);
  t.equal(snapshot(g2), snapshot(graph));
  t.not(g2, graph, 'a new Graph object');
  t.not(g2.initializers, graph.initializers);
});
