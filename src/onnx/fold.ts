/**
 * A small interpreter for constant folding: evaluates shape/index computations (and simple math)
 * on constant tensors. Float tensors are float32, integer and bool tensors int64 (bool as 0/1).
 */
import { InvalidModelError } from '../errors.js';
import { elemTypeName, floatToHalf, halfToFloat } from './proto.js';
import {
  attrFloat, attrInt, attrInts, broadcastShapes, describe, normAxis, product, reduceDims, reshapeDims, sliceRanges,
  splitSizes, squeezeDims, strides, toNumbers, unsqueezeDims,
} from './node-utils.js';
import type { WorkNode } from './node-utils.js';
import type { TensorData, TypedData } from './types.js';

/** Results larger than this are left to the engine instead of being folded. */
export const MAX_FOLD_ELEMENTS = 1 << 24;

type In = (TensorData | undefined)[];
type Impl = (n: WorkNode, x: In, opset: number) => TensorData[] | undefined;

const isInt = (t: TensorData): boolean => t.type === 'int64';
const alloc = (type: 'float32' | 'int64', n: number): TypedData =>
  type === 'int64' ? new BigInt64Array(n) : new Float32Array(n);
const mk = (dims: number[], type: 'float32' | 'int64', data: TypedData): TensorData => ({ dims, type, data });
const ints = (dims: number[], vals: (number | bigint)[]): TensorData =>
  mk(dims, 'int64', BigInt64Array.from(vals, (v) => BigInt(v)));
const req = (x: In, i: number, n: WorkNode): TensorData => {
  const t = x[i];
  if (!t) throw new InvalidModelError(`${describe(n)} is missing its required input #${i}.`);
  return t;
};
const kind = (t: TensorData): 'float32' | 'int64' => (isInt(t) ? 'int64' : 'float32');

/** Offsets into an input for every output element, walking `dims` with per-axis strides `st`. */
function walk(dims: readonly number[], st: readonly number[], base = 0): Int32Array {
  const n = product(dims);
  const r = dims.length;
  const res = new Int32Array(n);
  const idx = new Array<number>(r).fill(0);
  let off = base;
  for (let k = 0; k < n; k++) {
    res[k] = off;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]!++;
      off += st[d]!;
      if (idx[d]! < dims[d]!) break;
      off -= st[d]! * dims[d]!;
      idx[d] = 0;
    }
  }
  return res;
}

function broadcastStrides(outDims: readonly number[], inDims: readonly number[]): number[] {
  const st = new Array<number>(outDims.length).fill(0);
  const is = strides(inDims);
  inDims.forEach((d, i) => { st[outDims.length - inDims.length + i] = d === 1 ? 0 : is[i]!; });
  return st;
}

function take(t: TensorData, dims: number[], offsets: Int32Array): TensorData {
  const out = alloc(kind(t), offsets.length);
  const src = t.data;
  if (out instanceof BigInt64Array) for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]!] as bigint;
  else for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]!] as number;
  return mk(dims, kind(t), out);
}

/** Elementwise op over broadcast inputs; `f` gets the element values, `outType` picks the storage. */
function elementwise(
  n: WorkNode,
  xs: TensorData[],
  outType: 'float32' | 'int64',
  f: (v: (number | bigint)[]) => number | bigint,
): TensorData {
  const dims = broadcastShapes(xs.map((x) => x.dims), n);
  if (product(dims) > MAX_FOLD_ELEMENTS) throw new TooLarge();
  const offs = xs.map((x) => walk(dims, broadcastStrides(dims, x.dims)));
  const size = product(dims);
  const out = alloc(outType, size);
  const vals = new Array<number | bigint>(xs.length);
  for (let k = 0; k < size; k++) {
    for (let j = 0; j < xs.length; j++) vals[j] = xs[j]!.data[offs[j]![k]!]!;
    const r = f(vals);
    if (out instanceof BigInt64Array) out[k] = typeof r === 'bigint' ? r : BigInt(Math.trunc(r));
    else out[k] = Number(r);
  }
  return mk(dims, outType, out);
}

class TooLarge extends Error {}

const num = (v: number | bigint): number => Number(v);
const bool = (v: boolean): bigint => (v ? 1n : 0n);

function arith(op: string, n: WorkNode): (v: (number | bigint)[]) => number | bigint {
  const fmod = attrInt(n, 'fmod', 0) === 1;
  return ([a, b]) => {
    if (typeof a === 'bigint' && typeof b === 'bigint') {
      switch (op) {
        case 'Add': return a + b;
        case 'Sub': return a - b;
        case 'Mul': return a * b;
        case 'Div':
          if (b === 0n) throw new InvalidModelError(`${describe(n)} divides an integer constant by zero.`);
          return a / b;
        case 'Mod': {
          if (b === 0n) throw new InvalidModelError(`${describe(n)} takes an integer constant modulo zero.`);
          const r = a % b;
          return !fmod && r !== 0n && r < 0n !== b < 0n ? r + b : r;
        }
        case 'Pow': return b < 0n ? BigInt(Math.trunc(Number(a) ** Number(b))) : a ** b;
      }
    }
    const x = num(a!);
    const y = num(b!);
    switch (op) {
      case 'Add': return x + y;
      case 'Sub': return x - y;
      case 'Mul': return x * y;
      case 'Div': return x / y;
      case 'Pow': return x ** y;
      default: {
        const r = x % y;
        return !fmod && r !== 0 && r < 0 !== y < 0 ? r + y : r;
      }
    }
  };
}

const binary = (op: string): Impl => (n, x) => {
  const a = req(x, 0, n);
  const b = req(x, 1, n);
  // Pow keeps the base's type; otherwise both operands share a type (ints only if both are ints)
  const t = op === 'Pow' ? kind(a) : isInt(a) && isInt(b) ? 'int64' : 'float32';
  return [elementwise(n, [a, b], t, arith(op, n))];
};

const compare = (f: (a: number | bigint, b: number | bigint) => boolean): Impl => (n, x) => {
  const a = req(x, 0, n);
  const b = req(x, 1, n);
  const same = isInt(a) === isInt(b);
  return [elementwise(n, [a, b], 'int64', ([p, q]) => bool(same ? f(p!, q!) : f(num(p!), num(q!))))];
};

const logical = (f: (a: boolean, b: boolean) => boolean): Impl => (n, x) =>
  [elementwise(n, [req(x, 0, n), req(x, 1, n)], 'int64', ([p, q]) => bool(f(num(p!) !== 0, num(q!) !== 0)))];

const variadic = (f: (a: number | bigint, b: number | bigint) => number | bigint, mean = false): Impl => (n, x) => {
  const xs = x.filter((t): t is TensorData => !!t);
  const t = xs.every(isInt) ? 'int64' : 'float32';
  return [elementwise(n, xs, t, (v) => {
    let acc = t === 'int64' ? v[0]! : num(v[0]!);
    for (let i = 1; i < v.length; i++) acc = t === 'int64' ? f(acc, v[i]!) : f(num(acc), num(v[i]!));
    return mean ? num(acc) / v.length : acc;
  })];
};

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const unary = (ff: (v: number) => number, fi?: (v: bigint) => bigint): Impl => (n, x) => {
  const a = req(x, 0, n);
  if (isInt(a)) {
    const g = fi ?? ((v: bigint) => BigInt(Math.trunc(ff(Number(v)))));
    return [elementwise(n, [a], 'int64', ([v]) => g(v as bigint))];
  }
  return [elementwise(n, [a], 'float32', ([v]) => ff(v as number))];
};

const INT_WRAP: Record<number, (v: bigint) => bigint> = {
  2: (v) => BigInt.asUintN(8, v), 3: (v) => BigInt.asIntN(8, v), 4: (v) => BigInt.asUintN(16, v),
  5: (v) => BigInt.asIntN(16, v), 6: (v) => BigInt.asIntN(32, v), 12: (v) => BigInt.asUintN(32, v),
  7: (v) => v, 13: (v) => v, 9: (v) => bool(v !== 0n),
};

function castTo(n: WorkNode, a: TensorData, to: number): TensorData {
  const wrap = INT_WRAP[to];
  if (wrap) {
    return elementwise(n, [a], 'int64', ([v]) => {
      if (typeof v === 'bigint') return wrap(v);
      if (to === 9) return bool(v !== 0);
      return wrap(Number.isFinite(v) ? BigInt(Math.trunc(v!)) : 0n);
    });
  }
  if (to === 1 || to === 11) return elementwise(n, [a], 'float32', ([v]) => num(v!));
  if (to === 10) return elementwise(n, [a], 'float32', ([v]) => halfToFloat(floatToHalf(num(v!))));
  throw new InvalidModelError(`${describe(n)} casts to ${elemTypeName(to)}, which onnx-fit cannot fold.`);
}

function concat(n: WorkNode, xs: TensorData[]): TensorData {
  const first = xs[0]!;
  const axis = normAxis(attrInt(n, 'axis', 0), first.dims.length, n);
  const dims = [...first.dims];
  dims[axis] = xs.reduce((s, t) => s + t.dims[axis]!, 0);
  const outer = product(first.dims.slice(0, axis));
  const type = xs.every(isInt) ? 'int64' : 'float32';
  const out = alloc(type, product(dims));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const t of xs) {
      const block = product(t.dims.slice(axis));
      for (let j = 0; j < block; j++) (out as unknown as (number | bigint)[])[o++] = t.data[i * block + j]!;
    }
  }
  return mk(dims, type, out);
}

function gather(n: WorkNode, data: TensorData, idx: TensorData): TensorData {
  const axis = normAxis(attrInt(n, 'axis', 0), data.dims.length, n);
  const dim = data.dims[axis]!;
  const outer = product(data.dims.slice(0, axis));
  const inner = product(data.dims.slice(axis + 1));
  const indices = toNumbers(idx).map((i) => {
    if (i < -dim || i >= dim) throw new InvalidModelError(`${describe(n)} gathers index ${i} from an axis of size ${dim}.`);
    return i < 0 ? i + dim : i;
  });
  const offsets = new Int32Array(outer * indices.length * inner);
  let k = 0;
  for (let o = 0; o < outer; o++) for (const i of indices) for (let j = 0; j < inner; j++) offsets[k++] = (o * dim + i) * inner + j;
  return take(data, [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)], offsets);
}

function reduce(n: WorkNode, x: In, how: 'sum' | 'prod' | 'min' | 'max' | 'mean'): TensorData {
  const a = req(x, 0, n);
  const axesIn = x[1] ? toNumbers(x[1]) : attrInts(n, 'axes');
  const noop = attrInt(n, 'noop_with_empty_axes', 0) === 1;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  const r = a.dims.length;
  const axes = !axesIn || axesIn.length === 0 ? (noop ? [] : a.dims.map((_, i) => i)) : axesIn.map((v) => normAxis(v, r, n));
  const keptDims = a.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const outDims = reduceDims(a.dims, axes.length ? axes : undefined, keep, noop, n);
  const dst = walk(a.dims, broadcastStrides(a.dims, keptDims).map((s, i) => (axes.includes(i) ? 0 : s)));
  const m = product(keptDims);
  const int = isInt(a) && how !== 'mean';
  const acc: (number | bigint)[] = new Array(m).fill(undefined);
  for (let k = 0; k < dst.length; k++) {
    const v = int ? (a.data[k] as bigint) : num(a.data[k]!);
    const cur = acc[dst[k]!];
    if (cur === undefined) { acc[dst[k]!] = v; continue; }
    acc[dst[k]!] = how === 'sum' || how === 'mean' ? (cur as number) + (v as number)
      : how === 'prod' ? (cur as number) * (v as number)
      : how === 'min' ? (v < cur ? v : cur) : (v > cur ? v : cur);
  }
  const count = m === 0 ? 1 : dst.length / m;
  const empty = how === 'prod' ? 1 : 0;
  const vals = acc.map((v) => (v === undefined ? empty : how === 'mean' ? num(v) / count : v));
  const type = isInt(a) ? 'int64' : 'float32';
  const out = type === 'int64'
    ? BigInt64Array.from(vals, (v) => (typeof v === 'bigint' ? v : BigInt(Math.trunc(v))))
    : Float32Array.from(vals, num);
  return mk(outDims, type, out);
}

const IMPL: Record<string, Impl> = {
  Add: binary('Add'), Sub: binary('Sub'), Mul: binary('Mul'), Div: binary('Div'), Pow: binary('Pow'), Mod: binary('Mod'),
  Equal: compare((a, b) => a === b), Less: compare((a, b) => a < b), Greater: compare((a, b) => a > b),
  LessOrEqual: compare((a, b) => a <= b), GreaterOrEqual: compare((a, b) => a >= b),
  And: logical((a, b) => a && b), Or: logical((a, b) => a || b), Xor: logical((a, b) => a !== b),
  Min: variadic((a, b) => (b < a ? b : a)), Max: variadic((a, b) => (b > a ? b : a)),
  Sum: variadic((a, b) => (a as number) + (b as number)), Mean: variadic((a, b) => num(a) + num(b), true),
  Neg: unary((v) => -v, (v) => -v), Abs: unary(Math.abs, (v) => (v < 0n ? -v : v)),
  Sign: unary(Math.sign, (v) => (v > 0n ? 1n : v < 0n ? -1n : 0n)), Relu: unary((v) => Math.max(v, 0), (v) => (v < 0n ? 0n : v)),
  Floor: unary(Math.floor, (v) => v), Ceil: unary(Math.ceil, (v) => v), Round: unary(roundEven, (v) => v),
  Sqrt: unary(Math.sqrt), Reciprocal: unary((v) => 1 / v), Exp: unary(Math.exp), Log: unary(Math.log),
  Sigmoid: unary((v) => 1 / (1 + Math.exp(-v))), Tanh: unary(Math.tanh),
  Not: (n, x) => [elementwise(n, [req(x, 0, n)], 'int64', ([v]) => bool(num(v!) === 0))],
  Identity: (n, x) => [req(x, 0, n)],
  Where: (n, x) => {
    const [c, a, b] = [req(x, 0, n), req(x, 1, n), req(x, 2, n)];
    return [elementwise(n, [c, a, b], isInt(a) && isInt(b) ? 'int64' : 'float32', ([p, q, r]) => (num(p!) !== 0 ? q! : r!))];
  },
  Cast: (n, x) => [castTo(n, req(x, 0, n), attrInt(n, 'to', 1))],
  CastLike: (n, x) => [castTo(n, req(x, 0, n), isInt(req(x, 1, n)) ? 7 : 1)],
  Shape: (n, x) => {
    const d = req(x, 0, n).dims;
    const r = d.length;
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const s = d.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r)));
    return [ints([s.length], s)];
  },
  Size: (n, x) => [ints([], [product(req(x, 0, n).dims)])],
  Reshape: (n, x) => {
    const a = req(x, 0, n);
    return [mk(reshapeDims(a.dims, toNumbers(req(x, 1, n)), attrInt(n, 'allowzero', 0) === 1, n), kind(a), a.data)];
  },
  Flatten: (n, x) => {
    const a = req(x, 0, n);
    const ax = attrInt(n, 'axis', 1);
    const k = ax < 0 ? ax + a.dims.length : ax;
    return [mk([product(a.dims.slice(0, k)), product(a.dims.slice(k))], kind(a), a.data)];
  },
  Squeeze: (n, x) => {
    const a = req(x, 0, n);
    return [mk(squeezeDims(a.dims, x[1] ? toNumbers(x[1]) : attrInts(n, 'axes'), n), kind(a), a.data)];
  },
  Unsqueeze: (n, x) => {
    const a = req(x, 0, n);
    const axes = x[1] ? toNumbers(x[1]) : attrInts(n, 'axes');
    if (!axes) throw new InvalidModelError(`${describe(n)} has no axes.`);
    return [mk(unsqueezeDims(a.dims, axes, n), kind(a), a.data)];
  },
  Concat: (n, x) => [concat(n, x.filter((t): t is TensorData => !!t))],
  Gather: (n, x) => [gather(n, req(x, 0, n), req(x, 1, n))],
  Slice: (n, x) => {
    const a = req(x, 0, n);
    const legacy = !x[1] && attrInts(n, 'starts') !== undefined;
    const starts = legacy ? attrInts(n, 'starts')! : toNumbers(req(x, 1, n));
    const ends = legacy ? attrInts(n, 'ends')! : toNumbers(req(x, 2, n));
    const axes = legacy ? attrInts(n, 'axes') : x[3] && toNumbers(x[3]);
    const steps = legacy ? undefined : x[4] && toNumbers(x[4]);
    const ranges = sliceRanges(a.dims, starts, ends, axes, steps, n);
    const st = strides(a.dims);
    const base = ranges.reduce((s, r, i) => s + r.start * st[i]!, 0);
    const dims = ranges.map((r) => r.count);
    return [take(a, dims, walk(dims, ranges.map((r, i) => r.step * st[i]!), base))];
  },
  Transpose: (n, x) => {
    const a = req(x, 0, n);
    const r = a.dims.length;
    const perm = attrInts(n, 'perm') ?? a.dims.map((_, i) => r - 1 - i);
    const st = strides(a.dims);
    const dims = perm.map((p) => a.dims[p]!);
    return [take(a, dims, walk(dims, perm.map((p) => st[p]!)))];
  },
  Expand: (n, x) => {
    const a = req(x, 0, n);
    const dims = broadcastShapes([a.dims, toNumbers(req(x, 1, n))], n);
    if (product(dims) > MAX_FOLD_ELEMENTS) throw new TooLarge();
    return [take(a, dims, walk(dims, broadcastStrides(dims, a.dims)))];
  },
  Tile: (n, x) => {
    const a = req(x, 0, n);
    const reps = toNumbers(req(x, 1, n));
    const dims = a.dims.map((d, i) => d * reps[i]!);
    if (product(dims) > MAX_FOLD_ELEMENTS) throw new TooLarge();
    const st = strides(a.dims);
    const offsets = new Int32Array(product(dims));
    const idx = new Array<number>(dims.length).fill(0);
    for (let k = 0; k < offsets.length; k++) {
      offsets[k] = idx.reduce((s, v, i) => s + (v % a.dims[i]!) * st[i]!, 0);
      for (let d = dims.length - 1; d >= 0 && ++idx[d]! >= dims[d]!; d--) idx[d] = 0;
    }
    return [take(a, dims, offsets)];
  },
  ConstantOfShape: (n, x) => {
    const dims = toNumbers(req(x, 0, n));
    if (product(dims) > MAX_FOLD_ELEMENTS) throw new TooLarge();
    const v = n.tensors.value ?? mk([1], 'float32', new Float32Array([0]));
    const out = alloc(kind(v), product(dims));
    out.fill(v.data[0] as never);
    return [mk(dims, kind(v), out)];
  },
  Range: (n, x) => {
    const [s, l, d] = [req(x, 0, n), req(x, 1, n), req(x, 2, n)];
    const [a, b, c] = [num(s.data[0]!), num(l.data[0]!), num(d.data[0]!)];
    if (c === 0) throw new InvalidModelError(`${describe(n)} has a delta of 0.`);
    const count = Math.max(0, Math.ceil((b - a) / c));
    if (count > MAX_FOLD_ELEMENTS) throw new TooLarge();
    const vals = Array.from({ length: count }, (_, i) => a + i * c);
    return [isInt(s) ? ints([count], vals) : mk([count], 'float32', Float32Array.from(vals))];
  },
  Split: (n, x) => {
    const a = req(x, 0, n);
    const axis = normAxis(attrInt(n, 'axis', 0), a.dims.length, n);
    const sizes = splitSizes(a.dims[axis]!, x[1] ? toNumbers(x[1]) : attrInts(n, 'split'), n.outputs.length, n);
    const st = strides(a.dims);
    let start = 0;
    return sizes.map((sz) => {
      const dims = a.dims.map((d, i) => (i === axis ? sz : d));
      const t = take(a, dims, walk(dims, st, start * st[axis]!));
      start += sz;
      return t;
    });
  },
  ReduceSum: (n, x) => [reduce(n, x, 'sum')], ReduceProd: (n, x) => [reduce(n, x, 'prod')],
  ReduceMin: (n, x) => [reduce(n, x, 'min')], ReduceMax: (n, x) => [reduce(n, x, 'max')],
  ReduceMean: (n, x) => [reduce(n, x, 'mean')],
  Clip: (n, x, opset) => {
    const a = req(x, 0, n);
    const lo = opset < 11 ? attrFloat(n, 'min', -Infinity) : x[1] ? num(x[1].data[0]!) : -Infinity;
    const hi = opset < 11 ? attrFloat(n, 'max', Infinity) : x[2] ? num(x[2].data[0]!) : Infinity;
    return [elementwise(n, [a], kind(a), ([v]) => {
      const c = Math.min(Math.max(num(v!), lo), hi);
      return isInt(a) ? BigInt(c) : c;
    })];
  },
};

/** Ops the interpreter can fold (when all their inputs are constant). */
export const FOLDABLE_OPS: ReadonlySet<string> = new Set(Object.keys(IMPL));

/**
 * Evaluate a default-domain node on constant inputs ('' inputs as undefined). Returns undefined
 * when the op is not implemented or its result would be too large to fold.
 */
export function evalNode(node: WorkNode, inputs: In, opset: number): TensorData[] | undefined {
  const impl = IMPL[node.op];
  if (!impl) return undefined;
  try {
    return impl(node, inputs, opset);
  } catch (e) {
    if (e instanceof TooLarge) return undefined;
    throw e;
  }
}

/** Fold Shape/Size from a known input shape (the input itself need not be constant). */
export function evalShapeOp(node: WorkNode, dims: number[], opset: number): TensorData[] | undefined {
  if (node.op !== 'Shape' && node.op !== 'Size') return undefined;
  return evalNode(node, [{ dims, type: 'float32', data: new Float32Array(0) }], opset);
}
