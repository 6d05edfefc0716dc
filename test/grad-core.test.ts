/** Backward core: fan-in, a missing rule, loss heads against closed forms, sampled targets. */
import t from 'tap';
import { checkGrads } from './helpers/grad.js';
import { EngineModel } from '../src/engine/model.js';
import { NoGradientError, InvalidInputError } from '../src/errors.js';
import type { Graph } from '../src/onnx/types.js';
import { rng } from './helpers/random.js';

function graphOf(nodes: Graph['nodes'], inputs: { name: string; dims: number[] }[], outputs: string[]): Graph {
  return {
    opset: 17,
    nodes,
    initializers: new Map(),
    inputs: inputs.map((i) => ({ name: i.name, elemType: 'float32', dims: i.dims })),
    outputs: outputs.map((name) => ({ name, elemType: 'float32', dims: [] })),
    shapes: new Map(inputs.map((i) => [i.name, i.dims])),
  };
}
const node = (op: string, name: string, inputs: string[], outputs: string[]) => ({ op, name, domain: '', inputs, outputs, attrs: {} });

t.test('Relu gradient against finite differences', async (t) => {
  await checkGrads(t, [{ op: 'Relu', inputs: [{ dims: [3, 4, 5] }] }]);
});

t.test('gradients that fan in are summed', async (t) => {
  const g = graphOf([node('Relu', 'r1', ['x'], ['a']), node('Relu', 'r2', ['x'], ['b'])], [{ name: 'x', dims: [2, 3] }], ['a', 'b']);
  const m = new EngineModel(g);
  const x = Float64Array.from([1, -1, 2, -2, 3, 0.5]);
  const ca = Float64Array.from([1, 2, 3, 4, 5, 6]);
  const cb = Float64Array.from([10, 20, 30, 40, 50, 60]);
  const r = m.gradients({ x: { dims: [2, 3], data: x } }, {
    precision: 'float64',
    seeds: { a: { dims: [2, 3], data: ca }, b: { dims: [2, 3], data: cb } },
    want: ['x'],
  });
  t.same(Array.from(r.grads.x!.data as Float64Array), [11, 0, 33, 0, 55, 66]);
  m.dispose();
});

t.test('a gradient that cannot flow fails by node name; a zero rule gives exact zeros', async (t) => {
  // Every registered op has a rule now; a rule that refuses (LeakyRelu with a negative alpha cannot
  // recover the sign of x from y) takes the same NoGradientError path through the addon.
  const leaky = { op: 'LeakyRelu', name: 'the_leaky', domain: '', inputs: ['y'], outputs: ['z'], attrs: { alpha: { type: 'float' as const, value: -0.1 } } };
  const g = graphOf([node('Floor', 'the_floor', ['x'], ['y']), leaky], [{ name: 'x', dims: [4] }], ['z']);
  const m = new EngineModel(g);
  const seeds = { z: { dims: [4], data: new Float32Array(4).fill(1) } };
  const err = t.throws(() => m.gradients({ x: { dims: [4], data: Float32Array.from([1.5, 2.5, -3.5, 4.5]) } }, { seeds, want: ['x'] })) as Error;
  t.type(err, NoGradientError);
  t.equal((err as NoGradientError).code, 'ERR_NO_GRADIENT');
  t.match(err.message, /LeakyRelu 'the_leaky'/);
  // Floor's rule: exactly zero, whatever flows in.
  const f = new EngineModel(graphOf([node('Floor', 'the_floor', ['x'], ['y'])], [{ name: 'x', dims: [4] }], ['y']));
  const r = f.gradients({ x: { dims: [4], data: Float32Array.from([1.5, 2.5, -3.5, 4.5]) } }, { seeds: { y: { dims: [4], data: Float32Array.from([1, -2, 3, 4]) } }, want: ['x'] });
  t.same(Array.from(r.grads.x!.data as Float32Array), [0, 0, 0, 0]);
  m.dispose();
  f.dispose();
});

/** A pass-through model (Relu of positive inputs) so that the loss head sees z = x. */
function passThrough(dims: number[]) {
  return new EngineModel(graphOf([node('Relu', 'r', ['x'], ['z'])], [{ name: 'x', dims }], ['z']));
}

t.test('categorical loss head: per-sample cross-entropy and softmax - onehot', async (t) => {
  const n = 3;
  const c = 4;
  const r = rng(5);
  const z = Float64Array.from({ length: n * c }, () => 0.1 + 3 * r());
  const labels = BigInt64Array.from([2n, 0n, 3n]);
  const m = passThrough([n, c]);
  const res = m.gradients({ x: { dims: [n, c], data: z } }, { precision: 'float64', loss: { tensor: 'z', likelihood: 'categorical', target: { dims: [n], data: labels } }, want: ['x'] });
  const g = res.grads.x!.data as Float64Array;
  for (let i = 0; i < n; i++) {
    const row = z.slice(i * c, (i + 1) * c);
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    const y = Number(labels[i]);
    t.ok(Math.abs(res.loss[i]! - (lse - row[y]!)) < 1e-12, `l_${i} = logsumexp(z) - z_y`);
    for (let j = 0; j < c; j++) {
      const want = Math.exp(row[j]! - lse) - (j === y ? 1 : 0);
      t.ok(Math.abs(g[i * c + j]! - want) < 1e-12, `dl/dz[${i},${j}]`);
    }
  }
  const bad = m.gradients.bind(m, { x: { dims: [n, c], data: z } }, { precision: 'float64', loss: { tensor: 'z', likelihood: 'categorical', target: { dims: [n], data: BigInt64Array.from([1n, 4n, 0n]) } } });
  t.throws(bad, InvalidInputError, 'a label out of range is a clear error');
  m.dispose();
});

t.test('bernoulli and gaussian loss heads', async (t) => {
  const z = Float64Array.from([0.5, 2, 0.25, 1.5]);
  const y = Float64Array.from([1, 0, 0.5, 1]);
  const m = passThrough([2, 2]);
  const b = m.gradients({ x: { dims: [2, 2], data: z } }, { precision: 'float64', loss: { tensor: 'z', likelihood: 'bernoulli', target: { dims: [2, 2], data: y } }, want: ['x'] });
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const bce = (v: number, tt: number) => -(tt * Math.log(sig(v)) + (1 - tt) * Math.log(1 - sig(v)));
  t.ok(Math.abs(b.loss[0]! - (bce(0.5, 1) + bce(2, 0))) < 1e-12, 'per-sample BCE');
  t.ok(Math.abs(b.loss[1]! - (bce(0.25, 0.5) + bce(1.5, 1))) < 1e-12);
  const gb = b.grads.x!.data as Float64Array;
  for (let i = 0; i < 4; i++) t.ok(Math.abs(gb[i]! - (sig(z[i]!) - y[i]!)) < 1e-12, `sigmoid(z) - y at ${i}`);
  const gsn = m.gradients({ x: { dims: [2, 2], data: z } }, { precision: 'float64', loss: { tensor: 'z', likelihood: 'gaussian', target: { dims: [2, 2], data: y } }, want: ['x'] });
  t.ok(Math.abs(gsn.loss[0]! - 0.5 * ((0.5 - 1) ** 2 + 4)) < 1e-12, 'per-sample 0.5 squared error');
  t.same(Array.from(gsn.grads.x!.data as Float64Array), [-0.5, 2, -0.25, 0.5]);
  m.dispose();
});

t.test('sampled targets follow the model distribution and are seeded', async (t) => {
  const n = 4000;
  const z = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) z.set([Math.log(0.2) + 5, Math.log(0.5) + 5, Math.log(0.3) + 5], i * 3);
  const m = passThrough([n, 3]);
  const run = (seed: number) =>
    m.gradients({ x: { dims: [n, 3], data: z } }, { precision: 'float64', loss: { tensor: 'z', likelihood: 'categorical', sampleSeed: seed }, want: ['x'] });
  const a = run(7);
  const b = run(7);
  const c = run(8);
  const ya = a.targets!.data as BigInt64Array;
  t.same(Array.from(ya), Array.from(b.targets!.data as BigInt64Array), 'same seed, same labels');
  t.notSame(Array.from(ya), Array.from(c.targets!.data as BigInt64Array), 'another seed, other labels');
  const freq = [0, 0, 0];
  for (const v of ya) freq[Number(v)]!++;
  const p = freq.map((f) => f / n);
  t.ok(Math.abs(p[0]! - 0.2) < 0.03 && Math.abs(p[1]! - 0.5) < 0.03 && Math.abs(p[2]! - 0.3) < 0.03, `label frequencies ${p.map((v) => v.toFixed(3))}`);
  m.dispose();
});

t.test("a layer's activation gradient is its own copy: the part flowing back through that layer only", async (t) => {
  // x feeds two MatMul layers whose outputs are added: dL/dx = d1 W1^T + d2 W2^T, but layer 1's
  // own copy is d1 W1^T alone.
  const r = rng(9);
  const w1 = Float64Array.from({ length: 12 }, () => r() - 0.5);
  const w2 = Float64Array.from({ length: 12 }, () => r() - 0.5);
  const g: Graph = {
    opset: 17,
    nodes: [
      { op: 'MatMul', name: 'layer1', domain: '', inputs: ['x', 'w1'], outputs: ['a'], attrs: {} },
      { op: 'MatMul', name: 'layer2', domain: '', inputs: ['x', 'w2'], outputs: ['b'], attrs: {} },
      { op: 'Add', name: 'sum', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: {} },
    ],
    initializers: new Map([
      ['w1', { dims: [4, 3], type: 'float64', data: w1 }],
      ['w2', { dims: [4, 3], type: 'float64', data: w2 }],
    ]),
    inputs: [{ name: 'x', elemType: 'float32', dims: [2, 4] }],
    outputs: [{ name: 'y', elemType: 'float32', dims: [] }],
    shapes: new Map([['x', [2, 4]]]),
  };
  const m = new EngineModel(g);
  const x = Float64Array.from({ length: 8 }, () => r() - 0.5);
  const c = Float64Array.from({ length: 6 }, () => r() - 0.5);
  const res = m.gradients({ x: { dims: [2, 4], data: x } }, {
    precision: 'float64',
    seeds: { y: { dims: [2, 3], data: c } },
    want: ['x'],
    layers: [
      { node: 'layer1', dataInput: 0, weightInput: 1 },
      { node: 'layer2', dataInput: 0, weightInput: 1 },
    ],
    perSampleSquares: true,
  });
  const own1 = res.layerInputGrads.layer1!.data as Float64Array;
  const own2 = res.layerInputGrads.layer2!.data as Float64Array;
  const total = res.grads.x!.data as Float64Array;
  for (let i = 0; i < 2; i++)
    for (let k = 0; k < 4; k++) {
      let e1 = 0;
      let e2 = 0;
      for (let j = 0; j < 3; j++) {
        e1 += c[i * 3 + j]! * w1[k * 3 + j]!;
        e2 += c[i * 3 + j]! * w2[k * 3 + j]!;
      }
      t.ok(Math.abs(own1[i * 4 + k]! - e1) < 1e-12, `layer1 own copy [${i},${k}]`);
      t.ok(Math.abs(own2[i * 4 + k]! - e2) < 1e-12, `layer2 own copy [${i},${k}]`);
      t.ok(Math.abs(total[i * 4 + k]! - e1 - e2) < 1e-12, `total [${i},${k}] is the sum`);
    }
  // per-sample squares of W1: sum_i (x_i^T c_i)^2
  const sq = res.sqWeightGrads.layer1!.data as Float64Array;
  for (let k = 0; k < 4; k++)
    for (let j = 0; j < 3; j++) {
      let want = 0;
      for (let i = 0; i < 2; i++) want += (x[i * 4 + k]! * c[i * 3 + j]!) ** 2;
      t.ok(Math.abs(sq[k * 3 + j]! - want) < 1e-12, `sq grad W1[${k},${j}]`);
    }
  m.dispose();
});
