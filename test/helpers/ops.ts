/**
 * One-node op checks: builds an ONNX model for an op, runs onnxruntime-node (the oracle) and the
 * engine on the same seeded random inputs, and asserts equal dims and values within tolerance.
 */
import type { Test } from 'tap';
import * as ort from 'onnxruntime-node';
import { makeModel, type BuildAttr } from '../../src/onnx/build.js';
import { EngineModel } from '../../src/engine/model.js';
import type { AttrValue, Graph, TensorData } from '../../src/onnx/types.js';
import { diff, randomFloats } from './random.js';

export interface OpInput {
  dims: number[];
  type?: 'float32' | 'int64';
  data?: number[];
  /** becomes an initializer (weights, shape operands) */
  const?: boolean;
  /** optional input left empty */
  absent?: boolean;
  low?: number;
  high?: number;
}

export interface OpCase {
  name?: string;
  op: string;
  opset?: number;
  attrs?: Record<string, number | number[] | string | { type: 'float'; value: number } | { type: 'floats'; value: number[] }>;
  inputs: OpInput[];
  outputs?: number;
  rtol?: number;
  atol?: number;
}

function toAttrValue(v: BuildAttr): AttrValue {
  if (typeof v === 'number') return { type: 'int', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) return { type: 'ints', value: v };
  return v as AttrValue;
}

export function caseLabel(c: OpCase): string {
  if (c.name) return `${c.op}: ${c.name}`;
  const dims = c.inputs.map((i) => (i.absent ? '-' : `[${i.dims.join(',')}]`)).join(' ');
  const attrs = c.attrs ? ' ' + JSON.stringify(c.attrs) : '';
  return `${c.op} opset ${c.opset ?? 17} ${dims}${attrs}`;
}

interface Built {
  bytes: Uint8Array;
  graph: Graph;
  feeds: Record<string, Float32Array>;
  feedDims: Record<string, number[]>;
  outputs: string[];
}

export function buildOpModel(c: OpCase, seed = 1): Built {
  const opset = c.opset ?? 17;
  const inputNames: string[] = [];
  const inputs: { name: string; elemType: string; dims: number[] }[] = [];
  const initializers: { name: string; dims: number[]; type: string; data: number[] | bigint[] }[] = [];
  const graphInits = new Map<string, TensorData>();
  const feeds: Record<string, Float32Array> = {};
  const feedDims: Record<string, number[]> = {};
  const shapes = new Map<string, number[]>();
  c.inputs.forEach((inp, k) => {
    if (inp.absent) {
      inputNames.push('');
      return;
    }
    const name = `in${k}`;
    inputNames.push(name);
    const type = inp.type ?? 'float32';
    const n = inp.dims.reduce((a, b) => a * b, 1);
    const values = inp.data ?? Array.from(randomFloats(n, seed * 7919 + k, inp.low ?? -1, inp.high ?? 1));
    if (values.length !== n) throw new Error(`case ${caseLabel(c)}: input ${k} has ${values.length} values for dims [${inp.dims}]`);
    if (type === 'int64') {
      if (!inp.const) throw new Error(`case ${caseLabel(c)}: int64 inputs must be const`);
      const big = values.map((v) => BigInt(Math.trunc(v)));
      initializers.push({ name, dims: inp.dims, type, data: big });
      graphInits.set(name, { dims: inp.dims, type: 'int64', data: BigInt64Array.from(big) });
    } else if (inp.const) {
      initializers.push({ name, dims: inp.dims, type, data: values });
      graphInits.set(name, { dims: inp.dims, type: 'float32', data: Float32Array.from(values) });
    } else {
      inputs.push({ name, elemType: 'float32', dims: inp.dims });
      feeds[name] = Float32Array.from(values);
      feedDims[name] = inp.dims;
      shapes.set(name, inp.dims);
    }
  });
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, i) => `out${i}`);
  const attrs = c.attrs ?? {};
  const bytes = makeModel({
    opset,
    nodes: [{ op: c.op, name: 'node', inputs: inputNames, outputs, attrs }],
    inputs,
    outputs: outputs.map((name) => ({ name })),
    initializers,
  });
  const graph: Graph = {
    opset,
    nodes: [
      {
        op: c.op,
        name: 'node',
        domain: '',
        inputs: inputNames,
        outputs,
        attrs: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, toAttrValue(v)])),
      },
    ],
    initializers: graphInits,
    inputs: inputs.map((i) => ({ name: i.name, elemType: 'float32', dims: i.dims })),
    outputs: outputs.map((name) => ({ name, elemType: 'float32', dims: [] })),
    shapes,
  };
  return { bytes, graph, feeds, feedDims, outputs };
}

export async function runOrt(bytes: Uint8Array, feeds: Record<string, Float32Array>, feedDims: Record<string, number[]>) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', v, feedDims[k]);
  const res = await session.run(ortFeeds);
  await session.release();
  return res;
}

export async function checkOp(t: Test, c: OpCase, seed = 1): Promise<void> {
  const { bytes, graph, feeds, feedDims, outputs } = buildOpModel(c, seed);
  const expected = await runOrt(bytes, feeds, feedDims);
  const model = new EngineModel(graph);
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dims: feedDims[k]!, data: v }]));
  const got = model.run(inputs);
  model.dispose();
  const rtol = c.rtol ?? 1e-4;
  const atol = c.atol ?? 1e-5;
  for (const name of outputs) {
    const e = expected[name]!;
    const g = got[name]!;
    t.same(g.dims, Array.from(e.dims, Number), `${name} dims`);
    const ed = e.data as Float32Array;
    const gd = g.data as Float32Array;
    t.equal(gd.length, ed.length, `${name} element count`);
    let worst = 0;
    let at = -1;
    for (let i = 0; i < ed.length; i++) {
      const err = Math.abs(gd[i]! - ed[i]!) - (atol + rtol * Math.abs(ed[i]!));
      if (!(err <= worst)) {
        worst = err;
        at = i;
      }
    }
    const d = diff(gd, ed);
    t.ok(at < 0, `${name} within tolerance (max abs diff ${d.abs.toExponential(2)}, max rel ${d.rel.toExponential(2)})`, at >= 0 ? { index: at, got: gd[at], expected: ed[at] } : {});
  }
}

export async function checkOps(t: Test, cases: OpCase[]): Promise<void> {
  for (const c of cases) {
    await t.test(caseLabel(c), async (tt) => {
      await checkOp(tt, c);
    });
  }
}
