/**
 * End-to-end gradients of real models (PP-OCR cls, openWakeWord) against central finite
 * differences in double precision, on randomly chosen weights and activations.
 */
import t from 'tap';
import { prepareModel } from '../src/engine/load.js';
import { EngineModel, type Likelihood } from '../src/engine/model.js';
import type { Graph, TensorData } from '../src/onnx/types.js';
import { MODELS } from './helpers/models.js';
import { randomFloats, rng, syntheticPage } from './helpers/random.js';

/** Float64 copies of every float weight (borrowed by the engine, so in-place edits take effect). */
function toFloat64(graph: Graph): Graph {
  const inits = new Map<string, TensorData>();
  for (const [k, v] of graph.initializers)
    inits.set(k, v.type === 'float32' ? { dims: v.dims, type: 'float64', data: Float64Array.from(v.data as Float32Array) } : v);
  return { ...graph, initializers: inits };
}

/** Routes every consumer of `tensor` through tensor + delta, with `delta` a new (zero) input. */
function injectAt(graph: Graph, tensor: string): Graph {
  const dims = graph.shapes.get(tensor)!;
  const shifted = `${tensor}__shifted`;
  const nodes = graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map((i) => (i === tensor ? shifted : i)) }));
  const at = nodes.findIndex((n) => n.outputs.includes(tensor));
  nodes.splice(at + 1, 0, { op: 'Add', name: `inject_${tensor}`, domain: '', inputs: [tensor, 'delta'], outputs: [shifted], attrs: {} });
  const shapes = new Map(graph.shapes);
  shapes.set('delta', dims);
  shapes.set(shifted, dims);
  return { ...graph, nodes, inputs: [...graph.inputs, { name: 'delta', elemType: 'float32', dims }], shapes };
}

interface Case {
  name: string;
  path: string;
  shape: number[];
  likelihood: Likelihood;
  page?: boolean;
}

const cases: Case[] = [
  { name: 'PP-OCR mobile v2 cls', path: MODELS.ocrCls, shape: [2, 3, 48, 96], likelihood: 'categorical', page: true },
  { name: 'openwakeword hello_deepa', path: MODELS.owwHello, shape: [1, 25, 96], likelihood: 'bernoulli' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const prepared = prepareModel(c.path, c.page ? { inputShapes: { x: c.shape } } : { batch: c.shape[0] });
    const graph = toFloat64(prepared.graph);
    const r = rng(42);
    const input = graph.inputs[0]!.name;
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xdata = c.page ? Float64Array.from(syntheticPage(c.shape[0]!, c.shape[2]!, c.shape[3]!, 3)) : Float64Array.from(randomFloats(n, 3, -2, 2));
    // the loss head reads the input of the final Softmax/Sigmoid
    const last = graph.nodes.find((nd) => nd.outputs.includes(graph.outputs[0]!.name))!;
    t.ok(last.op === 'Softmax' || last.op === 'Sigmoid', `the model ends in ${last.op}`);
    const logits = last.inputs[0]!;
    const zdims = graph.shapes.get(logits)!;
    const target =
      c.likelihood === 'categorical'
        ? { dims: zdims.slice(0, -1), data: BigInt64Array.from({ length: zdims[0]! }, (_, i) => BigInt(i % zdims[1]!)) }
        : { dims: zdims, data: Float64Array.from({ length: zdims.reduce((a, b) => a * b, 1) }, () => (r() < 0.5 ? 0 : 1)) };
    const lossOf = (m: EngineModel, feeds: Record<string, { dims: number[]; data: Float64Array }>) =>
      m.gradients(feeds, { precision: 'float64', loss: { tensor: logits, likelihood: c.likelihood, target } }).loss.reduce((a, b) => a + b, 0);

    // Weights: three random weight tensors, three elements each.
    const weights = prepared.layers.map((l) => l.weight);
    const chosen = [weights[0]!, weights[Math.floor(weights.length / 2)]!, weights[weights.length - 1]!];
    const model = new EngineModel(graph);
    const feeds = { [input]: { dims: c.shape, data: xdata } };
    const res = model.gradients(feeds, { precision: 'float64', loss: { tensor: logits, likelihood: c.likelihood, target }, want: chosen });
    for (const w of chosen) {
      const data = graph.initializers.get(w)!.data as Float64Array;
      const g = res.grads[w]!.data as Float64Array;
      let ok = true;
      const lines: string[] = [];
      let top = 0;
      for (let j = 1; j < g.length; j++) if (Math.abs(g[j]!) > Math.abs(g[top]!)) top = j;
      t.ok(g[top] !== 0, `${w} has a non-zero gradient`);
      for (let k = 0; k < 3; k++) {
        const i = k === 0 ? top : Math.floor(r() * data.length);
        const orig = data[i]!;
        const h = 1e-6 * Math.max(1, Math.abs(orig));
        data[i] = orig + h;
        const lp = lossOf(model, feeds);
        data[i] = orig - h;
        const lm = lossOf(model, feeds);
        data[i] = orig;
        const num = (lp - lm) / (2 * h);
        lines.push(`${i}: ${g[i]} vs ${num}`);
        if (Math.abs(num - g[i]!) > 1e-6 + 1e-4 * Math.max(Math.abs(num), Math.abs(g[i]!))) ok = false;
      }
      t.ok(ok, `dL/d ${w} matches finite differences (${lines.join('; ')})`);
    }
    model.dispose();

    // Activations: the inputs of three quantizable layers.
    const acts = [prepared.layers[1]!, prepared.layers[Math.floor(prepared.layers.length / 2)]!, prepared.layers[prepared.layers.length - 1]!].map((l) => l.activation);
    for (const a of [...new Set(acts)]) {
      const injected = new EngineModel(injectAt(graph, a));
      const dims = graph.shapes.get(a)!;
      const delta = new Float64Array(dims.reduce((x, y) => x * y, 1));
      const f = { [input]: { dims: c.shape, data: xdata }, delta: { dims, data: delta } };
      const ga = injected.gradients(f, { precision: 'float64', loss: { tensor: logits, likelihood: c.likelihood, target }, want: ['delta'] }).grads.delta!.data as Float64Array;
      const plain = new EngineModel(graph);
      const gp = plain.gradients(feeds, { precision: 'float64', loss: { tensor: logits, likelihood: c.likelihood, target }, want: [a] }).grads[a]!.data as Float64Array;
      plain.dispose();
      let ok = true;
      const lines: string[] = [];
      let top = 0;
      for (let j = 1; j < gp.length; j++) if (Math.abs(gp[j]!) > Math.abs(gp[top]!)) top = j;
      t.ok(gp[top] !== 0, `${a} has a non-zero gradient`);
      for (let k = 0; k < 3; k++) {
        const i = k === 0 ? top : Math.floor(r() * delta.length);
        const h = 1e-6;
        delta[i] = h;
        const lp = lossOf(injected, f);
        delta[i] = -h;
        const lm = lossOf(injected, f);
        delta[i] = 0;
        const num = (lp - lm) / (2 * h);
        lines.push(`${i}: ${gp[i]} vs ${num}`);
        if (Math.abs(num - gp[i]!) > 1e-6 + 1e-4 * Math.max(Math.abs(num), Math.abs(gp[i]!))) ok = false;
        if (Math.abs(ga[i]! - gp[i]!) > 1e-9 * Math.max(1, Math.abs(gp[i]!))) ok = false;
      }
      t.ok(ok, `dL/d ${a} matches finite differences (${lines.join('; ')})`);
      injected.dispose();
    }
  });
}
