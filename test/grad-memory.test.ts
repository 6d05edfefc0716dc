/**
 * Gradient rules that need only an input's dims read them from GradContext::inDims and do not
 * declare the input saved, so backward does not keep those activations alive (e.g. both inputs of
 * every residual Add). Checks:
 * - the chain x -> Relu -> Add(const) -> Reshape -> ReduceMean against a hand computation;
 * - a graph in which every shape-only rule (Add, Sub, Sum, Mean, Gemm's C, Flatten, Reshape,
 *   Squeeze, Split, Concat, Slice, Expand, Tile, Pad, AveragePool, GlobalAveragePool, Resize,
 *   ReduceSum, ReduceMean, ReduceLogSum) is fed by values no rule saves, so their data is freed
 *   after forward: the gradient must still match central differences of the float64 forward;
 * - memory: a chain of residual blocks (Neg, Add, Add) has the same peak RSS at depth 1 and 8 (with
 *   the inputs of Add saved, every block kept three activations alive until backward).
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EngineModel } from '../src/engine/model.js';
import type { AttrValue, Graph, TensorData } from '../src/onnx/types.js';
import { rng } from './helpers/random.js';

type Attrs = Record<string, AttrValue>;
const node = (op: string, inputs: string[], outputs: string[], attrs: Attrs = {}) => ({
  op,
  name: outputs[0]!,
  domain: '',
  inputs,
  outputs,
  attrs,
});
const ints = (value: number[]) => ({ type: 'ints' as const, value });
const int = (value: number) => ({ type: 'int' as const, value });
const i64 = (data: number[]): TensorData => ({ dims: [data.length], type: 'int64', data: BigInt64Array.from(data.map(BigInt)) });
const f64 = (dims: number[], data: number[]): TensorData => ({ dims, type: 'float64', data: Float64Array.from(data) });

function graphOf(nodes: Graph['nodes'], inits: Record<string, TensorData>, x: number[], outputs: string[]): Graph {
  return {
    opset: 17,
    nodes,
    initializers: new Map(Object.entries(inits)),
    inputs: [{ name: 'x', elemType: 'float32', dims: x }],
    outputs: outputs.map((name) => ({ name, elemType: 'float32', dims: [] })),
    shapes: new Map([['x', x]]),
  };
}

t.test('x -> Relu -> Add(const) -> Reshape -> ReduceMean: gradients by hand', async (t) => {
  const [N, C, H] = [3, 4, 5];
  const K = C * H;
  const r = rng(11);
  const cst = Array.from({ length: C }, () => 2 * r() - 1);
  const g = graphOf(
    [
      node('Relu', ['x'], ['a']),
      node('Add', ['a', 'c'], ['b']),
      node('Reshape', ['b', 'shape'], ['rs']),
      node('ReduceMean', ['rs'], ['y'], { axes: ints([1]), keepdims: int(0) }),
    ],
    { c: f64([C, 1], cst), shape: i64([N, -1]) },
    [N, C, H],
    ['y'],
  );
  const m = new EngineModel(g);
  const x = Float64Array.from({ length: N * K }, () => 2 * r() - 1);
  const seed = Float64Array.from({ length: N }, () => 2 * r() - 1);
  const wantY = Array.from({ length: N }, (_, n) => {
    let s = 0;
    for (let j = 0; j < K; j++) s += Math.max(0, x[n * K + j]!) + cst[Math.floor(j / H)]!;
    return s / K;
  });
  for (const precision of ['float64', 'float32'] as const) {
    const tol = precision === 'float64' ? 1e-12 : 1e-5;
    const feed = { x: { dims: [N, C, H], data: precision === 'float64' ? x : Float32Array.from(x) } };
    const res = m.gradients(feed, { precision, seeds: { y: { dims: [N], data: seed } }, want: ['x'] });
    const gx = res.grads.x!.data as Float32Array | Float64Array;
    t.same(res.grads.x!.dims, [N, C, H], `${precision}: dx has x's dims`);
    let worst = 0;
    for (let n = 0; n < N; n++)
      for (let j = 0; j < K; j++) {
        const want = x[n * K + j]! > 0 ? seed[n]! / K : 0;
        worst = Math.max(worst, Math.abs(gx[n * K + j]! - want));
      }
    t.ok(worst <= tol, `${precision}: dx = seed_n * [x > 0] / ${K} (worst error ${worst})`);
    const y = res.outputs.y!.data as Float32Array | Float64Array;
    const run = m.run(feed, { precision }).y!.data as Float32Array | Float64Array;
    for (let n = 0; n < N; n++) {
      t.ok(Math.abs(y[n]! - wantY[n]!) <= tol, `${precision}: y[${n}] = mean(relu(x) + c)`);
      t.equal(y[n], run[n], `${precision}: the gradient run's forward output equals a plain run's`);
    }
  }
  m.dispose();
});

t.test('shape-only rules fed by freed values: gradient against central differences', async (t) => {
  const [N, C, H, W] = [2, 3, 4, 4];
  const r = rng(5);
  const rand = (n: number, lo = -1, hi = 1) => Array.from({ length: n }, () => lo + (hi - lo) * r());
  // No rule saves any value feeding a shape-only rule (Neg saves nothing; Gemm saves only A and B),
  // so a rule that still read such an input would fail with "was not saved for backward".
  const nodes = [
    node('Neg', ['x'], ['a']),
    node('AveragePool', ['a'], ['p'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }), // [2,3,2,2]
    node('Resize', ['p', 'roi', 'scales'], ['u'], { mode: { type: 'string', value: 'linear' } }), // [2,3,4,4]
    node('Add', ['u', 'x'], ['res']), // residual: both inputs freed
    node('Sub', ['res', 'a'], ['s']),
    node('Split', ['s', 'split'], ['sa', 'sb'], { axis: int(1) }), // [2,1,4,4], [2,2,4,4]
    node('Squeeze', ['sa', 'sqAxes'], ['q']), // [2,4,4]
    node('Expand', ['q', 'expShape'], ['e']), // [2,2,4,4]
    node('Concat', ['e', 'sb'], ['cc'], { axis: int(1) }), // [2,4,4,4]
    node('Slice', ['cc', 'starts', 'ends', 'slAxes'], ['sl']), // [2,3,4,4]
    node('Tile', ['sl', 'reps'], ['tl']), // [2,3,4,8]
    node('Pad', ['tl', 'pads'], ['pd']), // [2,3,4,10]
    node('GlobalAveragePool', ['pd'], ['gp']), // [2,3,1,1]
    node('Flatten', ['gp'], ['f'], { axis: int(1) }), // [2,3]
    node('Flatten', ['pd'], ['fl'], { axis: int(1) }), // [2,120]
    node('Gemm', ['fl', 'w', 'f'], ['gm']), // C = f: not saved
    node('Neg', ['f'], ['nf']),
    node('Sum', ['gm', 'nf', 'bias'], ['su']),
    node('ReduceSum', ['pd', 'rsAxes'], ['rsum'], { keepdims: int(0) }), // [2,3]
    node('Mean', ['su', 'rsum'], ['mn']),
    node('Add', ['mn', 'fifty'], ['pos']),
    node('ReduceLogSum', ['pos'], ['y1'], { axes: ints([1]) }), // [2,1]
    node('Reshape', ['mn', 'flat'], ['rs']), // [6]
    node('ReduceMean', ['rs'], ['y2'], { keepdims: int(0) }), // []
  ];
  const inits: Record<string, TensorData> = {
    roi: f64([0], []),
    scales: f64([4], [1, 1, 2, 2]),
    split: i64([1, 2]),
    sqAxes: i64([1]),
    expShape: i64([2, 1, 4, 4]),
    starts: i64([1]),
    ends: i64([4]),
    slAxes: i64([1]),
    reps: i64([1, 1, 1, 2]),
    pads: i64([0, 0, 0, 1, 0, 0, 0, 1]),
    w: f64([120, 3], rand(360, -0.3, 0.3)),
    bias: f64([3], rand(3)),
    rsAxes: i64([2, 3]),
    fifty: f64([], [50]),
    flat: i64([-1]),
  };
  const m = new EngineModel(graphOf(nodes, inits, [N, C, H, W], ['y1', 'y2']));
  const x = Float64Array.from(rand(N * C * H * W));
  const feeds = { x: { dims: [N, C, H, W], data: x } };
  const fwd = m.run(feeds, { precision: 'float64' });
  t.same(fwd.y1!.dims, [2, 1]);
  t.same(fwd.y2!.dims, []);
  const c1 = Float64Array.from(rand(2));
  const c2 = Float64Array.from(rand(1));
  const loss = () => {
    const y = m.run(feeds, { precision: 'float64' });
    const y1 = y.y1!.data as Float64Array;
    const y2 = y.y2!.data as Float64Array;
    return c1[0]! * y1[0]! + c1[1]! * y1[1]! + c2[0]! * y2[0]!;
  };
  const res = m.gradients(feeds, {
    precision: 'float64',
    seeds: { y1: { dims: [2, 1], data: c1 }, y2: { dims: [], data: c2 } },
    want: ['x'],
  });
  const g = res.grads.x!.data as Float64Array;
  t.equal(g.length, x.length);
  let bad = 0;
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const orig = x[i]!;
    const h = 1e-5;
    x[i] = orig + h;
    const lp = loss();
    x[i] = orig - h;
    const lm = loss();
    x[i] = orig;
    const num = (lp - lm) / (2 * h);
    const err = Math.abs(num - g[i]!);
    worst = Math.max(worst, err);
    if (err > 1e-8 + 1e-6 * Math.abs(num)) {
      if (bad++ < 5) t.comment(`x[${i}]: analytic ${g[i]} vs numeric ${num}`);
    }
  }
  t.equal(bad, 0, `d L / d x matches central differences at all ${x.length} elements (worst ${worst})`);
  t.ok(g.some((v) => Math.abs(v) > 1e-6), 'the gradient is not trivially zero');
  m.dispose();
});

// ---- memory --------------------------------------------------------------------------------------
// A child process (fresh peak RSS) runs forward + backward over `depth` residual blocks
// a = Neg(h), b = Add(h, h), h' = Add(a, b) (= h) on [4, 2^20] float32 activations (16 MiB each),
// then Reshape + ReduceMean, and reports how far the peak RSS rose during the gradients call.
const modelUrl = pathToFileURL(fileURLToPath(new URL('../src/engine/model.ts', import.meta.url))).href;
const childCode = `
import { EngineModel } from ${JSON.stringify(modelUrl)};
const depth = Number(process.env.FIT_MEM_DEPTH), N = 4, K = 1 << 20;
const node = (op, inputs, outputs, attrs = {}) => ({ op, name: outputs[0], domain: '', inputs, outputs, attrs });
const nodes = [];
let h = 'x';
for (let i = 0; i < depth; i++) {
  nodes.push(node('Neg', [h], ['a' + i]), node('Add', [h, h], ['b' + i]), node('Add', ['a' + i, 'b' + i], ['h' + i]));
  h = 'h' + i;
}
nodes.push(node('Reshape', [h, 'shape'], ['rs']));
nodes.push(node('ReduceMean', ['rs'], ['y'], { axes: { type: 'ints', value: [1] }, keepdims: { type: 'int', value: 0 } }));
const m = new EngineModel({
  opset: 17, nodes,
  initializers: new Map([['shape', { dims: [2], type: 'int64', data: BigInt64Array.from([4n, -1n]) }]]),
  inputs: [{ name: 'x', elemType: 'float32', dims: [N, K] }],
  outputs: [{ name: 'y', elemType: 'float32', dims: [] }],
  shapes: new Map([['x', [N, K]]]),
});
const x = new Float32Array(N * K);
for (let i = 0; i < x.length; i++) x[i] = (i % 7) - 3;
const before = process.resourceUsage().maxRSS;
const r = m.gradients({ x: { dims: [N, K], data: x } }, { seeds: { y: { dims: [N], data: Float32Array.from([1, 2, 3, 4]) } }, want: ['x'] });
const after = process.resourceUsage().maxRSS;
const g = r.grads.x.data;
console.log('FIT_MEM ' + JSON.stringify({ riseMiB: (after - before) / 1024, g0: g[0] * K, gLast: g[N * K - 1] * K }));
`;

function peakRise(t: Test, depth: number): { riseMiB: number; g0: number; gLast: number } | undefined {
  const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childCode], {
    env: { ...process.env, FIT_MEM_DEPTH: String(depth), NODE_OPTIONS: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const line = (p.stdout ?? '').split('\n').find((l) => l.startsWith('FIT_MEM '));
  if (p.status !== 0 || !line) {
    t.fail(`depth ${depth}: the child failed (status ${p.status}): ${p.stderr}`);
    return undefined;
  }
  return JSON.parse(line.slice('FIT_MEM '.length));
}

t.test('residual Adds keep no activations alive: peak memory does not grow with depth', async (t) => {
  const S = 16; // MiB per activation
  const shallow = peakRise(t, 1);
  const deep = peakRise(t, 8);
  if (!shallow || !deep) return;
  t.comment(`peak RSS rise: depth 1 ${shallow.riseMiB.toFixed(1)} MiB, depth 8 ${deep.riseMiB.toFixed(1)} MiB`);
  for (const [d, r] of [[1, shallow], [8, deep]] as const) {
    t.equal(r.g0, 1, `depth ${d}: dx = seed / K (row 0)`);
    t.equal(r.gLast, 4, `depth ${d}: dx = seed / K (row 3)`);
  }
  // Saving Add's inputs kept 3 activations per block: +21 blocks' worth (~336 MiB) at depth 8.
  t.ok(deep.riseMiB - shallow.riseMiB < 2 * S, `7 more blocks raise the peak by less than ${2 * S} MiB`);
});
