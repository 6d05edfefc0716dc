/**
 * BatchNorm folding: an inference BatchNormalization that directly follows a Conv or ConvTranspose
 * is merged into that conv's weight and bias,
 *
 *   s  = scale / sqrt(var + epsilon)            (per output channel)
 *   W' = W * s                                  (Conv: axis 0 of W; ConvTranspose: axis 1, per group)
 *   b' = (b - mean) * s + B                     (b = 0 when the conv had no bias)
 *
 * Names are kept (DESIGN.md "Numerical contract"): the conv keeps its node name, the folded weight
 * keeps the original initializer name, the conv's output takes over the BN's output name, and the
 * BN node disappears. Since W' = W * s elementwise, a gradient with respect to the original weight
 * is the gradient with respect to the folded one times s (`weightChannelScale`), so Fisher traces of
 * the original weight are those of the folded weight weighted by s^2.
 */
import { attrFloat, attrInt, product } from './node-utils.js';
import type { Graph, GraphNode, TensorData } from './types.js';

/** One Conv(+Transpose)/BatchNormalization pair merged by foldBatchNorm. */
export interface FoldedPair {
  /** node name of the conv (kept in the folded graph) */
  conv: string;
  /** node name of the BatchNormalization (gone from the folded graph) */
  bn: string;
  op: 'Conv' | 'ConvTranspose';
  /** initializer name of the weight (the same before and after folding) */
  weight: string;
  /** initializer name of the folded bias: the conv's own bias, or a new one */
  bias: string;
  /** true when the conv had no bias (or shared it) and `bias` is a new initializer */
  biasAdded: boolean;
  /** the conv's `group` attribute */
  group: number;
  /** s = scale / sqrt(var + epsilon), one value per output channel */
  scale: Float64Array;
}

/** A BatchNormalization left in place, and why. */
export interface SkippedBatchNorm {
  bn: string;
  reason: string;
}

export interface FoldBatchNormResult {
  graph: Graph;
  folded: FoldedPair[];
  skipped: SkippedBatchNorm[];
}

/** s = scale / sqrt(var + epsilon) per channel, in double precision. */
export function bnChannelScale(scale: ArrayLike<number>, variance: ArrayLike<number>, epsilon: number): Float64Array {
  const s = new Float64Array(scale.length);
  for (let c = 0; c < s.length; c++) s[c] = scale[c]! / Math.sqrt(variance[c]! + epsilon);
  return s;
}

/** Number of output channels of a Conv / ConvTranspose with this weight. */
export function outputChannels(op: 'Conv' | 'ConvTranspose', weightDims: readonly number[], group: number): number {
  return op === 'Conv' ? weightDims[0]! : weightDims[1]! * group;
}

/**
 * The per-element factor f with W' = W * f for a per-output-channel scale s: Conv weights
 * [M, C/group, k...] scale along axis 0; ConvTranspose weights [C, M/group, k...] along axis 1,
 * where input channel c belongs to group floor(c / (C/group)) and its column j is output channel
 * group * (M/group) + j. Chain rule: dL/dW = dL/dW' * f.
 */
export function weightChannelScale(
  op: 'Conv' | 'ConvTranspose',
  weightDims: readonly number[],
  group: number,
  channelScale: ArrayLike<number>,
): Float64Array {
  const n = product(weightDims);
  const f = new Float64Array(n);
  if (op === 'Conv') {
    const per = product(weightDims.slice(1));
    for (let o = 0; o < weightDims[0]!; o++) f.fill(channelScale[o]!, o * per, (o + 1) * per);
    return f;
  }
  const cin = weightDims[0]!;
  const mg = weightDims[1]!;
  const kk = product(weightDims.slice(2));
  const cpg = cin / group;
  for (let c = 0; c < cin; c++) {
    const base = Math.floor(c / cpg) * mg;
    for (let j = 0; j < mg; j++) f.fill(channelScale[base + j]!, (c * mg + j) * kk, (c * mg + j + 1) * kk);
  }
  return f;
}

function isFloat(t: TensorData | undefined): t is TensorData & { data: Float32Array | Float64Array } {
  return t !== undefined && (t.type === 'float32' || t.type === 'float64');
}

/** A new float tensor of `type` in a SharedArrayBuffer (like normalize's initializers). */
function sharedFloat(type: 'float32' | 'float64', dims: number[], values: ArrayLike<number>): TensorData {
  const bytes = type === 'float64' ? 8 : 4;
  const sab = new SharedArrayBuffer(values.length * bytes);
  const data = type === 'float64' ? new Float64Array(sab) : new Float32Array(sab);
  data.set(values);
  return { dims: [...dims], type, data };
}

const isDefaultDomain = (n: GraphNode): boolean => n.domain === '' || n.domain === 'ai.onnx';

function copyNode(n: GraphNode): GraphNode {
  return { op: n.op, name: n.name, domain: n.domain, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } };
}

/**
 * Folds every inference BatchNormalization into the Conv/ConvTranspose that produces its input,
 * when that conv output feeds only the BN (and is no graph output), the conv's weight is a constant
 * read by no other node, and its bias (if any) is a constant. Returns a new Graph (the input graph
 * and its arrays are left untouched), the folded pairs, and the BNs left in place with the reason.
 */
export function foldBatchNorm(graph: Graph): FoldBatchNormResult {
  const nodes = graph.nodes.map(copyNode);
  const inits = new Map(graph.initializers);
  const shapes = new Map(graph.shapes);
  const refs = new Map<string, number>();
  const ref = (t: string, d: number): void => {
    if (t) refs.set(t, (refs.get(t) ?? 0) + d);
  };
  for (const n of nodes) for (const t of n.inputs) ref(t, 1);
  for (const o of graph.outputs) ref(o.name, 1);
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const taken = new Set<string>([...inits.keys(), ...refs.keys(), ...producer.keys(), ...graph.inputs.map((i) => i.name)]);
  const uniqueName = (base: string): string => {
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };

  const removed = new Set<GraphNode>();
  const released = new Set<string>();
  const folded: FoldedPair[] = [];
  const skipped: SkippedBatchNorm[] = [];

  for (const bn of nodes) {
    if (bn.op !== 'BatchNormalization' || !isDefaultDomain(bn)) continue;
    const skip = (reason: string): void => void skipped.push({ bn: bn.name, reason });
    const x = bn.inputs[0] ?? '';
    const conv = producer.get(x);
    if (!conv || (conv.op !== 'Conv' && conv.op !== 'ConvTranspose') || !isDefaultDomain(conv)) {
      skip(`its input '${x}' is not produced by a Conv or ConvTranspose`);
      continue;
    }
    if (refs.get(x) !== 1) {
      skip(`the output '${x}' of ${conv.op} '${conv.name}' is also read elsewhere`);
      continue;
    }
    if (attrInt(bn, 'training_mode', 0) !== 0) {
      skip('it runs in training mode');
      continue;
    }
    if (bn.outputs.slice(1).some((o) => o && (refs.get(o) ?? 0) > 0)) {
      skip('its running/saved statistics outputs are used');
      continue;
    }
    const op = conv.op;
    const wName = conv.inputs[1] ?? '';
    const W = inits.get(wName);
    if (!isFloat(W)) {
      skip(`the weight of ${op} '${conv.name}' is not a float constant`);
      continue;
    }
    if (refs.get(wName) !== 1) {
      skip(`the weight '${wName}' of ${op} '${conv.name}' is shared with other nodes or outputs`);
      continue;
    }
    const bName = conv.inputs[2] ?? '';
    const oldBias = bName ? inits.get(bName) : undefined;
    if (bName && !isFloat(oldBias)) {
      skip(`the bias '${bName}' of ${op} '${conv.name}' is not a float constant`);
      continue;
    }
    const group = attrInt(conv, 'group', 1);
    if (W.dims.length < 3 || group < 1 || (op === 'ConvTranspose' && W.dims[0]! % group !== 0)) {
      skip(`the weight '${wName}' of ${op} '${conv.name}' has dims [${W.dims.join(', ')}], which do not fit group ${group}`);
      continue;
    }
    const m = outputChannels(op, W.dims, group);
    const params = bn.inputs.slice(1, 5).map((t) => inits.get(t));
    if (bn.inputs.length < 5 || !params.every(isFloat) || params.some((p) => p!.data.length !== m)) {
      skip(`its scale, B, mean and var are not constants with one value per output channel (${m}) of ${op} '${conv.name}'`);
      continue;
    }
    if (oldBias && oldBias.data.length !== m) {
      skip(`the bias '${bName}' of ${op} '${conv.name}' does not have ${m} elements`);
      continue;
    }
    const [scale, beta, mean, variance] = params.map((p) => p!.data as Float32Array | Float64Array);
    const s = bnChannelScale(scale!, variance!, attrFloat(bn, 'epsilon', 1e-5));

    const f = weightChannelScale(op, W.dims, group, s);
    const w2 = new Float64Array(f.length);
    for (let i = 0; i < f.length; i++) w2[i] = W.data[i]! * f[i]!;
    inits.set(wName, sharedFloat(W.type as 'float32' | 'float64', W.dims, w2));

    const b2 = new Float64Array(m);
    for (let o = 0; o < m; o++) b2[o] = ((oldBias ? (oldBias.data[o] as number) : 0) - mean![o]!) * s[o]! + beta![o]!;
    const ownBias = bName !== '' && refs.get(bName) === 1;
    const biasName = ownBias ? bName : uniqueName(`${wName}__bn_bias`);
    inits.set(biasName, sharedFloat(W.type as 'float32' | 'float64', [m], b2));
    shapes.set(biasName, [m]);
    if (!ownBias) {
      if (bName) {
        ref(bName, -1);
        released.add(bName);
      }
      ref(biasName, 1);
      conv.inputs[2] = biasName;
    }

    // the conv now produces the BN's output; the BN and its parameters go
    const y = bn.outputs[0]!;
    conv.outputs[0] = y;
    producer.set(y, conv);
    producer.delete(x);
    shapes.delete(x);
    for (const t of bn.inputs) {
      ref(t, -1);
      released.add(t);
    }
    released.delete(x);
    removed.add(bn);
    folded.push({ conv: conv.name, bn: bn.name, op, weight: wName, bias: biasName, biasAdded: !ownBias, group, scale: s });
  }

  for (const t of released) {
    if ((refs.get(t) ?? 0) <= 0 && inits.has(t)) {
      inits.delete(t);
      shapes.delete(t);
    }
  }
  return {
    graph: {
      opset: graph.opset,
      nodes: nodes.filter((n) => !removed.has(n)),
      initializers: inits,
      inputs: graph.inputs.map((i) => ({ ...i, dims: [...i.dims] })),
      outputs: graph.outputs.map((o) => ({ ...o, dims: [...o.dims] })),
      shapes,
    },
    folded,
    skipped,
  };
}
