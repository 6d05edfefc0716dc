/**
 * EngineModel: a normalized graph prepared for one concrete input shape, running on the native
 * engine. Validates what the user hands in (JS validates, C++ trusts a plain description).
 */
import { InvalidInputError, AbortError } from '../errors.js';
import type { AttrValue, Graph, TypedData } from '../onnx/types.js';
import {
  loadAddon,
  type NativeAttr,
  type NativeGradientRequest,
  type NativeGradientResult,
  type NativeGraphDesc,
  type NativeModel,
  type NativeTensor,
} from './addon.js';
import { nativeError } from './errors.js';

export type InputTensor = { dims: number[]; data: Float32Array | Float64Array };
export type Inputs = Record<string, InputTensor>;

export interface RunOptions {
  /** float64 runs the engine in double precision (gradient checks). */
  precision?: 'float32' | 'float64';
  signal?: AbortSignal;
}

function toNativeAttrs(attrs: Record<string, AttrValue>): NativeAttr[] {
  return Object.entries(attrs).map(([name, a]) => ({ name, ...a }) as NativeAttr);
}

/** Converts the normalized graph into the addon's description (value ids, borrowed constants). */
export function graphToDesc(graph: Graph): NativeGraphDesc {
  return graphToDescWithIds(graph).desc;
}

export function graphToDescWithIds(graph: Graph): { desc: NativeGraphDesc; ids: Map<string, number> } {
  const ids = new Map<string, number>();
  const values: NativeGraphDesc['values'] = [];
  const idOf = (name: string): number => {
    let id = ids.get(name);
    if (id === undefined) {
      id = values.length;
      ids.set(name, id);
      const c = graph.initializers.get(name);
      values.push(c ? { name, dims: c.dims, type: c.type, data: c.data } : { name, dims: graph.shapes.get(name) });
    }
    return id;
  };
  const inputs = graph.inputs.map((i) => idOf(i.name));
  const nodes = graph.nodes.map((n) => ({
    op: n.op,
    name: n.name,
    inputs: n.inputs.map((t) => (t === '' ? -1 : idOf(t))),
    outputs: n.outputs.map((t) => (t === '' ? -1 : idOf(t))),
    attrs: toNativeAttrs(n.attrs),
  }));
  const outputs = graph.outputs.map((o) => idOf(o.name));
  return { desc: { opset: graph.opset, values, nodes, inputs, outputs }, ids };
}

export type Likelihood = 'categorical' | 'bernoulli' | 'gaussian';

export interface GradientRequest {
  precision?: 'float32' | 'float64';
  /** dL/d tensor for named tensors (a linear functional of the outputs, e.g. for gradient checks) */
  seeds?: Record<string, InputTensor>;
  /** a loss head on tensor `tensor`; without `target` the targets are sampled from the model */
  loss?: { tensor: string; likelihood: Likelihood; target?: { dims: number[]; data: Float32Array | Float64Array | BigInt64Array }; sampleSeed?: number };
  /** tensors (weights, activations, inputs) whose total gradient to return */
  want?: string[];
  /** quantizable layers by node name: own-copy input gradient and per-sample squared weight gradient */
  layers?: { node: string; dataInput: number; weightInput: number }[];
  perSampleSquares?: boolean;
  /**
   * per-sample sums of squares of each layer's input gradient (layerInputSquares) instead of the
   * gradients themselves (layerInputGrads stays empty): the activation Fisher without moving
   * activation-sized arrays into JavaScript
   */
  layerInputSquares?: boolean;
  /** tensors whose [min, max] after forward is returned (activation ranges) */
  ranges?: string[];
  /**
   * With perSampleSquares: one Float64Array per entry of `layers` (the size of its weight). The
   * engine adds sqWeightScale (default 1) times the per-sample squared weight gradients into it in
   * place, so nothing weight-sized crosses per call; sqWeightGrads stays empty and sqWeightSums
   * holds, per layer, the sum of what was added. The arrays must not be touched until the call
   * settles.
   */
  sqWeightAccumulators?: Float64Array[];
  sqWeightScale?: number;
  signal?: AbortSignal;
}

export interface GradientResult {
  outputs: Record<string, NativeTensor>;
  loss: Float64Array;
  targets?: NativeTensor;
  grads: Record<string, NativeTensor>;
  layerInputGrads: Record<string, NativeTensor>;
  /** with layerInputSquares: per layer, per sample sum_k (d l_i / d a_ik)^2 */
  layerInputSquares: Record<string, Float64Array>;
  sqWeightGrads: Record<string, NativeTensor>;
  /** with sqWeightAccumulators: per layer, the sum of what was added to its accumulator */
  sqWeightSums: Record<string, number>;
  ranges: Record<string, [number, number]>;
}

export class EngineModel {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly native: NativeModel;
  private readonly ids: Map<string, number>;
  private readonly nodeIndex: Map<string, number>;

  constructor(graph: Graph) {
    this.graph = graph;
    this.inputNames = graph.inputs.map((i) => i.name);
    this.outputNames = graph.outputs.map((o) => o.name);
    this.nodeIndex = new Map(graph.nodes.map((n, i) => [n.name, i]));
    const addon = loadAddon();
    const { desc, ids } = graphToDescWithIds(graph);
    this.ids = ids;
    try {
      this.native = new addon.Model(desc);
    } catch (e) {
      throw nativeError(e, 'Preparing the model for the engine failed', EngineModel);
    }
  }

  /** The dims the model was prepared for, by input name. */
  inputDims(name: string): number[] {
    const d = this.graph.shapes.get(name);
    if (!d) throw new InvalidInputError(`The model has no input named '${name}'. Inputs: ${this.inputNames.join(', ')}`);
    return d;
  }

  private toNative(inputs: Inputs): NativeTensor[] {
    if (inputs === null || typeof inputs !== 'object')
      throw new InvalidInputError(`Expected an object mapping input names to {dims, data} but received ${typeof inputs}`);
    const unknown = Object.keys(inputs).filter((k) => !this.inputNames.includes(k));
    if (unknown.length)
      throw new InvalidInputError(
        `Unknown input(s) ${unknown.map((u) => `'${u}'`).join(', ')}; the model's inputs are ${this.inputNames.map((n) => `'${n}'`).join(', ')}`,
      );
    return this.inputNames.map((name) => {
      const t = inputs[name];
      if (!t) throw new InvalidInputError(`Missing input '${name}' (expected dims [${this.inputDims(name).join(', ')}])`);
      const want = this.inputDims(name);
      if (!Array.isArray(t.dims) || t.dims.length !== want.length || t.dims.some((d, i) => d !== want[i]))
        throw new InvalidInputError(
          `Expected dims [${want.join(', ')}] for input '${name}' but received [${Array.isArray(t.dims) ? t.dims.join(', ') : String(t.dims)}]`,
        );
      let type: 'float32' | 'float64';
      if (t.data instanceof Float32Array) type = 'float32';
      else if (t.data instanceof Float64Array) type = 'float64';
      else
        throw new InvalidInputError(
          `Expected a Float32Array or Float64Array for input '${name}' but received ${describe(t.data)}`,
        );
      const n = want.reduce((a, b) => a * b, 1);
      if (t.data.length !== n)
        throw new InvalidInputError(`Input '${name}' has ${t.data.length} elements but dims [${want.join(', ')}] need ${n}`);
      return { dims: want, type, data: t.data as TypedData };
    });
  }

  private toOutputs(outs: NativeTensor[]): Record<string, NativeTensor> {
    const r: Record<string, NativeTensor> = {};
    this.outputNames.forEach((n, i) => (r[n] = outs[i]!));
    return r;
  }

  /** Runs forward on this thread. */
  run(inputs: Inputs, options: RunOptions = {}): Record<string, NativeTensor> {
    const native = this.toNative(inputs);
    try {
      return this.toOutputs(this.native.run(native, { precision: options.precision ?? 'float32' }));
    } catch (e) {
      throw nativeError(e, 'Running the model failed', this.run);
    }
  }

  /** Runs forward off the event loop; `signal` aborts at the next node boundary. */
  async runAsync(inputs: Inputs, options: RunOptions = {}): Promise<Record<string, NativeTensor>> {
    const native = this.toNative(inputs);
    const { signal } = options;
    if (signal?.aborted) throw new AbortError('The run was aborted before it started');
    const onAbort = () => this.native.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return this.toOutputs(await this.native.runAsync(native, { precision: options.precision ?? 'float32' }));
    } catch (e) {
      throw nativeError(e, 'Running the model failed');
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private tensorId(name: string, what: string): number {
    const id = this.ids.get(name);
    if (id === undefined) throw new InvalidInputError(`${what} names tensor '${name}', which the model does not have`);
    return id;
  }

  private toNativeRequest(req: GradientRequest): NativeGradientRequest {
    const typed = (t: { dims: number[]; data: Float32Array | Float64Array | BigInt64Array }): NativeTensor => ({
      dims: t.dims,
      type: t.data instanceof Float64Array ? 'float64' : t.data instanceof BigInt64Array ? 'int64' : 'float32',
      data: t.data,
    });
    const out: NativeGradientRequest = {
      precision: req.precision ?? 'float32',
      perSampleSquares: req.perSampleSquares ?? false,
      layerInputSquares: req.layerInputSquares ?? false,
    };
    if (req.seeds) out.seeds = Object.entries(req.seeds).map(([name, t]) => ({ value: this.tensorId(name, 'A seed'), tensor: typed(t) }));
    if (req.loss) {
      out.loss = { value: this.tensorId(req.loss.tensor, 'The loss'), likelihood: req.loss.likelihood, sampleSeed: req.loss.sampleSeed ?? 0 };
      if (req.loss.target) out.loss.target = typed(req.loss.target);
    }
    out.want = (req.want ?? []).map((n) => this.tensorId(n, 'A wanted gradient'));
    out.ranges = (req.ranges ?? []).map((n) => this.tensorId(n, 'A range'));
    if (req.sqWeightAccumulators) {
      const n = req.layers?.length ?? 0;
      if (!req.perSampleSquares) throw new InvalidInputError('Expected perSampleSquares: true with sqWeightAccumulators');
      if (req.sqWeightAccumulators.length !== n || !req.sqWeightAccumulators.every((a) => a instanceof Float64Array))
        throw new InvalidInputError(`Expected one Float64Array per layer (${n}) for option sqWeightAccumulators but received ${req.sqWeightAccumulators.length} arrays`);
      out.sqWeightAccumulators = req.sqWeightAccumulators;
      out.sqWeightScale = req.sqWeightScale ?? 1;
    }
    out.layers = (req.layers ?? []).map((l) => {
      const node = this.nodeIndex.get(l.node);
      if (node === undefined) throw new InvalidInputError(`A layer names node '${l.node}', which the model does not have`);
      return { node, dataInput: l.dataInput, weightInput: l.weightInput };
    });
    return out;
  }

  private toGradientResult(req: GradientRequest, r: NativeGradientResult): GradientResult {
    const layers = req.layers ?? [];
    return {
      outputs: this.toOutputs(r.outputs),
      loss: r.loss,
      targets: r.targets,
      grads: Object.fromEntries((req.want ?? []).map((n, i) => [n, r.grads[i]!])),
      layerInputGrads: req.layerInputSquares ? {} : Object.fromEntries(layers.map((l, i) => [l.node, r.layerInputGrads[i]!])),
      layerInputSquares: req.layerInputSquares ? Object.fromEntries(layers.map((l, i) => [l.node, r.layerInputSquares![i]!])) : {},
      sqWeightGrads: req.perSampleSquares && !req.sqWeightAccumulators ? Object.fromEntries(layers.map((l, i) => [l.node, r.sqWeightGrads[i]!])) : {},
      sqWeightSums: r.sqWeightSums ? Object.fromEntries(layers.map((l, i) => [l.node, r.sqWeightSums![i]!])) : {},
      ranges: Object.fromEntries((req.ranges ?? []).map((n, i) => [n, [r.ranges[2 * i]!, r.ranges[2 * i + 1]!] as [number, number]])),
    };
  }

  /** Forward, loss head (or seeds), backward, on this thread. */
  gradients(inputs: Inputs, req: GradientRequest): GradientResult {
    const native = this.toNative(inputs);
    const nreq = this.toNativeRequest(req);
    try {
      return this.toGradientResult(req, this.native.gradients(native, nreq));
    } catch (e) {
      throw nativeError(e, 'Computing gradients failed', this.gradients);
    }
  }

  /** The same off the event loop; `signal` aborts at the next node boundary. */
  async gradientsAsync(inputs: Inputs, req: GradientRequest): Promise<GradientResult> {
    const native = this.toNative(inputs);
    const nreq = this.toNativeRequest(req);
    const { signal } = req;
    if (signal?.aborted) throw new AbortError('The run was aborted before it started');
    const onAbort = () => this.native.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return this.toGradientResult(req, await this.native.gradientsAsync(native, nreq));
    } catch (e) {
      throw nativeError(e, 'Computing gradients failed');
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  dispose(): void {
    this.native.dispose();
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'an object';
}
