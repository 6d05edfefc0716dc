/**
 * Gradient rules of the elementwise, softmax and reduction families against central finite
 * differences in float64 (test/helpers/grad.ts), over the attribute combinations and broadcast
 * patterns of test/ops-elementwise.test.ts. Every runtime float input is checked (binary operands are
 * runtime so that both sides are); shape-like operands stay int64 constants. Each case also runs as
 * `op -> Neg` so that the op's inputs and outputs are freed after forward unless its saved masks keep
 * them: the gradient must be the same, which proves the masks cover what the rule reads. Then ties
 * and zeros (Max/Min, ReduceMax, ReduceProd), float32 against float64 on a 1000-class Softmax, and the
 * documented refusal.
 */
import t from 'tap';
import type { Test } from 'tap';
import { checkGrad, prepareGradCase, type GradCase } from './helpers/grad.js';
import { caseLabel } from './helpers/ops.js';
import { rng } from './helpers/random.js';
import { EngineModel } from '../src/engine/model.js';
import { NoGradientError } from '../src/errors.js';
import type { Graph } from '../src/onnx/types.js';

const f = (value: number) => ({ type: 'float' as const, value });
const i64 = (data: number[]) => ({ dims: [data.length], type: 'int64' as const, data, const: true });
const scalar = (v: number) => ({ dims: [] as number[], data: [v], const: true });
const X4 = [2, 3, 4, 5];

/** The case's graph with a Neg after each output: the op's own values are then not graph outputs. */
function chained(c: GradCase) {
  const p = prepareGradCase(c, 1);
  const node = p.graph.nodes[0]!;
  const mids = node.outputs.map((o) => `mid_${o}`);
  const graph: Graph = {
    ...p.graph,
    nodes: [
      { ...node, outputs: mids },
      ...mids.map((m, i) => ({ op: 'Neg', name: `neg${i}`, domain: '', inputs: [m], outputs: [p.outputs[i]!], attrs: {} })),
    ],
  };
  return { ...p, graph };
}

/** Gradients of the single node (seed c) and of op -> Neg (seed -c) agree exactly. */
function checkMasks(t: Test, c: GradCase): void {
  const single = prepareGradCase(c, 1);
  const chain = chained(c);
  const want = single.runtime.map((k) => `in${k}`);
  if (want.length === 0) return;
  const m1 = new EngineModel(single.graph);
  const m2 = new EngineModel(chain.graph);
  try {
    const y = m1.run(single.feeds, { precision: 'float64' });
    const r = rng(99);
    const seeds1: Record<string, { dims: number[]; data: Float64Array }> = {};
    const seeds2: Record<string, { dims: number[]; data: Float64Array }> = {};
    for (const o of single.outputs) {
      const coef = Float64Array.from({ length: y[o]!.data.length }, () => 2 * r() - 1);
      seeds1[o] = { dims: y[o]!.dims, data: coef };
      seeds2[o] = { dims: y[o]!.dims, data: coef.map((v) => -v) };
    }
    const g1 = m1.gradients(single.feeds, { precision: 'float64', seeds: seeds1, want });
    const g2 = m2.gradients(chain.feeds, { precision: 'float64', seeds: seeds2, want });
    let worst = 0;
    for (const name of want) {
      const a = g1.grads[name]!.data as Float64Array;
      const b = g2.grads[name]!.data as Float64Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    }
    t.ok(worst <= 1e-12, `saved masks suffice: ${caseLabel(c)} followed by Neg gives the same gradient`);
  } finally {
    m1.dispose();
    m2.dispose();
  }
}

async function checkAll(t: Test, cases: GradCase[]): Promise<void> {
  for (const c of cases) {
    await t.test(`grad ${caseLabel(c)}`, async (tt) => {
      await checkGrad(tt, c);
      checkMasks(tt, c);
    });
  }
}

// ------------------------------------------------------------------------------------------------
const activationCases: GradCase[] = [];
{
  const wide = { low: -4, high: 4 };
  for (const op of ['Relu', 'Sigmoid', 'Tanh', 'Erf', 'Neg', 'Exp', 'Abs', 'Softplus', 'HardSwish', 'Floor', 'Ceil', 'LeakyRelu', 'HardSigmoid', 'Elu', 'Selu'])
    activationCases.push({ op, inputs: [{ dims: X4, ...wide }] });
  activationCases.push(
    { name: 'Sigmoid saturates', op: 'Sigmoid', inputs: [{ dims: [3, 50], low: -60, high: 60 }] },
    { name: 'Softplus large |x|', op: 'Softplus', inputs: [{ dims: [3, 50], low: -60, high: 60 }] },
    { name: 'positive inputs', op: 'Sqrt', inputs: [{ dims: X4, low: 0.01, high: 4 }] },
    { name: 'positive inputs', op: 'Log', inputs: [{ dims: X4, low: 0.01, high: 4 }] },
    { name: 'away from 0', op: 'Reciprocal', inputs: [{ dims: X4, low: 0.25, high: 3 }] },
    { op: 'LeakyRelu', attrs: { alpha: f(0.2) }, inputs: [{ dims: [3, 7], ...wide }] },
    { op: 'HardSigmoid', attrs: { alpha: f(0.3), beta: f(0.4) }, inputs: [{ dims: [3, 7], ...wide }] },
    { op: 'Elu', attrs: { alpha: f(0.5) }, inputs: [{ dims: [3, 7], ...wide }] },
    { op: 'Selu', attrs: { alpha: f(1.5), gamma: f(0.9) }, inputs: [{ dims: [3, 7], ...wide }] },
    { name: 'erf form', op: 'Gelu', opset: 20, inputs: [{ dims: X4, ...wide }] },
    { name: 'approximate none', op: 'Gelu', opset: 20, attrs: { approximate: 'none' }, inputs: [{ dims: [4, 9], ...wide }] },
    { name: 'approximate tanh', op: 'Gelu', opset: 20, attrs: { approximate: 'tanh' }, inputs: [{ dims: X4, ...wide }] },
    { name: 'opset 7 (Clip-6) min/max attrs', op: 'Clip', opset: 7, attrs: { min: f(-0.5), max: f(0.7) }, inputs: [{ dims: X4 }], samples: 40 },
    { name: 'opset 7 (Clip-6) max only', op: 'Clip', opset: 7, attrs: { max: f(0.2) }, inputs: [{ dims: X4 }] },
    { name: 'opset 7 (Clip-6) no attrs', op: 'Clip', opset: 7, inputs: [{ dims: [3, 4] }] },
    { name: 'opset 13 min/max inputs', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, scalar(-0.3), scalar(0.6)], samples: 40 },
    { name: 'opset 13 absent min', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, { dims: [], absent: true }, scalar(0.25)] },
    { name: 'opset 13 min only', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, scalar(-0.1)] },
    { name: 'opset 13 no bounds', op: 'Clip', opset: 13, inputs: [{ dims: [3, 4] }] },
    // Runtime bounds get their exact gradient (the sum of dy over the elements clipped to them).
    { name: 'opset 11 runtime bounds', op: 'Clip', opset: 11, inputs: [{ dims: [3, 4] }, { dims: [], data: [-0.5] }, { dims: [], data: [0.5] }] },
    { name: 'opset 13 runtime min above max', op: 'Clip', opset: 13, inputs: [{ dims: [3, 4] }, { dims: [], data: [0.5] }, { dims: [], data: [-0.5] }] },
  );
}

// ------------------------------------------------------------------------------------------------
const broadcastPatterns: Array<{ name: string; a: number[]; b: number[] }> = [
  { name: 'same shape', a: X4, b: X4 },
  { name: 'per-channel bias', a: X4, b: [3, 1, 1] },
  { name: '[1] + [2,3]', a: [1], b: [2, 3] },
  { name: '[2,1,4] * [1,3,1]', a: [2, 1, 4], b: [1, 3, 1] },
  { name: 'scalar right', a: X4, b: [] },
  { name: 'scalar left', a: [], b: [3, 5] },
  { name: 'trailing vector', a: [4, 5], b: [5] },
  { name: 'outer column', a: [4, 5], b: [4, 1] },
  { name: 'both broadcast [2,3,1,5] [1,3,4,1]', a: [2, 3, 1, 5], b: [1, 3, 4, 1] },
  { name: 'rank 4 vs rank 2 [6,1,1,2] [5,1]', a: [6, 1, 1, 2], b: [5, 1] },
  { name: 'NCHW + [1,C,1,1]', a: [2, 8, 6, 6], b: [1, 8, 1, 1] },
];
const binaryCases: GradCase[] = [];
for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
  const positive = op === 'Div' ? { low: 0.5, high: 2 } : {};
  for (const p of broadcastPatterns) binaryCases.push({ name: p.name, op, inputs: [{ dims: p.a }, { dims: p.b, ...positive }] });
}
binaryCases.push(
  { name: 'per-channel const bias', op: 'Add', inputs: [{ dims: X4 }, { dims: [3, 1, 1], const: true }] },
  { name: 'opset 7 Add', op: 'Add', opset: 7, inputs: [{ dims: [2, 3] }, { dims: [3] }] },
  { name: 'x ** 2 const', op: 'Pow', inputs: [{ dims: X4 }, scalar(2)] },
  { name: 'x ** 0.5 const', op: 'Pow', inputs: [{ dims: X4, low: 0.01, high: 3 }, scalar(0.5)] },
  { name: 'x ** -1.5 const', op: 'Pow', inputs: [{ dims: X4, low: 0.1, high: 3 }, scalar(-1.5)] },
  { name: 'x ** 3 int64', op: 'Pow', inputs: [{ dims: [3, 4] }, { dims: [], type: 'int64', data: [3], const: true }] },
  { name: 'runtime scalar exponent', op: 'Pow', inputs: [{ dims: X4, low: 0.1, high: 2 }, { dims: [], low: -2, high: 2 }] },
  { name: 'broadcast exponent', op: 'Pow', inputs: [{ dims: [2, 3, 4], low: 0.1, high: 2 }, { dims: [3, 1], low: -2, high: 2 }] },
  { name: 'scalar base', op: 'Pow', inputs: [{ dims: [], data: [1.7] }, { dims: [3, 4], low: -2, high: 2 }] },
  { name: 'both broadcast', op: 'Pow', inputs: [{ dims: [2, 1, 4], low: 0.2, high: 2 }, { dims: [1, 3, 1], low: -2, high: 2 }] },
  { name: 'per-channel slope', op: 'PRelu', inputs: [{ dims: X4 }, { dims: [3, 1, 1] }] },
  { name: 'shared slope', op: 'PRelu', inputs: [{ dims: X4 }, { dims: [1] }] },
  { name: 'trailing slope', op: 'PRelu', inputs: [{ dims: [3, 7] }, { dims: [7] }] },
  { name: 'full slope', op: 'PRelu', inputs: [{ dims: [2, 3, 4] }, { dims: [2, 3, 4] }] },
  { name: 'const slope', op: 'PRelu', inputs: [{ dims: X4 }, { dims: [3, 1, 1], const: true }] },
);
for (const op of ['Max', 'Min', 'Sum', 'Mean'])
  binaryCases.push(
    { name: '3 broadcast inputs', op, inputs: [{ dims: [2, 3, 4] }, { dims: [3, 1] }, { dims: [4] }], samples: 24 },
    { name: 'const third input', op, inputs: [{ dims: [2, 3, 4] }, { dims: [3, 1] }, { dims: [4], const: true }] },
    { name: 'small first', op, inputs: [{ dims: [4] }, { dims: [2, 3, 4] }] },
    { name: 'single input', op, inputs: [{ dims: [2, 5] }] },
    { name: 'same shapes', op, inputs: [{ dims: X4 }, { dims: X4 }] },
  );

// ------------------------------------------------------------------------------------------------
const softmaxCases: GradCase[] = [];
for (const op of ['Softmax', 'LogSoftmax']) {
  const x = { dims: X4, low: -4, high: 4 };
  softmaxCases.push(
    { name: 'opset 11 axis 1 (coerced 2-D)', op, opset: 11, attrs: { axis: 1 }, inputs: [x] },
    { name: 'opset 13 axis 1 (single axis)', op, opset: 13, attrs: { axis: 1 }, inputs: [x] },
    { name: 'opset 11 default axis', op, opset: 11, inputs: [x] },
    { name: 'opset 13 default axis', op, opset: 13, inputs: [x] },
    { name: 'opset 11 axis 2', op, opset: 11, attrs: { axis: 2 }, inputs: [x] },
    { name: 'opset 11 axis -1', op, opset: 11, attrs: { axis: -1 }, inputs: [x] },
    { name: 'opset 11 axis 0', op, opset: 11, attrs: { axis: 0 }, inputs: [x] },
    { name: 'opset 13 axis 0', op, opset: 13, attrs: { axis: 0 }, inputs: [x] },
    { name: 'opset 13 axis 2', op, opset: 13, attrs: { axis: 2 }, inputs: [x] },
    { name: 'opset 13 axis -3', op, opset: 13, attrs: { axis: -3 }, inputs: [x] },
    { name: 'classifier logits', op, opset: 13, inputs: [{ dims: [4, 10], low: -10, high: 10 }] },
    { name: 'rank 1', op, opset: 13, inputs: [{ dims: [17], low: -5, high: 5 }] },
  );
}

// ------------------------------------------------------------------------------------------------
const reduceCases: GradCase[] = [];
{
  const dims = [3, 4, 5, 6];
  const ops: Array<[string, { low?: number; high?: number }]> = [
    ['ReduceSum', {}], ['ReduceMean', {}], ['ReduceMax', {}], ['ReduceMin', {}], ['ReduceL2', {}],
    ['ReduceSumSquare', {}], ['ReduceL1', {}], ['ReduceProd', { low: 0.8, high: 1.2 }],
    ['ReduceLogSum', { low: 0.1, high: 2 }], ['ReduceLogSumExp', { low: -5, high: 5 }],
  ];
  const axesSets: Array<number[] | null> = [null, [1], [-1], [0, 2], [2, 3], [-3, -2], [0, 1, 2, 3]];
  for (const [op, range] of ops) {
    // Max/Min: few elements get a gradient, so look at more of them.
    const samples = op === 'ReduceMax' || op === 'ReduceMin' ? 48 : 12;
    axesSets.forEach((axes, k) => {
      const keepdims = k % 2;
      reduceCases.push({ op, opset: op === 'ReduceSum' ? 11 : 13, attrs: axes ? { axes, keepdims } : { keepdims }, inputs: [{ dims, ...range }], samples });
      reduceCases.push({ op, opset: 18, attrs: { keepdims: 1 - keepdims }, inputs: axes ? [{ dims, ...range }, i64(axes)] : [{ dims, ...range }], samples });
    });
  }
  reduceCases.push(
    { name: 'ReduceSum opset 13 axes input', op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dims }, i64([1, -1])] },
    { name: 'noop_with_empty_axes', op: 'ReduceSum', opset: 13, attrs: { noop_with_empty_axes: 1 }, inputs: [{ dims }] },
    { name: 'noop_with_empty_axes', op: 'ReduceMean', opset: 18, attrs: { noop_with_empty_axes: 1 }, inputs: [{ dims: [2, 3] }] },
    { name: 'noop_with_empty_axes (identity)', op: 'ReduceSumSquare', opset: 18, attrs: { noop_with_empty_axes: 1 }, inputs: [{ dims: [2, 3] }] },
    { name: 'global average pool style', op: 'ReduceMean', opset: 13, attrs: { axes: [2, 3] }, inputs: [{ dims: [2, 8, 7, 7] }] },
    { name: 'size-1 dims reduced', op: 'ReduceMean', opset: 13, attrs: { axes: [1, 3] }, inputs: [{ dims: [2, 1, 5, 1] }] },
    { name: 'long row', op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dims: [3, 2000] }, i64([1])] },
    { name: 'long row', op: 'ReduceMax', opset: 18, attrs: { keepdims: 0 }, inputs: [{ dims: [3, 200] }, i64([1])], samples: 600 },
  );
}

t.test('activations', async (t) => checkAll(t, activationCases));
t.test('binary and variadic', async (t) => checkAll(t, binaryCases));
t.test('softmax', async (t) => checkAll(t, softmaxCases));
t.test('reductions', async (t) => checkAll(t, reduceCases));

// ------------------------------------------------------------------------------------------------
/** Gradients (float64) of a one-node case with given data and seed. */
function gradsOf(c: GradCase, seed: number[]): Record<string, number[]> {
  const p = prepareGradCase(c, 1);
  const m = new EngineModel(p.graph);
  try {
    const y = m.run(p.feeds, { precision: 'float64' });
    const r = m.gradients(p.feeds, {
      precision: 'float64',
      seeds: { out0: { dims: y.out0!.dims, data: Float64Array.from(seed) } },
      want: p.runtime.map((k) => `in${k}`),
    });
    return Object.fromEntries(Object.entries(r.grads).map(([k, v]) => [k, Array.from(v.data as Float64Array)]));
  } finally {
    m.dispose();
  }
}

t.test('ties and zeros', async (t) => {
  // Max/Min: on ties the first input (the one the forward keeps) gets the gradient.
  const a = { dims: [4], data: [1, 2, 3, -1] };
  const b = { dims: [4], data: [1, 5, 3, -2] };
  t.same(gradsOf({ op: 'Max', inputs: [a, b] }, [1, 2, 3, 4]), { in0: [1, 0, 3, 4], in1: [0, 2, 0, 0] });
  t.same(gradsOf({ op: 'Min', inputs: [a, b] }, [1, 2, 3, 4]), { in0: [1, 2, 3, 0], in1: [0, 0, 0, 4] });
  t.same(gradsOf({ op: 'Max', inputs: [{ dims: [1], data: [2] }, { dims: [2, 2], data: [2, 1, 3, 2] }] }, [1, 2, 3, 4]), { in0: [7], in1: [0, 0, 3, 0] });
  // ReduceMax/ReduceMin: the first extreme element of each slice.
  const x = { dims: [2, 3], data: [2, 1, 2, 0, 3, 3] };
  t.same(gradsOf({ op: 'ReduceMax', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [x] }, [5, 7]), { in0: [5, 0, 0, 0, 7, 0] });
  t.same(gradsOf({ op: 'ReduceMin', opset: 18, attrs: { keepdims: 1 }, inputs: [{ dims: [2, 3], data: [1, 0, 2, 0, 3, 0] }, i64([0])] }, [1, 2, 3]), { in0: [0, 2, 0, 1, 0, 3] });
  // ReduceProd with zeros: the product of the other elements, exactly.
  const z = { dims: [3, 3], data: [0, 2, 3, 0, 0, 4, 1, 2, 3] };
  t.same(gradsOf({ op: 'ReduceProd', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [z] }, [1, 1, 2]), { in0: [6, 0, 0, 0, 0, 0, 12, 6, 4] });
  // Pow: the exponent gradient is 0 where the base is not positive; x ** 0 has a zero base gradient.
  const pw = gradsOf({ op: 'Pow', inputs: [{ dims: [3], data: [-2, 0, 2] }, { dims: [3], data: [2, 0, 3] }] }, [1, 1, 1]);
  t.same(pw.in0, [-4, 0, 12]);
  t.same(pw.in1!.slice(0, 2), [0, 0]);
  t.ok(Math.abs(pw.in1![2]! - 8 * Math.log(2)) < 1e-12, 'd 2^3 / d 3 = 8 log 2');
});

t.test('float32 gradient matches float64 on a 1000-class Softmax and LogSoftmax', async (t) => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    const c: GradCase = { op, opset: 13, inputs: [{ dims: [4, 1000], low: -8, high: 8 }] };
    const p = prepareGradCase(c, 5);
    const x32 = Float32Array.from(p.feeds.in0!.data);
    const r = rng(17);
    const c32 = Float32Array.from({ length: x32.length }, () => 2 * r() - 1);
    const m = new EngineModel(p.graph);
    try {
      const g32 = m.gradients({ in0: { dims: [4, 1000], data: x32 } }, { precision: 'float32', seeds: { out0: { dims: [4, 1000], data: c32 } }, want: ['in0'] });
      const g64 = m.gradients({ in0: { dims: [4, 1000], data: Float64Array.from(x32) } }, { precision: 'float64', seeds: { out0: { dims: [4, 1000], data: Float64Array.from(c32) } }, want: ['in0'] });
      const a = g32.grads.in0!.data as Float32Array;
      const b = g64.grads.in0!.data as Float64Array;
      t.ok(a instanceof Float32Array, 'float32 run returns float32');
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (op === 'Softmax' ? 1 : Math.max(1, Math.abs(b[i]!))));
      t.ok(worst <= 1e-5, `${op}: float32 within 1e-5 of float64 (${op === 'Softmax' ? 'absolute' : 'relative'} ${worst.toExponential(2)})`);
    } finally {
      m.dispose();
    }
  }
});

t.test('LeakyRelu, Elu and Selu need the sign of x in y', async (t) => {
  const p = prepareGradCase({ op: 'LeakyRelu', attrs: { alpha: f(-0.1) }, inputs: [{ dims: [2, 3] }] }, 1);
  const m = new EngineModel(p.graph);
  try {
    let err: unknown;
    try {
      m.gradients(p.feeds, { precision: 'float64', seeds: { out0: { dims: [2, 3], data: new Float64Array(6).fill(1) } }, want: ['in0'] });
    } catch (e) {
      err = e;
    }
    t.type(err, NoGradientError);
    t.match((err as Error)?.message ?? '', /LeakyRelu 'node'.*alpha >= 0/);
  } finally {
    m.dispose();
  }
});
