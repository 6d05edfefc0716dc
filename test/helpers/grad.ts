/**
 * Gradient checks in double precision: a one-node model, the loss L = sum_k <c_k, y_k> with seeded
 * random c_k, analytic gradients from the engine's backward against central finite differences of
 * the engine's own float64 forward; and per-sample squared weight gradients against a batch-1 loop.
 */
import type { Test } from 'tap';
import { EngineModel, type InputTensor } from '../../src/engine/model.js';
import type { Graph, TensorData } from '../../src/onnx/types.js';
import { caseLabel, type OpCase } from './ops.js';
import { rng } from './random.js';

export interface GradCase extends OpCase {
  /** inputs to check (default: every non-const float input) */
  wrt?: number[];
  /** elements checked per input (default 12; all when the input is smaller) */
  samples?: number;
  /** finite-difference step (default 1e-5) */
  h?: number;
}

interface Prepared {
  graph: Graph;
  feeds: Record<string, InputTensor>;
  runtime: number[];
  outputs: string[];
}

function toAttr(v: unknown) {
  if (typeof v === 'number') return { type: 'int' as const, value: v };
  if (typeof v === 'string') return { type: 'string' as const, value: v };
  if (Array.isArray(v)) return { type: 'ints' as const, value: v as number[] };
  return v as { type: 'float'; value: number };
}

export function prepareGradCase(c: OpCase, seed = 1, dimsOverride?: Record<number, number[]>, dataOverride?: Record<number, Float64Array>): Prepared {
  const opset = c.opset ?? 17;
  const r = rng(seed);
  const inits = new Map<string, TensorData>();
  const feeds: Record<string, InputTensor> = {};
  const shapes = new Map<string, number[]>();
  const inputs: Graph['inputs'] = [];
  const names: string[] = [];
  const runtime: number[] = [];
  c.inputs.forEach((inp, k) => {
    if (inp.absent) {
      names.push('');
      return;
    }
    const name = `in${k}`;
    names.push(name);
    const dims = dimsOverride?.[k] ?? inp.dims;
    const n = dims.reduce((a, b) => a * b, 1);
    const lo = inp.low ?? -1;
    const hi = inp.high ?? 1;
    const values = dataOverride?.[k] ?? (inp.data ? Float64Array.from(inp.data) : Float64Array.from({ length: n }, () => lo + (hi - lo) * r()));
    if (inp.type === 'int64') inits.set(name, { dims, type: 'int64', data: BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v)))) });
    else if (inp.const) inits.set(name, { dims, type: 'float64', data: values });
    else {
      feeds[name] = { dims, data: values };
      shapes.set(name, dims);
      inputs.push({ name, elemType: 'float32', dims });
      runtime.push(k);
    }
  });
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, i) => `out${i}`);
  const graph: Graph = {
    opset,
    nodes: [
      {
        op: c.op,
        name: 'node',
        domain: '',
        inputs: names,
        outputs,
        attrs: Object.fromEntries(Object.entries(c.attrs ?? {}).map(([k, v]) => [k, toAttr(v)])),
      },
    ],
    initializers: inits,
    inputs,
    outputs: outputs.map((name) => ({ name, elemType: 'float32', dims: [] })),
    shapes,
  };
  return { graph, feeds, runtime, outputs };
}

function dot(a: Float64Array, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export async function checkGrad(t: Test, c: GradCase, seed = 1): Promise<void> {
  const p = prepareGradCase(c, seed);
  const model = new EngineModel(p.graph);
  try {
    const fwd = model.run(p.feeds, { precision: 'float64' });
    const r = rng(seed * 31 + 7);
    const coef: Record<string, Float64Array> = {};
    for (const o of p.outputs) coef[o] = Float64Array.from({ length: fwd[o]!.data.length }, () => 2 * r() - 1);
    const lossOf = (feeds: Record<string, InputTensor>) => {
      const y = model.run(feeds, { precision: 'float64' });
      return p.outputs.reduce((s, o) => s + dot(coef[o]!, y[o]!.data as Float64Array), 0);
    };
    const wrt = (c.wrt ?? p.runtime).filter((k) => p.runtime.includes(k));
    const want = wrt.map((k) => `in${k}`);
    const res = model.gradients(p.feeds, {
      precision: 'float64',
      seeds: Object.fromEntries(p.outputs.map((o) => [o, { dims: fwd[o]!.dims, data: coef[o]! }])),
      want,
    });
    const h = c.h ?? 1e-5;
    const rtol = c.rtol ?? 1e-5;
    const atol = c.atol ?? 1e-7;
    for (const name of want) {
      const x = p.feeds[name]!.data as Float64Array;
      const g = res.grads[name]!.data as Float64Array;
      t.equal(g.length, x.length, `${name}: gradient has one entry per element`);
      const count = Math.min(x.length, c.samples ?? 12);
      const picks = count === x.length ? [...x.keys()] : Array.from({ length: count }, () => Math.floor(r() * x.length));
      let worst = 0;
      let bad = -1;
      for (const i of picks) {
        const orig = x[i]!;
        const step = h * Math.max(1, Math.abs(orig));
        x[i] = orig + step;
        const lp = lossOf(p.feeds);
        x[i] = orig - step;
        const lm = lossOf(p.feeds);
        x[i] = orig;
        const num = (lp - lm) / (2 * step);
        const err = Math.abs(num - g[i]!) - (atol + rtol * Math.max(Math.abs(num), Math.abs(g[i]!)));
        if (!(err <= worst)) {
          worst = err;
          bad = i;
        }
        if (bad === i) t.comment(`${name}[${i}]: analytic ${g[i]} vs numeric ${num}`);
      }
      t.ok(bad < 0, `${name}: d L / d ${name} matches central differences at ${picks.length} elements`);
    }
  } finally {
    model.dispose();
  }
}

export async function checkGrads(t: Test, cases: GradCase[]): Promise<void> {
  for (const c of cases) {
    await t.test(`grad ${caseLabel(c)}`, async (tt) => {
      await checkGrad(tt, c);
    });
  }
}

/**
 * sum_i (d l_i / d W)^2 from one batched backward equals the sum over a batch-1 loop
 * (relative 1e-6, double). Input `dataInput` is batched on axis 0; `weightInput` is the weight.
 */
export async function checkPerSampleSquares(t: Test, c: OpCase & { dataInput?: number; weightInput?: number }, seed = 3): Promise<void> {
  const dataInput = c.dataInput ?? 0;
  const weightInput = c.weightInput ?? 1;
  const batched = prepareGradCase(c, seed);
  const n = c.inputs[dataInput]!.dims[0]!;
  const model = new EngineModel(batched.graph);
  const fwd = model.run(batched.feeds, { precision: 'float64' });
  const r = rng(seed + 100);
  const outDims = fwd.out0!.dims;
  const coef = Float64Array.from({ length: fwd.out0!.data.length }, () => 2 * r() - 1);
  const layers = [{ node: 'node', dataInput, weightInput }];
  const res = model.gradients(batched.feeds, {
    precision: 'float64',
    seeds: { out0: { dims: outDims, data: coef } },
    layers,
    perSampleSquares: true,
  });
  model.dispose();
  const sq = res.sqWeightGrads.node!.data as Float64Array;
  const dataName = `in${dataInput}`;
  const x = batched.feeds[dataName]!.data as Float64Array;
  const perSampleIn = x.length / n;
  const perSampleOut = coef.length / outDims[0]!;
  const loop = new Float64Array(sq.length);
  const oneDims = { [dataInput]: [1, ...c.inputs[dataInput]!.dims.slice(1)] };
  for (let i = 0; i < n; i++) {
    const overrides: Record<number, Float64Array> = { [dataInput]: x.slice(i * perSampleIn, (i + 1) * perSampleIn) };
    for (const k of batched.runtime) if (k !== dataInput) overrides[k] = batched.feeds[`in${k}`]!.data as Float64Array;
    for (const [name, tdata] of batched.graph.initializers) {
      const k = Number(name.slice(2));
      if (tdata.type === 'float64') overrides[k] = tdata.data as Float64Array;
    }
    const one = prepareGradCase(c, seed, oneDims, overrides);
    const m1 = new EngineModel(one.graph);
    const y1 = m1.run(one.feeds, { precision: 'float64' });
    const g1 = m1.gradients(one.feeds, {
      precision: 'float64',
      seeds: { out0: { dims: y1.out0!.dims, data: coef.slice(i * perSampleOut, (i + 1) * perSampleOut) } },
      want: [`in${weightInput}`],
    });
    m1.dispose();
    // The oracle: the plain weight gradient of sample i alone, squared.
    const w = g1.grads[`in${weightInput}`]!.data as Float64Array;
    for (let j = 0; j < loop.length; j++) loop[j]! += w[j]! * w[j]!;
  }
  let worst = 0;
  let scale = 0;
  for (let j = 0; j < loop.length; j++) {
    worst = Math.max(worst, Math.abs(loop[j]! - sq[j]!));
    scale = Math.max(scale, Math.abs(loop[j]!));
  }
  t.ok(scale > 0, 'per-sample squares are not all zero');
  t.ok(worst <= 1e-6 * scale, `sum_i (dl_i/dW)^2 equals the batch-1 loop (max diff ${worst.toExponential(2)}, scale ${scale.toExponential(2)})`);
}
