/**
 * Shape inference for concrete input shapes, one rule per op. A rule reads the input shapes (and
 * the values of constant inputs such as Reshape's shape) and returns the output dims.
 */
import { InvalidModelError, ShapeMismatchError } from '../errors.js';
import {
  attrFloats, attrInt, attrInts, attrString, broadcastShapes, describe, normAxis, product, reduceDims, reshapeDims,
  sliceRanges, splitSizes, squeezeDims, toNumbers, unsqueezeDims,
} from './node-utils.js';
import type { GraphNode, TensorData } from './types.js';

export interface ShapeInputs {
  node: GraphNode;
  opset: number;
  /** shape of each input ('' or unknown -> undefined) */
  shapes: (number[] | undefined)[];
  /** value of each constant input */
  values: (TensorData | undefined)[];
}

export type ShapeOutcome =
  | { kind: 'ok'; shapes: number[][] }
  /** the op has no shape rule */
  | { kind: 'unknown-op' }
  /** an input shape, or a constant that decides the shape, is not known */
  | { kind: 'pending'; reason: string };

class Pending extends Error {}

class Ctx {
  constructor(readonly a: ShapeInputs) {}
  get node(): GraphNode { return this.a.node; }
  get opset(): number { return this.a.opset; }
  has(i: number): boolean { return (this.node.inputs[i] ?? '') !== ''; }
  shape(i: number): number[] {
    const s = this.a.shapes[i];
    if (!s) throw new Pending(`the shape of input '${this.node.inputs[i] ?? i}' is unknown`);
    return s;
  }
  /** values of a constant input as numbers; undefined when the input is absent or empty */
  ints(i: number): number[] | undefined {
    if (!this.has(i)) return undefined;
    const v = this.a.values[i];
    if (!v) {
      throw new Pending(
        `input '${this.node.inputs[i]}' decides the output shape but is computed at run time (it does not fold to a constant for these input shapes)`,
      );
    }
    return toNumbers(v);
  }
}

type Rule = (c: Ctx) => number[][];

const same: Rule = (c) => c.node.outputs.map(() => c.shape(0));
const broadcast: Rule = (c) => [broadcastShapes(c.node.inputs.map((n, i) => (n ? c.shape(i) : [])), c.node)];

function spatialParams(c: Ctx, kernel: number[], spatial: number) {
  const strides = attrInts(c.node, 'strides') ?? new Array<number>(spatial).fill(1);
  const dil = attrInts(c.node, 'dilations') ?? new Array<number>(spatial).fill(1);
  const pads = attrInts(c.node, 'pads') ?? new Array<number>(spatial * 2).fill(0);
  const autoPad = attrString(c.node, 'auto_pad', 'NOTSET');
  if (kernel.length !== spatial || strides.length !== spatial || dil.length !== spatial || pads.length !== spatial * 2) {
    throw new InvalidModelError(
      `${describe(c.node)} has kernel/strides/dilations/pads of lengths ${kernel.length}/${strides.length}/${dil.length}/${pads.length} ` +
        `for ${spatial} spatial dims.`,
    );
  }
  return { strides, dil, pads, autoPad };
}

/** Output size of a sliding window (Conv, pooling). */
function windowOut(c: Ctx, inDims: number[], kernel: number[], ceilMode: boolean): number[] {
  const { strides, dil, pads, autoPad } = spatialParams(c, kernel, inDims.length);
  return inDims.map((d, i) => {
    const ek = (kernel[i]! - 1) * dil[i]! + 1;
    const s = strides[i]!;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(d / s);
    if (autoPad === 'VALID') return Math.max(0, Math.ceil((d - ek + 1) / s));
    const span = d + pads[i]! + pads[i + inDims.length]! - ek;
    if (span < 0) {
      throw new ShapeMismatchError(
        `${describe(c.node)}: the window (${ek}) is larger than the padded input (${d + pads[i]! + pads[i + inDims.length]!}) on spatial axis ${i}. ` +
          'Use a larger input shape.',
      );
    }
    if (!ceilMode) return Math.floor(span / s) + 1;
    let o = Math.ceil(span / s) + 1;
    if ((o - 1) * s >= d + pads[i]!) o--;
    return o;
  });
}

const conv: Rule = (c) => {
  const x = c.shape(0);
  const w = c.shape(1);
  const group = attrInt(c.node, 'group', 1);
  if (x.length < 3 || w.length !== x.length || x[1] !== w[1]! * group) {
    throw new ShapeMismatchError(
      `${describe(c.node)}: input [${x.join(', ')}] does not fit weight [${w.join(', ')}] with group ${group} ` +
        `(expected input channels ${w[1]! * group}). Check the input shape.`,
    );
  }
  const kernel = attrInts(c.node, 'kernel_shape') ?? w.slice(2);
  return [[x[0]!, w[0]!, ...windowOut(c, x.slice(2), kernel, false)]];
};

const convTranspose: Rule = (c) => {
  const x = c.shape(0);
  const w = c.shape(1);
  const group = attrInt(c.node, 'group', 1);
  if (x.length < 3 || w.length !== x.length || x[1] !== w[0]) {
    throw new ShapeMismatchError(
      `${describe(c.node)}: input [${x.join(', ')}] does not fit weight [${w.join(', ')}] (expected ${w[0]} input channels).`,
    );
  }
  const sp = x.length - 2;
  const kernel = attrInts(c.node, 'kernel_shape') ?? w.slice(2);
  const { strides, dil, pads, autoPad } = spatialParams(c, kernel, sp);
  const outPad = attrInts(c.node, 'output_padding') ?? new Array<number>(sp).fill(0);
  const outShape = attrInts(c.node, 'output_shape');
  const spatial = outShape
    ? outShape.slice(outShape.length - sp)
    : x.slice(2).map((d, i) => {
        if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * strides[i]!;
        const p = autoPad === 'VALID' ? 0 : pads[i]! + pads[i + sp]!;
        return strides[i]! * (d - 1) + outPad[i]! + (kernel[i]! - 1) * dil[i]! + 1 - p;
      });
  return [[x[0]!, w[1]! * group, ...spatial]];
};

const pool: Rule = (c) => {
  const x = c.shape(0);
  const kernel = attrInts(c.node, 'kernel_shape');
  if (!kernel) throw new InvalidModelError(`${describe(c.node)} has no kernel_shape attribute.`);
  const out = [x[0]!, x[1]!, ...windowOut(c, x.slice(2), kernel, attrInt(c.node, 'ceil_mode', 0) === 1)];
  return c.node.outputs.map(() => out);
};

const globalPool: Rule = (c) => {
  const x = c.shape(0);
  return [[x[0]!, x[1]!, ...x.slice(2).map(() => 1)]];
};

const gemm: Rule = (c) => {
  const a = c.shape(0);
  const b = c.shape(1);
  const ta = attrInt(c.node, 'transA', 0);
  const tb = attrInt(c.node, 'transB', 0);
  if (a.length !== 2 || b.length !== 2) throw new ShapeMismatchError(`${describe(c.node)} needs 2-D operands, got [${a.join(', ')}] and [${b.join(', ')}].`);
  const [m, ka] = ta ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = tb ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (ka !== kb) throw new ShapeMismatchError(`${describe(c.node)}: inner dims differ (${ka} vs ${kb}) for A [${a.join(', ')}], B [${b.join(', ')}].`);
  return [[m, n]];
};

const matmul: Rule = (c) => {
  const a = c.shape(0);
  const b = c.shape(1);
  if (a.length === 0 || b.length === 0) throw new ShapeMismatchError(`${describe(c.node)} has a scalar operand.`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (k1 !== k2) throw new ShapeMismatchError(`${describe(c.node)}: inner dims differ (${k1} vs ${k2}) for [${a.join(', ')}] x [${b.join(', ')}].`);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], c.node);
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return [out];
};

const reduce: Rule = (c) => {
  const x = c.shape(0);
  const axes = c.has(1) ? c.ints(1) : attrInts(c.node, 'axes');
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  return [reduceDims(x, axes, keep, attrInt(c.node, 'noop_with_empty_axes', 0) === 1, c.node)];
};

const argReduce: Rule = (c) => {
  const x = c.shape(0);
  return [reduceDims(x, [attrInt(c.node, 'axis', 0)], attrInt(c.node, 'keepdims', 1) === 1, false, c.node)];
};

const flatten: Rule = (c) => {
  const x = c.shape(0);
  const axis = attrInt(c.node, 'axis', 1);
  const a = axis < 0 ? axis + x.length : axis;
  if (a < 0 || a > x.length) throw new InvalidModelError(`${describe(c.node)}: axis ${axis} is out of range for rank ${x.length}.`);
  return [[product(x.slice(0, a)), product(x.slice(a))]];
};

const reshape: Rule = (c) => [reshapeDims(c.shape(0), c.ints(1)!, attrInt(c.node, 'allowzero', 0) === 1, c.node)];

const transpose: Rule = (c) => {
  const x = c.shape(0);
  const perm = attrInts(c.node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
  if (perm.length !== x.length) throw new ShapeMismatchError(`${describe(c.node)}: perm [${perm.join(', ')}] does not match rank ${x.length}.`);
  return [perm.map((p) => x[normAxis(p, x.length, c.node)]!)];
};

const concat: Rule = (c) => {
  const shapes = c.node.inputs.map((n, i) => (n ? c.shape(i) : undefined)).filter((s): s is number[] => !!s);
  const first = shapes[0]!;
  const axis = normAxis(attrInt(c.node, 'axis', 0), first.length, c.node);
  const out = [...first];
  out[axis] = 0;
  for (const s of shapes) {
    if (s.length !== first.length || s.some((d, i) => i !== axis && d !== first[i])) {
      throw new ShapeMismatchError(
        `${describe(c.node)} concatenates incompatible shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(', ')} on axis ${axis}.`,
      );
    }
    out[axis] += s[axis]!;
  }
  return [out];
};

const split: Rule = (c) => {
  const x = c.shape(0);
  const axis = normAxis(attrInt(c.node, 'axis', 0), x.length, c.node);
  const sizes = splitSizes(x[axis]!, c.has(1) ? c.ints(1) : attrInts(c.node, 'split'), c.node.outputs.length, c.node);
  return sizes.map((s) => x.map((d, i) => (i === axis ? s : d)));
};

const slice: Rule = (c) => {
  const x = c.shape(0);
  const legacy = !c.has(1) && attrInts(c.node, 'starts') !== undefined;
  const starts = legacy ? attrInts(c.node, 'starts')! : c.ints(1)!;
  const ends = legacy ? attrInts(c.node, 'ends')! : c.ints(2)!;
  const axes = legacy ? attrInts(c.node, 'axes') : c.ints(3);
  const steps = legacy ? undefined : c.ints(4);
  return [sliceRanges(x, starts, ends, axes, steps, c.node).map((r) => r.count)];
};

const squeeze: Rule = (c) => [squeezeDims(c.shape(0), c.has(1) ? c.ints(1) : attrInts(c.node, 'axes'), c.node)];
const unsqueeze: Rule = (c) => {
  const axes = c.has(1) ? c.ints(1) : attrInts(c.node, 'axes');
  if (!axes) throw new InvalidModelError(`${describe(c.node)} has no axes.`);
  return [unsqueezeDims(c.shape(0), axes, c.node)];
};

const pad: Rule = (c) => {
  const x = c.shape(0);
  const pads = c.has(1) ? c.ints(1)! : (attrInts(c.node, 'pads') ?? attrInts(c.node, 'paddings') ?? []);
  const axes = (c.ints(3) ?? x.map((_, i) => i)).map((a) => normAxis(a, x.length, c.node));
  if (pads.length !== axes.length * 2) throw new InvalidModelError(`${describe(c.node)} has ${pads.length} pads for ${axes.length} axes.`);
  const out = [...x];
  axes.forEach((a, i) => { out[a] = out[a]! + pads[i]! + pads[i + axes.length]!; });
  if (out.some((d) => d < 0)) throw new ShapeMismatchError(`${describe(c.node)} crops [${x.join(', ')}] below zero with pads [${pads.join(', ')}].`);
  return [out];
};

const resize: Rule = (c) => {
  const x = c.shape(0);
  const n = c.node;
  let scales: number[] | undefined;
  let sizes: number[] | undefined;
  if (n.op === 'Upsample') scales = c.has(1) ? c.ints(1) : attrFloats(n, 'scales');
  else if (c.opset < 11 || n.inputs.length === 2) scales = c.ints(1);
  else {
    sizes = c.ints(3);
    if (sizes && sizes.length === 0) sizes = undefined;
    if (!sizes) scales = c.ints(2);
  }
  const axesAttr = attrInts(n, 'axes');
  const axes = (axesAttr ?? x.map((_, i) => i)).map((a) => normAxis(a, x.length, n));
  const out = [...x];
  if (sizes) {
    if (sizes.length !== axes.length) throw new InvalidModelError(`${describe(n)} has ${sizes.length} sizes for ${axes.length} axes.`);
    const policy = attrString(n, 'keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch') axes.forEach((a, i) => { out[a] = sizes![i]!; });
    else {
      const ratios = axes.map((a, i) => sizes![i]! / x[a]!);
      const s = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => { out[a] = Math.round(s * x[a]!); });
    }
    return [out];
  }
  if (!scales || scales.length === 0) throw new InvalidModelError(`${describe(n)} has neither scales nor sizes.`);
  if (scales.length !== axes.length) throw new InvalidModelError(`${describe(n)} has ${scales.length} scales for rank ${x.length}.`);
  axes.forEach((a, i) => { out[a] = Math.floor(Math.fround(x[a]! * Math.fround(scales![i]!))); });
  return [out];
};

const layerNorm: Rule = (c) => {
  const x = c.shape(0);
  const axis = normAxis(attrInt(c.node, 'axis', -1), x.length, c.node);
  const stat = x.map((d, i) => (i < axis ? d : 1));
  return c.node.outputs.map((_, i) => (i === 0 ? x : stat));
};

const gather: Rule = (c) => {
  const x = c.shape(0);
  const idx = c.shape(1);
  const axis = normAxis(attrInt(c.node, 'axis', 0), x.length, c.node);
  return [[...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]];
};

const shapeOp: Rule = (c) => {
  const r = c.shape(0).length;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const s = clamp(attrInt(c.node, 'start', 0));
  const e = clamp(attrInt(c.node, 'end', r));
  return [[Math.max(0, e - s)]];
};

const range: Rule = (c) => {
  const [s, l, d] = [c.ints(0)![0]!, c.ints(1)![0]!, c.ints(2)![0]!];
  return [[Math.max(0, Math.ceil((l - s) / d))]];
};

const tile: Rule = (c) => {
  const reps = c.ints(1)!;
  return [c.shape(0).map((d, i) => d * reps[i]!)];
};

const SAME_SHAPE = [
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Gelu', 'Sqrt', 'Neg', 'Exp', 'Log',
  'Abs', 'Softmax', 'LogSoftmax', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'Not', 'Cast', 'CastLike', 'Identity',
  'Dropout', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Mish', 'Sin', 'Cos', 'IsNaN', 'IsInf', 'InstanceNormalization',
  'LpNormalization', 'LRN', 'Hardmax', 'CumSum', 'ThresholdedRelu', 'Celu', 'Shrink',
];
const BROADCAST = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'PRelu', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or',
  'Xor', 'Mod', 'Min', 'Max', 'Sum', 'Mean', 'Where', 'BitShift',
];

const RULES: Record<string, Rule> = {
  Conv: conv, ConvTranspose: convTranspose, Gemm: gemm, MatMul: matmul,
  // training-mode outputs (running/saved mean and var) are per channel
  BatchNormalization: (c) => c.node.outputs.map((_, i) => (i === 0 ? c.shape(0) : [c.shape(0)[1] ?? 1])),
  MaxPool: pool, AveragePool: pool, LpPool: pool,
  GlobalAveragePool: globalPool, GlobalMaxPool: globalPool, GlobalLpPool: globalPool,
  ReduceMean: reduce, ReduceSum: reduce, ReduceMax: reduce, ReduceMin: reduce, ReduceProd: reduce,
  ReduceL1: reduce, ReduceL2: reduce, ReduceLogSumExp: reduce, ReduceSumSquare: reduce, ReduceLogSum: reduce,
  ArgMax: argReduce, ArgMin: argReduce,
  Flatten: flatten, Reshape: reshape, Transpose: transpose, Concat: concat, Split: split, Slice: slice,
  Squeeze: squeeze, Unsqueeze: unsqueeze, Pad: pad, Resize: resize, Upsample: resize,
  LayerNormalization: layerNorm, Gather: gather, Shape: shapeOp, Size: () => [[]], Range: range, Tile: tile,
  ConstantOfShape: (c) => [c.ints(0)!],
  Expand: (c) => [broadcastShapes([c.shape(0), c.ints(1)!], c.node)],
};
for (const op of SAME_SHAPE) RULES[op] = same;
for (const op of BROADCAST) RULES[op] = broadcast;

/** Ops with a shape rule. */
export const SHAPE_OPS: ReadonlySet<string> = new Set(Object.keys(RULES));

/** Infer the output dims of one default-domain node. */
export function inferShapes(inputs: ShapeInputs): ShapeOutcome {
  const rule = RULES[inputs.node.op];
  if (!rule) return { kind: 'unknown-op' };
  try {
    const shapes = rule(new Ctx(inputs));
    for (const s of shapes) {
      if (s.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ShapeMismatchError(`${describe(inputs.node)} would produce the invalid shape [${s.join(', ')}]. Check the input shapes.`);
      }
    }
    return { kind: 'ok', shapes };
  } catch (e) {
    if (e instanceof Pending) return { kind: 'pending', reason: e.message };
    throw e;
  }
}
