/**
 * Fused elementwise chains (native/engine/fuse.cpp): the hard-swish pattern Add/Clip/Mul/Div, with
 * a preceding BatchNormalization joining it, gives the gradients of the unfused graph, and those
 * agree with central finite differences in double precision.
 */
import t from 'tap';
import { makeModel } from '../src/onnx/build.js';
import { prepareModel } from '../src/engine/load.js';
import { EngineModel } from '../src/engine/model.js';
import type { Graph, TensorData } from '../src/onnx/types.js';
import { randomFloats } from './helpers/random.js';

const C = 3;
const f = (name: string, dims: number[], data: Float32Array | number[]) => ({ name, dims, type: 'float32' as const, data: Float32Array.from(data) });
const bytes = makeModel({
  opset: 13,
  inputs: [{ name: 'x', elemType: 'float32', dims: [2, C, 4, 4] }],
  outputs: [{ name: 'y' }],
  initializers: [
    f('scale', [C], [1.5, 0.7, -1.1]),
    f('B', [C], [0.2, -0.3, 0.5]),
    f('mean', [C], [0.1, -0.2, 0.05]),
    f('var', [C], [0.9, 1.4, 0.6]),
    f('three', [], [3]),
    f('zero', [], [0]),
    f('six', [], [6]),
    f('W', [2, C, 1, 1], randomFloats(2 * C, 4, -1, 1)),
  ],
  nodes: [
    { op: 'BatchNormalization', name: 'bn', inputs: ['x', 'scale', 'B', 'mean', 'var'], outputs: ['z'], attrs: { epsilon: { type: 'float', value: 1e-5 } } },
    { op: 'Add', name: 'add', inputs: ['z', 'three'], outputs: ['a'] },
    { op: 'Clip', name: 'clip', inputs: ['a', 'zero', 'six'], outputs: ['c'] },
    { op: 'Mul', name: 'mul', inputs: ['z', 'c'], outputs: ['m'] },
    { op: 'Div', name: 'div', inputs: ['m', 'six'], outputs: ['h'] },
    { op: 'Conv', name: 'conv', inputs: ['h', 'W'], outputs: ['y'] },
  ],
});

function float64(g: Graph): Graph {
  const inits = new Map<string, TensorData>();
  for (const [k, v] of g.initializers) inits.set(k, v.type === 'float32' ? { dims: v.dims, type: 'float64', data: Float64Array.from(v.data as Float32Array) } : v);
  return { ...g, initializers: inits };
}

function build(fuse: boolean): { engine: EngineModel; graph: Graph } {
  if (fuse) delete process.env.FIT_NO_FUSE;
  else process.env.FIT_NO_FUSE = '1';
  try {
    const graph = float64(prepareModel(bytes).graph);
    return { engine: new EngineModel(graph), graph };
  } finally {
    delete process.env.FIT_NO_FUSE;
  }
}

const x = randomFloats(2 * C * 16, 5, -4, 4); // spans both sides of the clip bounds after BN
const target = { dims: [2, 2, 4, 4], data: randomFloats(64, 6, -1, 1) };
const want = ['x', 'scale', 'B', 'mean', 'var', 'W'];
const grads = (e: EngineModel, xs: Float32Array | Float64Array = x) =>
  e.gradients({ x: { dims: [2, C, 4, 4], data: Float32Array.from(xs) } }, { loss: { tensor: 'y', likelihood: 'gaussian', target }, want, precision: 'float64' });

t.test('fused and unfused graphs give the same loss and gradients', async (t) => {
  const fused = build(true).engine;
  const plain = build(false).engine;
  const a = grads(fused);
  const b = grads(plain);
  t.same([...a.loss], [...b.loss]);
  for (const k of want) {
    const ga = a.grads[k]!.data as Float64Array;
    const gb = b.grads[k]!.data as Float64Array;
    let worst = 0;
    for (let i = 0; i < ga.length; i++) worst = Math.max(worst, Math.abs(ga[i]! - gb[i]!) / Math.max(1e-12, Math.abs(gb[i]!)));
    t.ok(worst < 1e-12, `${k}: max relative difference ${worst.toExponential(2)}`);
    t.ok(gb.some((v) => v !== 0), `${k}: a non-zero gradient`);
  }
  // a value fused away cannot be asked for; the message says how to get it, both ways
  let err: Error | undefined;
  try {
    fused.gradients({ x: { dims: [2, C, 4, 4], data: x } }, { loss: { tensor: 'y', likelihood: 'gaussian', target }, want: ['a'], precision: 'float64' });
  } catch (e) {
    err = e as Error;
  }
  t.ok(err, 'asking for a fused-away value throws');
  const message = err?.message ?? '';
  t.match(message, /the gradient of 'a' is not computed: the engine fused it into a chain of elementwise nodes/, message);
  t.match(message, /ask for its range too, which keeps it/);
  t.match(message, /set FIT_NO_FUSE=1/);
  fused.dispose();
  plain.dispose();
});

t.test('the fused BatchNorm parameters agree with central finite differences', async (t) => {
  const { engine, graph } = build(true);
  const g = grads(engine);
  const loss = () => grads(engine).loss.reduce((s, v) => s + v, 0);
  for (const k of ['scale', 'B', 'mean', 'var']) {
    const w = graph.initializers.get(k)!.data as Float64Array;
    const gk = g.grads[k]!.data as Float64Array;
    for (let i = 0; i < C; i++) {
      const h = 1e-6 * Math.max(1, Math.abs(w[i]!));
      const w0 = w[i]!;
      w[i] = w0 + h;
      const lp = loss();
      w[i] = w0 - h;
      const lm = loss();
      w[i] = w0;
      const fd = (lp - lm) / (2 * h);
      t.ok(Math.abs(fd - gk[i]!) <= 1e-6 * Math.max(1, Math.abs(fd)), `${k}[${i}]: ${gk[i]} vs ${fd}`);
    }
  }
  engine.dispose();
});
