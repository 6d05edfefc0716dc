/**
 * Elementwise, softmax, reduction and shape ops against onnxruntime-node: activations and unary math,
 * broadcasting binary ops, PRelu, variadic Max/Min/Sum/Mean, Softmax/LogSoftmax (both axis
 * semantics), Reduce* (axes as attribute and as input), Flatten, Reshape, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Pad, Expand, Tile; plus float64 runs of a subset and the
 * documented failures.
 */
import t from 'tap';
import type { Test } from 'tap';
import { buildOpModel, caseLabel, checkOps, runOrt, type OpCase } from './helpers/ops.js';
import { EngineModel } from '../src/engine/model.js';

const f = (value: number) => ({ type: 'float' as const, value });
const i64 = (data: number[]) => ({ dims: [data.length], type: 'int64' as const, data, const: true });
const scalar = (v: number) => ({ dims: [] as number[], data: [v], const: true });
const X4 = [2, 3, 4, 5];

// ------------------------------------------------------------------------------------------------
const activationCases: OpCase[] = [];
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
    { name: 'opset 7 (Clip-6) min/max attrs', op: 'Clip', opset: 7, attrs: { min: f(-0.5), max: f(0.7) }, inputs: [{ dims: X4 }] },
    { name: 'opset 7 (Clip-6) max only', op: 'Clip', opset: 7, attrs: { max: f(0.2) }, inputs: [{ dims: X4 }] },
    { name: 'opset 7 (Clip-6) no attrs', op: 'Clip', opset: 7, inputs: [{ dims: [3, 4] }] },
    { name: 'opset 13 min/max inputs', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, scalar(-0.3), scalar(0.6)] },
    { name: 'opset 13 absent min', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, { dims: [], absent: true }, scalar(0.25)] },
    { name: 'opset 13 min only', op: 'Clip', opset: 13, inputs: [{ dims: X4 }, scalar(-0.1)] },
    { name: 'opset 13 no bounds', op: 'Clip', opset: 13, inputs: [{ dims: [3, 4] }] },
    { name: 'opset 11 non-const bounds', op: 'Clip', opset: 11, inputs: [{ dims: [3, 4] }, { dims: [], data: [-0.5] }, { dims: [], data: [0.5] }] },
  );
}

// ------------------------------------------------------------------------------------------------
const broadcastPatterns: Array<{ name: string; a: number[]; b: number[]; bConst?: boolean; aConst?: boolean }> = [
  { name: 'same shape', a: X4, b: X4 },
  { name: 'per-channel const bias', a: X4, b: [3, 1, 1], bConst: true },
  { name: '[1] + [2,3]', a: [1], b: [2, 3] },
  { name: '[2,1,4] * [1,3,1]', a: [2, 1, 4], b: [1, 3, 1] },
  { name: 'scalar const right', a: X4, b: [], bConst: true },
  { name: 'scalar const left', a: [], b: [3, 5], aConst: true },
  { name: 'trailing vector', a: [4, 5], b: [5], bConst: true },
  { name: 'outer column', a: [4, 5], b: [4, 1] },
  { name: 'both broadcast [2,3,1,5] [1,3,4,1]', a: [2, 3, 1, 5], b: [1, 3, 4, 1] },
  { name: 'rank 4 vs rank 2 [6,1,1,2] [5,1]', a: [6, 1, 1, 2], b: [5, 1] },
  { name: 'NCHW + [1,C,1,1]', a: [2, 8, 6, 6], b: [1, 8, 1, 1], bConst: true },
];
const binaryCases: OpCase[] = [];
for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
  const positive = op === 'Div' ? { low: 0.5, high: 2 } : {};
  for (const p of broadcastPatterns)
    binaryCases.push({
      name: p.name,
      op,
      inputs: [
        { dims: p.a, const: p.aConst },
        { dims: p.b, const: p.bConst, ...positive },
      ],
    });
}
binaryCases.push(
  { name: 'opset 7 Add', op: 'Add', opset: 7, inputs: [{ dims: [2, 3] }, { dims: [3] }] },
  { name: 'x ** 2 const', op: 'Pow', inputs: [{ dims: X4 }, scalar(2)] },
  { name: 'x ** 0.5 const', op: 'Pow', inputs: [{ dims: X4, low: 0.01, high: 3 }, scalar(0.5)] },
  { name: 'x ** -1.5 const', op: 'Pow', inputs: [{ dims: X4, low: 0.1, high: 3 }, scalar(-1.5)] },
  { name: 'x ** 3 int64', op: 'Pow', inputs: [{ dims: [3, 4] }, { dims: [], type: 'int64', data: [3], const: true }] },
  { name: 'broadcast exponent', op: 'Pow', inputs: [{ dims: [2, 3, 4], low: 0.1, high: 2 }, { dims: [3, 1], low: -2, high: 2 }], rtol: 2e-4 },
  { name: 'scalar base', op: 'Pow', inputs: [{ dims: [], data: [1.7] }, { dims: [3, 4], low: -2, high: 2 }] },
  { name: 'per-channel slope', op: 'PRelu', inputs: [{ dims: X4 }, { dims: [3, 1, 1], const: true }] },
  { name: 'shared slope', op: 'PRelu', inputs: [{ dims: X4 }, { dims: [1], const: true }] },
  { name: 'trailing slope', op: 'PRelu', inputs: [{ dims: [3, 7] }, { dims: [7] }] },
  { name: 'full slope', op: 'PRelu', inputs: [{ dims: [2, 3, 4] }, { dims: [2, 3, 4], const: true }] },
);
for (const op of ['Max', 'Min', 'Sum', 'Mean'])
  binaryCases.push(
    { name: '3 broadcast inputs', op, inputs: [{ dims: [2, 3, 4] }, { dims: [3, 1] }, { dims: [4], const: true }] },
    { name: 'small first', op, inputs: [{ dims: [4] }, { dims: [2, 3, 4] }] },
    { name: 'single input', op, inputs: [{ dims: [2, 5] }] },
    { name: 'same shapes', op, inputs: [{ dims: X4 }, { dims: X4 }] },
  );

// ------------------------------------------------------------------------------------------------
const softmaxCases: OpCase[] = [];
for (const op of ['Softmax', 'LogSoftmax']) {
  const x = { dims: X4, low: -20, high: 20 };
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
    { name: 'classifier logits', op, opset: 13, inputs: [{ dims: [4, 10], low: -50, high: 50 }] },
    { name: 'rank 1', op, opset: 13, inputs: [{ dims: [17], low: -5, high: 5 }] },
  );
}

// ------------------------------------------------------------------------------------------------
const reduceCases: OpCase[] = [];
{
  const dims = [3, 4, 5, 6];
  const ops: Array<[string, { low?: number; high?: number }]> = [
    ['ReduceSum', {}], ['ReduceMean', {}], ['ReduceMax', {}], ['ReduceMin', {}], ['ReduceL2', {}],
    ['ReduceSumSquare', {}], ['ReduceL1', {}], ['ReduceProd', { low: 0.8, high: 1.2 }],
    ['ReduceLogSum', { low: 0.1, high: 2 }], ['ReduceLogSumExp', { low: -5, high: 5 }],
  ];
  const axesSets: Array<number[] | null> = [null, [1], [-1], [0, 2], [2, 3], [-3, -2], [0, 1, 2, 3]];
  for (const [op, range] of ops) {
    axesSets.forEach((axes, k) => {
      const keepdims = k % 2;
      // axes as attribute (older opset)
      reduceCases.push({
        op,
        opset: op === 'ReduceSum' ? 11 : 13,
        attrs: axes ? { axes, keepdims } : { keepdims },
        inputs: [{ dims, ...range }],
        atol: 1e-4,
      });
      // axes as input (opset 18), the other keepdims
      reduceCases.push({
        op,
        opset: 18,
        attrs: { keepdims: 1 - keepdims },
        inputs: axes ? [{ dims, ...range }, i64(axes)] : [{ dims, ...range }],
        atol: 1e-4,
      });
    });
  }
  reduceCases.push(
    { name: 'ReduceSum opset 13 axes input', op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dims }, i64([1, -1])] },
    { name: 'noop_with_empty_axes', op: 'ReduceSum', opset: 13, attrs: { noop_with_empty_axes: 1 }, inputs: [{ dims }] },
    { name: 'noop_with_empty_axes', op: 'ReduceMean', opset: 18, attrs: { noop_with_empty_axes: 1 }, inputs: [{ dims: [2, 3] }] },
    { name: 'global average pool style', op: 'ReduceMean', opset: 13, attrs: { axes: [2, 3] }, inputs: [{ dims: [2, 8, 7, 7] }] },
    { name: 'size-1 dims reduced', op: 'ReduceMean', opset: 13, attrs: { axes: [1, 3] }, inputs: [{ dims: [2, 1, 5, 1] }] },
    { name: 'long row', op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dims: [3, 2000] }, i64([1])], atol: 1e-4 },
  );
}

// ------------------------------------------------------------------------------------------------
const shapeCases: OpCase[] = [
  ...[0, 1, 2, -1, 4].map((axis): OpCase => ({ op: 'Flatten', attrs: { axis }, inputs: [{ dims: X4 }] })),
  { name: 'default axis', op: 'Flatten', inputs: [{ dims: X4 }] },
  { name: '[6,20]', op: 'Reshape', inputs: [{ dims: X4 }, i64([6, 20])] },
  { name: '0 copies, -1 infers', op: 'Reshape', inputs: [{ dims: X4 }, i64([0, -1])] },
  { name: 'middle 0', op: 'Reshape', inputs: [{ dims: X4 }, i64([2, 0, 20])] },
  { name: 'flatten to -1', op: 'Reshape', inputs: [{ dims: X4 }, i64([-1])] },
  { name: 'allowzero 0', op: 'Reshape', opset: 14, attrs: { allowzero: 0 }, inputs: [{ dims: X4 }, i64([4, -1, 5])] },
  { name: 'all size-1 dims', op: 'Squeeze', opset: 13, inputs: [{ dims: [1, 3, 1, 5] }] },
  { name: 'axes attr', op: 'Squeeze', opset: 11, attrs: { axes: [0] }, inputs: [{ dims: [1, 3, 1, 5] }] },
  { name: 'axes input negative', op: 'Squeeze', opset: 13, inputs: [{ dims: [1, 3, 1, 5] }, i64([-2, 0])] },
  { name: 'axes attr', op: 'Unsqueeze', opset: 11, attrs: { axes: [0, 5] }, inputs: [{ dims: X4 }] },
  { name: 'axes input negative', op: 'Unsqueeze', opset: 13, inputs: [{ dims: X4 }, i64([-1, 1])] },
  { name: 'scalar', op: 'Unsqueeze', opset: 13, inputs: [{ dims: [] }, i64([0])] },
  ...[null, [0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3], [2, 0, 3, 1]].map(
    (perm): OpCase => ({ op: 'Transpose', attrs: perm ? { perm } : {}, inputs: [{ dims: X4 }] }),
  ),
  { name: '2-D default', op: 'Transpose', inputs: [{ dims: [7, 9] }] },
  { name: '3 inputs, middle axis', op: 'Concat', attrs: { axis: 1 }, inputs: [{ dims: [2, 1, 4] }, { dims: [2, 3, 4] }, { dims: [2, 2, 4], const: true }] },
  { name: 'axis 0', op: 'Concat', attrs: { axis: 0 }, inputs: [{ dims: [2, 3] }, { dims: [1, 3] }] },
  { name: 'axis -1', op: 'Concat', attrs: { axis: -1 }, inputs: [{ dims: [2, 3, 2] }, { dims: [2, 3, 5] }, { dims: [2, 3, 1] }] },
  { name: 'single input', op: 'Concat', attrs: { axis: 0 }, inputs: [{ dims: [2, 3] }] },
  { name: 'opset 13 split input, 3 uneven', op: 'Split', opset: 13, outputs: 3, attrs: { axis: 1 }, inputs: [{ dims: [2, 7, 3] }, i64([2, 4, 1])] },
  { name: 'opset 11 split attr', op: 'Split', opset: 11, outputs: 3, attrs: { axis: 1, split: [3, 3, 1] }, inputs: [{ dims: [2, 7, 3] }] },
  { name: 'equal, axis -1', op: 'Split', opset: 13, outputs: 3, attrs: { axis: -1 }, inputs: [{ dims: [2, 3, 6] }] },
  { name: 'equal, default axis', op: 'Split', opset: 11, outputs: 2, inputs: [{ dims: [4, 3] }] },
  { name: 'opset 18 num_outputs uneven', op: 'Split', opset: 18, outputs: 3, attrs: { axis: 1, num_outputs: 3 }, inputs: [{ dims: [2, 7, 3] }] },
  { name: 'basic', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([1]), i64([4]), i64([0])] },
  { name: 'no axes', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([1, 2]), i64([4, 5])] },
  { name: 'negative step, reverse axis', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([-1]), i64([-1e15]), i64([1]), i64([-1])] },
  { name: 'negative step 2 and step 3', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([5, 0]), i64([0, 7]), i64([0, 2]), i64([-2, 3])] },
  { name: 'clamped out-of-range', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([-100, 2]), i64([100, 1e15]), i64([0, -1]), i64([1, 2])] },
  { name: 'negative step clamps start', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([10]), i64([-10]), i64([2]), i64([-3])] },
  { name: 'negative step, start and end below -dim', op: 'Slice', inputs: [{ dims: [4, 3] }, i64([-6]), i64([-6]), i64([0]), i64([-1])] },
  { name: 'negative step, start below -dim', op: 'Slice', inputs: [{ dims: [4, 3] }, i64([-5]), i64([-6]), i64([0]), i64([-3])] },
  { name: 'empty result', op: 'Slice', inputs: [{ dims: [4, 3] }, i64([3]), i64([1]), i64([0]), i64([1])] },
  { name: 'opset 9 attrs', op: 'Slice', opset: 9, attrs: { starts: [1, -2], ends: [3, 1000], axes: [0, 2] }, inputs: [{ dims: [5, 6, 7] }] },
  { name: 'opset 9 no axes', op: 'Slice', opset: 9, attrs: { starts: [0, 1], ends: [2, -1] }, inputs: [{ dims: [5, 6, 7] }] },
  { name: 'constant with value', op: 'Pad', opset: 11, inputs: [{ dims: [2, 3, 4] }, i64([0, 1, 2, 1, 0, 3]), scalar(1.5)] },
  { name: 'constant default value', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([1, 0, 0, 0, 2, 1])] },
  { name: 'absent value', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([0, 0, 1, 0, 0, 1]), { dims: [], absent: true }] },
  { name: 'negative pads crop', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([0, -1, 2, 0, 1, -3]), scalar(-2)] },
  { name: 'NCHW spatial pad', op: 'Pad', opset: 13, inputs: [{ dims: [1, 2, 5, 5] }, i64([0, 0, 1, 1, 0, 0, 1, 1])] },
  { name: 'opset 7 attrs (Pad-2)', op: 'Pad', opset: 7, attrs: { pads: [1, 0, 0, 0, 0, 2], value: f(2) }, inputs: [{ dims: [2, 3, 4] }] },
  { name: 'opset 18 axes input', op: 'Pad', opset: 18, inputs: [{ dims: [2, 3, 4] }, i64([1, 2, 3, 0]), scalar(-1), i64([-1, 0])] },
  { name: 'column to matrix', op: 'Expand', inputs: [{ dims: [3, 1] }, i64([2, 1, 4])] },
  { name: 'shape smaller than input', op: 'Expand', inputs: [{ dims: [3, 1] }, i64([1])] },
  { name: 'scalar', op: 'Expand', inputs: [{ dims: [] }, i64([2, 3])] },
  { name: 'per-channel', op: 'Expand', inputs: [{ dims: [1, 3, 1, 1] }, i64([2, 3, 4, 5])] },
  { name: '[2,3] x [2,3]', op: 'Tile', inputs: [{ dims: [2, 3] }, i64([2, 3])] },
  { name: 'rank 3 with 1s', op: 'Tile', inputs: [{ dims: [2, 1, 3] }, i64([1, 4, 1])] },
];

// ------------------------------------------------------------------------------------------------
/** Runs the engine in float64 and compares with onnxruntime's float32 result. */
async function checkF64(t: Test, cases: OpCase[]): Promise<void> {
  for (const c of cases) {
    await t.test(`float64 ${caseLabel(c)}`, async (tt) => {
      const { bytes, graph, feeds, feedDims, outputs } = buildOpModel(c, 3);
      const expected = await runOrt(bytes, feeds, feedDims);
      const model = new EngineModel(graph);
      const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dims: feedDims[k]!, data: Float64Array.from(v) }]));
      const got = model.run(inputs, { precision: 'float64' });
      model.dispose();
      for (const name of outputs) {
        const e = expected[name]!;
        const g = got[name]!;
        tt.same(g.dims, Array.from(e.dims, Number), `${name} dims`);
        const ed = e.data as Float32Array;
        let bad = -1;
        for (let i = 0; i < ed.length; i++) if (!(Math.abs((g.data[i] as number) - ed[i]!) <= 1e-4 + 1e-4 * Math.abs(ed[i]!))) bad = i;
        tt.ok(bad < 0, `${name} within tolerance`, bad >= 0 ? { index: bad, got: g.data[bad], expected: ed[bad] } : {});
      }
    });
  }
}

/** Builds the one-node model and expects the engine to refuse it with a message matching `re`. */
async function checkFails(t: Test, c: OpCase, re: RegExp): Promise<void> {
  await t.test(`fails: ${caseLabel(c)}`, async (tt) => {
    const { graph, feeds, feedDims } = buildOpModel(c);
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dims: feedDims[k]!, data: v }]));
    let err: unknown;
    try {
      const model = new EngineModel(graph);
      try {
        model.run(inputs);
      } finally {
        model.dispose();
      }
    } catch (e) {
      err = e;
    }
    tt.ok(err instanceof Error, 'throws');
    tt.match((err as Error)?.message ?? '', re);
  });
}

t.test('activations', async (t) => checkOps(t, activationCases));
t.test('binary and variadic', async (t) => checkOps(t, binaryCases));
t.test('softmax', async (t) => checkOps(t, softmaxCases));
t.test('reductions', async (t) => checkOps(t, reduceCases));
t.test('shape ops', async (t) => checkOps(t, shapeCases));

t.test('float64 engine runs', async (t) => {
  const pick = (cases: OpCase[], name: string, op?: string) => {
    const c = cases.find((x) => x.name === name && (!op || x.op === op));
    if (!c) throw new Error(`no case ${name}`);
    return c;
  };
  await checkF64(t, [
    pick(activationCases, 'approximate tanh'),
    pick(activationCases, 'opset 13 min/max inputs'),
    pick(activationCases, 'positive inputs', 'Log'),
    pick(binaryCases, 'per-channel const bias', 'Add'),
    pick(binaryCases, '[2,1,4] * [1,3,1]', 'Mul'),
    pick(binaryCases, 'x ** 2 const'),
    pick(binaryCases, 'per-channel slope'),
    pick(binaryCases, '3 broadcast inputs', 'Mean'),
    pick(softmaxCases, 'opset 11 axis 1 (coerced 2-D)', 'Softmax'),
    pick(softmaxCases, 'opset 13 axis 1 (single axis)', 'LogSoftmax'),
    pick(reduceCases, 'global average pool style'),
    reduceCases[3]!,
    pick(shapeCases, '3 inputs, middle axis'),
    pick(shapeCases, 'negative step 2 and step 3'),
    pick(shapeCases, 'constant with value'),
    pick(shapeCases, 'opset 13 split input, 3 uneven'),
    pick(shapeCases, '0 copies, -1 infers'),
    pick(shapeCases, 'per-channel', 'Expand'),
  ]);
});

t.test('clear failures', async (t) => {
  await checkFails(t, { op: 'Add', inputs: [{ dims: [2, 3] }, { dims: [4] }] }, /cannot be broadcast/);
  await checkFails(t, { op: 'PRelu', inputs: [{ dims: [3, 1] }, { dims: [3, 4], const: true }] }, /cannot be broadcast to X/);
  await checkFails(t, { op: 'Pad', opset: 13, attrs: { mode: 'reflect' }, inputs: [{ dims: [2, 3] }, i64([0, 1, 0, 1])] }, /mode 'reflect' is not supported/);
  await checkFails(t, { op: 'Split', opset: 13, outputs: 3, attrs: { axis: 1 }, inputs: [{ dims: [2, 7] }] }, /cannot be split evenly/);
  await checkFails(t, { op: 'Reshape', inputs: [{ dims: [2, 3] }, i64([4, -1])] }, /cannot reshape/);
  await checkFails(t, { op: 'Concat', attrs: { axis: 1 }, inputs: [{ dims: [2, 3] }, { dims: [3, 3] }] }, /only axis 1 may differ/);
  await checkFails(t, { op: 'Gelu', opset: 20, attrs: { approximate: 'fast' }, inputs: [{ dims: [2, 3] }] }, /approximate must be/);
  await checkFails(t, { op: 'Softmax', opset: 13, attrs: { axis: 2 }, inputs: [{ dims: [2, 3] }] }, /out of range/);
  await checkFails(t, { op: 'Slice', inputs: [{ dims: [4] }, i64([0]), i64([2]), i64([0]), i64([0])] }, /steps must not be 0/);
});
