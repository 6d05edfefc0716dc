/** Helpers shared by normalize, shape inference and the constant folder. */
import { InvalidModelError, ShapeMismatchError } from '../errors.js';
import type { AttrValue, GraphNode, TensorData } from './types.js';

/** A node while normalizing: a GraphNode plus its tensor-valued attributes (ConstantOfShape). */
export interface WorkNode extends GraphNode {
  tensors: Record<string, TensorData>;
  /** position in the original graph.node list */
  index: number;
}

export function describe(node: GraphNode): string {
  return `node '${node.name}' (${node.op})`;
}

export function attr(node: GraphNode, name: string): AttrValue | undefined {
  return node.attrs[name];
}

export function attrInt(node: GraphNode, name: string, def: number): number {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.type !== 'int') throw badAttr(node, name, 'an INT', a);
  return a.value;
}

export function attrFloat(node: GraphNode, name: string, def: number): number {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.type === 'float' || a.type === 'int') return a.value;
  throw badAttr(node, name, 'a FLOAT', a);
}

export function attrInts(node: GraphNode, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (a === undefined) return undefined;
  if (a.type === 'ints') return a.value;
  if (a.type === 'int') return [a.value];
  throw badAttr(node, name, 'INTS', a);
}

export function attrFloats(node: GraphNode, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (a === undefined) return undefined;
  if (a.type === 'floats' || a.type === 'ints') return a.value;
  throw badAttr(node, name, 'FLOATS', a);
}

export function attrString(node: GraphNode, name: string, def: string): string {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.type !== 'string') throw badAttr(node, name, 'a STRING', a);
  return a.value;
}

function badAttr(node: GraphNode, name: string, want: string, got: AttrValue): InvalidModelError {
  return new InvalidModelError(
    `Expected ${want} for attribute '${name}' of ${describe(node)} but received a ${got.type} (${JSON.stringify(got.value)}). Re-export the model.`,
  );
}

export function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** Normalize a possibly negative axis for a tensor of `rank`. */
export function normAxis(axis: number, rank: number, node: GraphNode): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new InvalidModelError(
      `Axis ${axis} of ${describe(node)} is out of range for a tensor of rank ${rank} (expected ${-rank}..${rank - 1}).`,
    );
  }
  return a;
}

/** numpy-style broadcast of several shapes. */
export function broadcastShapes(shapes: readonly (readonly number[])[], node: GraphNode): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else {
        throw new ShapeMismatchError(
          `Operands of ${describe(node)} cannot be broadcast together: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} ` +
            `disagree at axis ${o} (${out[o]} vs ${d}). Check the input shapes you passed.`,
        );
      }
    }
  }
  return out;
}

export interface SliceRange {
  start: number;
  step: number;
  count: number;
}

/** ONNX Slice semantics: per-axis (start, step, count) with negative indices and clamping. */
export function sliceRanges(
  dims: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[] | undefined,
  steps: readonly number[] | undefined,
  node: GraphNode,
): SliceRange[] {
  const ranges: SliceRange[] = dims.map((d) => ({ start: 0, step: 1, count: d }));
  if (starts.length !== ends.length) {
    throw new InvalidModelError(`Slice ${describe(node)} has ${starts.length} starts but ${ends.length} ends.`);
  }
  for (let i = 0; i < starts.length; i++) {
    const axis = normAxis(axes ? axes[i]! : i, dims.length, node);
    const dim = dims[axis]!;
    const step = steps ? steps[i]! : 1;
    if (step === 0) throw new InvalidModelError(`Slice ${describe(node)} has a step of 0 on axis ${axis}.`);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    let count: number;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      count = Math.max(0, Math.ceil((e - s) / step));
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      count = Math.max(0, Math.ceil((s - e) / -step));
    }
    ranges[axis] = { start: s, step, count };
  }
  return ranges;
}

/** Element values as JS numbers (int64 beyond 2^53 lose precision; shape math never gets there). */
export function toNumbers(t: TensorData): number[] {
  const out = new Array<number>(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

/** Output dims of a Reduce* node; `axes` undefined/empty = all axes unless noop. */
export function reduceDims(dims: readonly number[], axes: number[] | undefined, keepdims: boolean, noop: boolean, node: GraphNode): number[] {
  if (!axes || axes.length === 0) {
    if (noop) return [...dims];
    return keepdims ? dims.map(() => 1) : [];
  }
  const set = new Set(axes.map((a) => normAxis(a, dims.length, node)));
  const out: number[] = [];
  dims.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** Inserted axes of Unsqueeze, resolved against the output rank. */
export function unsqueezeDims(dims: readonly number[], axes: readonly number[], node: GraphNode): number[] {
  const rank = dims.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, rank, node)));
  if (set.size !== axes.length) throw new InvalidModelError(`Unsqueeze ${describe(node)} repeats an axis in [${axes.join(', ')}].`);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : dims[j++]!);
  return out;
}

export function squeezeDims(dims: readonly number[], axes: readonly number[] | undefined, node: GraphNode): number[] {
  if (!axes || axes.length === 0) return dims.filter((d) => d !== 1);
  const set = new Set(axes.map((a) => normAxis(a, dims.length, node)));
  for (const a of set) {
    if (dims[a] !== 1) {
      throw new ShapeMismatchError(`Squeeze ${describe(node)} cannot remove axis ${a} of shape [${dims.join(', ')}]: its size is ${dims[a]}, not 1.`);
    }
  }
  return dims.filter((_, i) => !set.has(i));
}

/** Reshape target dims with 0 (copy, unless allowzero) and -1 (infer). */
export function reshapeDims(dims: readonly number[], shape: readonly number[], allowzero: boolean, node: GraphNode): number[] {
  const total = product(dims);
  let infer = -1;
  const out = shape.map((s, i) => {
    if (s === 0 && !allowzero) {
      if (i >= dims.length) throw new ShapeMismatchError(`Reshape ${describe(node)} copies dim ${i} from an input of rank ${dims.length}.`);
      return dims[i]!;
    }
    if (s === -1) {
      if (infer >= 0) throw new InvalidModelError(`Reshape ${describe(node)} has more than one -1 in [${shape.join(', ')}].`);
      infer = i;
      return 1;
    }
    return s;
  });
  const known = product(out);
  if (infer >= 0) {
    if (known === 0 || total % known !== 0) {
      throw new ShapeMismatchError(`Reshape ${describe(node)} cannot reshape [${dims.join(', ')}] (${total} elements) to [${shape.join(', ')}].`);
    }
    out[infer] = total / known;
  } else if (known !== total) {
    throw new ShapeMismatchError(`Reshape ${describe(node)} cannot reshape [${dims.join(', ')}] (${total} elements) to [${shape.join(', ')}] (${known}).`);
  }
  return out;
}

/** Split sizes along an axis of length `dim`. */
export function splitSizes(dim: number, split: number[] | undefined, numOutputs: number, node: GraphNode): number[] {
  if (split && split.length > 0) {
    const sum = split.reduce((a, b) => a + b, 0);
    if (sum !== dim) throw new ShapeMismatchError(`Split ${describe(node)} sizes [${split.join(', ')}] sum to ${sum}, but the axis has ${dim}.`);
    return split;
  }
  const chunk = Math.ceil(dim / numOutputs);
  const sizes: number[] = [];
  for (let i = 0; i < numOutputs; i++) sizes.push(Math.max(0, Math.min(chunk, dim - i * chunk)));
  return sizes;
}
