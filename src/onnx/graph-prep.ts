/**
 * Structural clean-up before shape inference: proto nodes -> WorkNodes, Constant nodes ->
 * constants, unique node names, Identity/Dropout removal, topological sort, dead-node removal.
 */
import { InvalidModelError } from '../errors.js';
import { AttrType, elemTypeName, tensorProtoToData, toNum } from './proto.js';
import type { AttributeProto, NodeProto, ValueInfoProto } from './proto.js';
import { describe } from './node-utils.js';
import type { WorkNode } from './node-utils.js';
import type { TensorData, ValueInfo } from './types.js';

export interface TensorSource {
  baseDir?: string;
  modelName: string;
}

const utf8 = new TextDecoder();

export const normDomain = (d: string | undefined): string => (d === 'ai.onnx' || !d ? '' : d);

function convertAttr(a: AttributeProto, node: WorkNode, src: TensorSource): void {
  switch (a.type) {
    case AttrType.FLOAT: node.attrs[a.name] = { type: 'float', value: a.f }; break;
    case AttrType.INT: node.attrs[a.name] = { type: 'int', value: toNum(a.i) }; break;
    case AttrType.STRING: node.attrs[a.name] = { type: 'string', value: utf8.decode(a.s) }; break;
    case AttrType.FLOATS: node.attrs[a.name] = { type: 'floats', value: [...a.floats] }; break;
    case AttrType.INTS: node.attrs[a.name] = { type: 'ints', value: a.ints.map(toNum) }; break;
    case AttrType.TENSOR:
      if (a.t) node.tensors[a.name] = tensorProtoToData(a.t, src.baseDir, src.modelName);
      break;
    default:
      // graphs, strings lists, sparse tensors, type protos: only ops the engine never runs use them
      break;
  }
}

export function toWorkNode(n: NodeProto, index: number, src: TensorSource): WorkNode {
  const node: WorkNode = {
    op: n.opType,
    name: n.name ?? '',
    domain: normDomain(n.domain),
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs: {},
    tensors: {},
    index,
  };
  for (const a of n.attribute ?? []) convertAttr(a, node, src);
  return node;
}

/** The tensor of a Constant node (value, value_float(s), value_int(s)). */
export function constantValue(n: NodeProto, src: TensorSource): TensorData {
  const a = n.attribute?.[0];
  const where = `Constant node '${n.name || n.output[0]}'`;
  if (!a || (n.attribute?.length ?? 0) !== 1) {
    throw new InvalidModelError(`${where} must have exactly one value attribute. Re-export the model.`);
  }
  switch (a.name) {
    case 'value':
      if (!a.t) throw new InvalidModelError(`${where} has an empty 'value' tensor.`);
      return tensorProtoToData(a.t, src.baseDir, src.modelName);
    case 'value_float': return { dims: [], type: 'float32', data: new Float32Array([a.f]) };
    case 'value_floats': return { dims: [a.floats.length], type: 'float32', data: Float32Array.from(a.floats) };
    case 'value_int': return { dims: [], type: 'int64', data: new BigInt64Array([BigInt(toNum(a.i))]) };
    case 'value_ints':
      return { dims: [a.ints.length], type: 'int64', data: BigInt64Array.from(a.ints, (v) => BigInt(toNum(v))) };
    default:
      throw new InvalidModelError(
        `${where} holds a '${a.name}' value, which onnx-fit cannot use (only numeric tensors). Re-export without string or sparse constants.`,
      );
  }
}

/** A declared graph input/output; `dims` is undefined when the model declares no shape. */
export function toValueInfo(v: ValueInfoProto): ValueInfo & { rankKnown: boolean } {
  const tt = v.type?.tensorType;
  const dimsProto = tt?.shape?.dim;
  const dims = (dimsProto ?? []).map((d) =>
    d.value === 'dimValue' ? toNum(d.dimValue) : d.value === 'dimParam' ? (d.dimParam ?? null) : null,
  );
  return { name: v.name, elemType: tt ? elemTypeName(tt.elemType) : 'unknown', dims, rankKnown: !!tt?.shape };
}

/** Give every node a unique non-empty name: explicit names first, then `${op}_${index}`. */
export function assignNames(nodes: WorkNode[]): void {
  const used = new Set<string>();
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const pending: WorkNode[] = [];
  for (const n of nodes) {
    if (n.name && !used.has(n.name)) used.add(n.name);
    else pending.push(n);
  }
  for (const n of pending) n.name = fresh(n.name || `${n.op}_${n.index}`);
}

function renameInputs(nodes: WorkNode[], from: string, to: string): void {
  for (const n of nodes) for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
}

/**
 * Remove Identity and (inference) Dropout nodes. Graph output names stay intact: when one of these
 * nodes produces a graph output, its producer's output is renamed instead.
 */
export function removePassThrough(
  nodes: WorkNode[],
  graphOutputs: ReadonlySet<string>,
  consts: Map<string, TensorData>,
): WorkNode[] {
  const producer = new Map<string, WorkNode>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) used.add(i);
  const removed = new Set<WorkNode>();
  for (const n of nodes) {
    if (n.domain !== '' || (n.op !== 'Identity' && n.op !== 'Dropout')) continue;
    if (n.op === 'Dropout' && n.outputs[1] && (used.has(n.outputs[1]) || graphOutputs.has(n.outputs[1]))) continue;
    const src = n.inputs[0] ?? '';
    const dst = n.outputs[0] ?? '';
    if (!src || !dst) continue;
    if (!graphOutputs.has(dst)) {
      renameInputs(nodes, dst, src);
    } else {
      const p = producer.get(src);
      if (p && !graphOutputs.has(src)) {
        p.outputs[p.outputs.indexOf(src)] = dst;
        producer.set(dst, p);
        renameInputs(nodes, src, dst);
      } else if (consts.has(src)) {
        consts.set(dst, consts.get(src)!);
      } else {
        continue; // graph input passed straight to an output, or an output aliasing another: keep it
      }
    }
    removed.add(n);
  }
  return nodes.filter((n) => !removed.has(n));
}

/**
 * Topological sort (stable: keeps the file's order where it is already valid). Throws
 * InvalidModelError for undefined tensors, duplicate producers and cycles.
 */
export function topoSort(nodes: WorkNode[], available: ReadonlySet<string>, modelName: string): WorkNode[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (!o) continue;
      if (producer.has(o) || available.has(o)) {
        throw new InvalidModelError(
          `In ${modelName}, tensor '${o}' is produced by ${describe(n)} and also by another node or initializer. Re-export the model.`,
        );
      }
      producer.set(o, i);
    }
  });
  const indeg = new Array<number>(nodes.length).fill(0);
  const users: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    for (const t of new Set(n.inputs)) {
      if (!t || available.has(t)) continue;
      const p = producer.get(t);
      if (p === undefined) {
        throw new InvalidModelError(
          `In ${modelName}, ${describe(n)} reads tensor '${t}', which no node, initializer or graph input produces. The model is malformed; re-export it.`,
        );
      }
      indeg[i]!++;
      users[p]!.push(i);
    }
  });
  // ready nodes are taken in file order (a sorted array used as a priority queue)
  const ready: number[] = [];
  indeg.forEach((d, i) => { if (d === 0) ready.push(i); });
  const order: WorkNode[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(nodes[i]!);
    for (const u of users[i]!) {
      if (--indeg[u]! === 0) {
        let lo = 0;
        while (lo < ready.length && ready[lo]! < u) lo++;
        ready.splice(lo, 0, u);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => indeg[i]! > 0).slice(0, 5).map((n) => `'${n.name}'`);
    throw new InvalidModelError(`${modelName} has a cycle among nodes ${stuck.join(', ')}; ONNX graphs must be acyclic.`);
  }
  return order;
}

/** Keep only nodes that (transitively) feed a graph output; nodes must be topologically sorted. */
export function removeDeadNodes(nodes: WorkNode[], graphOutputs: ReadonlySet<string>): WorkNode[] {
  const needed = new Set(graphOutputs);
  const keep: WorkNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    keep.push(n);
    for (const t of n.inputs) if (t) needed.add(t);
  }
  return keep.reverse();
}
