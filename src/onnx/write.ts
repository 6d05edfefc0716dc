/**
 * Export of a quantized model (DESIGN.md "Numerical contract"), on the ONNX protobuf of the
 * original model, so everything the configuration does not touch (other nodes, metadata, value
 * info, opsets, custom domains) is written back as it was.
 *
 * Preparation (shared with src/eval): Constant nodes become initializers, Identity nodes on
 * constants are bypassed, unnamed nodes get the names normalize() gives them (so configuration
 * names line up with the sensitivity report), and, by default, BatchNormalization is folded into
 * the preceding Conv/ConvTranspose (src/onnx/fold-bn.ts): the exported model is the deployed,
 * folded one, and its quantized conv weights are the folded weights the report measured.
 *
 * - 'fake-quant': weights snapped to the grid, stored as float32; activations quantized by
 *   QuantizeLinear/DequantizeLinear (uint8) inserted on the layer's data input.
 * - 'qdq': weights stored as integers (int8 for b <= 8; int4 for b <= 4 when the opset is >= 21,
 *   or raised to 21 with raiseOpset where that is safe; int16/int32 for b > 8) + DequantizeLinear;
 *   activations as in 'fake-quant'.
 * Activations with b < 8 bits: QuantizeLinear (uint8) -> Clip to [0, 2^b - 1] in the uint8 domain
 * -> DequantizeLinear, which is exactly the b-bit asymmetric quantizer (opset >= 12; on opsets 10
 * and 11 the Clip runs on the dequantized floats, with the same result). b > 8 bits: the same
 * quantizer written with float ops (Div, Round, Add, Clip, Sub, Mul).
 */
import { writeFileAtomic } from '../atomic.js';
import { resolve } from 'node:path';
import { InvalidModelError, InvalidOptionError } from '../errors.js';
import type { DataSpec } from '../data/source.js';
import { resolveRanges, type Range } from '../eval/calibrate.js';
import { foldBatchNorm } from './fold-bn.js';
import { findQuantizableLayers } from './layers.js';
import {
  AttrType, dataToTensorProto, decodeModel, elemTypeName, encodeModel, tensorProtoToData, toNum,
  type AttributeProto, type NodeProto, type TensorProto,
} from './proto.js';
import { activationParams, checkConfig, quantizeWeight, type QuantConfig } from './quantize.js';
import { readModel, type OnnxModel } from './read.js';
import { checkMasks, maskedData, prunedCount, type WeightMasks } from './masks.js';
import { UNSAFE_FOR_11, canRaiseTo21, upgradeAttrsToInputs } from './opset.js';
import type { AttrValue, Graph, GraphNode, QuantizableLayer, TensorData } from './types.js';

export type ExportFormat = 'fake-quant' | 'qdq';
/** Calibrated ranges by activation tensor name or by layer name. */
export type ActivationRanges = Record<string, Range>;
/** Ranges, data to calibrate on, or a sensitivity report (its activation ranges). */
export type Calibration = ActivationRanges | DataSpec | { layers: { name: string; activation: { name: string; min: number; max: number } }[] };

export interface QuantizeOptions {
  /** default 'qdq' */
  format?: ExportFormat;
  /** weights per output channel instead of per tensor (default false) */
  perChannel?: boolean;
  /** fold BatchNormalization first, as sensitivity does (default true) */
  foldBatchNorm?: boolean;
  /** activation ranges; required when the configuration quantizes activations */
  calibration?: Calibration;
  /** batch size and sample cap of the calibration run */
  batchSize?: number;
  maxSamples?: number;
  /** raise the opset to 21 to store <= 4-bit weights as int4, where that is safe (default false) */
  raiseOpset?: boolean;
  /**
   * Pruning masks, weight or layer name -> 1 kept / 0 pruned in the (folded) weight's layout
   * (src/onnx/masks.ts): masked weights are exactly 0 and the quantizer's step is computed over the
   * survivors; a masked layer without bits keeps float weights, masked.
   */
  masks?: WeightMasks;
  signal?: AbortSignal;
}

export interface ExportedLayer {
  name: string;
  op: string;
  weight?: { name: string; bits: number; storage: 'float32' | 'int4' | 'int8' | 'int16' | 'int32'; axis?: number; scale: number[] };
  activation?: { name: string; bits: number; min: number; max: number; scale: number; zeroPoint: number };
  /** weights set to 0 by a mask (option masks) */
  pruned?: { count: number; sparsity: number };
}

export interface ExportSummary {
  model: string;
  path?: string;
  format: ExportFormat;
  opset: number;
  irVersion: number;
  perChannel: boolean;
  /** conv node names that absorbed a BatchNormalization */
  foldedBatchNorm: string[];
  layers: ExportedLayer[];
  warnings: string[];
}

export interface PreparedLayer extends QuantizableLayer {
  activationInput: number;
  data: Float32Array;
  dims: number[];
  /** the per-output-channel axis of the weight (undefined when it has none) */
  channelAxis?: number;
}

/** The float model, ready for quantization (see the module comment). */
export interface PreparedModel {
  name: string;
  /** the float (folded) model's bytes */
  bytes: Uint8Array;
  opset: number;
  layers: PreparedLayer[];
  foldedBatchNorm: string[];
  /** node names that are no quantizable layer, and why */
  notQuantizable: Map<string, string>;
}

const isDefault = (d: string | undefined) => !d || d === 'ai.onnx';
const utf8 = new TextDecoder();

function attrsOf(n: NodeProto): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const a of n.attribute ?? []) {
    if (a.type === AttrType.INT) out[a.name] = { type: 'int', value: toNum(a.i) };
    else if (a.type === AttrType.FLOAT) out[a.name] = { type: 'float', value: a.f };
    else if (a.type === AttrType.INTS) out[a.name] = { type: 'ints', value: a.ints.map(toNum) };
    else if (a.type === AttrType.FLOATS) out[a.name] = { type: 'floats', value: [...a.floats] };
    else if (a.type === AttrType.STRING) out[a.name] = { type: 'string', value: utf8.decode(a.s) };
  }
  return out;
}

function constantTensor(n: NodeProto): TensorProto | undefined {
  const a = n.attribute?.[0];
  if (!a || n.attribute.length !== 1 || !n.output[0]) return undefined;
  const name = n.output[0];
  if (a.name === 'value' && a.t) return { ...a.t, name } as TensorProto;
  if (a.name === 'value_float') return dataToTensorProto(name, { dims: [], elemType: 'float32', data: [a.f] }) as unknown as TensorProto;
  if (a.name === 'value_floats') return dataToTensorProto(name, { dims: [a.floats.length], elemType: 'float32', data: a.floats }) as unknown as TensorProto;
  if (a.name === 'value_int') return dataToTensorProto(name, { dims: [], elemType: 'int64', data: [BigInt(toNum(a.i))] }) as unknown as TensorProto;
  if (a.name === 'value_ints')
    return dataToTensorProto(name, { dims: [a.ints.length], elemType: 'int64', data: a.ints.map((v) => BigInt(toNum(v))) }) as unknown as TensorProto;
  return undefined;
}

function channelAxis(l: QuantizableLayer, node: GraphNode, rank: number): number | undefined {
  if (l.op === 'Conv') return 0;
  if (l.op === 'ConvTranspose') return 1;
  if (l.op === 'Gemm') return node.attrs.transB?.value ? 0 : 1;
  if (rank < 2) return undefined;
  return l.weightInput === 1 ? rank - 1 : rank - 2;
}

/** Writes a tensor's values back into an initializer, in its own element type. */
function setTensorData(t: TensorProto, dims: number[], data: ArrayLike<number>): void {
  const p = dataToTensorProto(t.name, { dims, elemType: elemTypeName(t.dataType), data });
  t.rawData = p.rawData;
  t.dims = dims;
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
}

/** Prepares a model for quantization (see the module comment). */
export function prepareQuantization(source: string | Uint8Array | OnnxModel, opts: { foldBatchNorm?: boolean } = {}): PreparedModel {
  const model = typeof source === 'object' && 'proto' in source ? source : readModel(source);
  const m = decodeModel(encodeModel(model.proto), model.name);
  const g = m.graph!;
  const outNames = new Set(g.output.map((o) => o.name));
  // Constant nodes -> initializers
  const nodes: { n: NodeProto; index: number }[] = [];
  g.node.forEach((n, index) => {
    const t = isDefault(n.domain) && n.opType === 'Constant' ? constantTensor(n) : undefined;
    if (t) g.initializer.push(t);
    else nodes.push({ n, index });
  });
  // names, as normalize assigns them
  const used = new Set<string>();
  const pending: typeof nodes = [];
  for (const x of nodes) {
    if (x.n.name && !used.has(x.n.name)) used.add(x.n.name);
    else pending.push(x);
  }
  for (const x of pending) {
    const base = x.n.name || `${x.n.opType}_${x.index}`;
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    x.n.name = name;
  }
  // Identity on a constant: read the constant directly
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  let list = nodes.map((x) => x.n);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of list) {
      const src = n.input[0] ?? '';
      const dst = n.output[0] ?? '';
      if (!isDefault(n.domain) || n.opType !== 'Identity' || !inits.has(src) || !dst || outNames.has(dst)) continue;
      for (const o of list) o.input = o.input.map((t) => (t === dst ? src : t));
      list = list.filter((o) => o !== n);
      changed = true;
      break;
    }
  }
  g.node = list;

  // a plain Graph view for BN folding and layer finding
  const tensors = new Map<string, TensorData>();
  for (const t of g.initializer) {
    try {
      tensors.set(t.name, tensorProtoToData(t, model.baseDir, model.name));
    } catch {
      // string or exotic tensors: no weight, no BN parameter
    }
  }
  const viewNodes: GraphNode[] = list.map((n) => ({ op: n.opType, name: n.name, domain: isDefault(n.domain) ? '' : n.domain, inputs: [...n.input], outputs: [...n.output], attrs: attrsOf(n) }));
  let view: Graph = {
    opset: model.opset,
    nodes: viewNodes,
    initializers: tensors,
    inputs: g.input.filter((i) => !inits.has(i.name)).map((i) => ({ name: i.name, elemType: 'float32', dims: [] })),
    outputs: g.output.map((o) => ({ name: o.name, elemType: 'float32', dims: [] })),
    shapes: new Map(),
  };
  const folded: string[] = [];
  if (opts.foldBatchNorm ?? true) {
    const r = foldBatchNorm(view);
    if (r.folded.length) {
      const byName = new Map(list.map((n) => [n.name, n]));
      const gone = new Set(r.folded.map((f) => f.bn));
      for (const f of r.folded) {
        const conv = byName.get(f.conv)!;
        const vconv = r.graph.nodes.find((n) => n.name === f.conv)!;
        conv.input = [...vconv.inputs];
        const oldOut = conv.output[0];
        conv.output = [...vconv.outputs];
        g.valueInfo = (g.valueInfo ?? []).filter((v) => v.name !== oldOut);
        for (const name of [f.weight, f.bias]) {
          const data = r.graph.initializers.get(name)!;
          let t = inits.get(name);
          if (!t) {
            t = { name, dataType: 1 } as TensorProto;
            g.initializer.push(t);
            inits.set(name, t);
          }
          setTensorData(t, data.dims, data.data as Float32Array);
        }
        folded.push(f.conv);
      }
      g.node = list.filter((n) => !gone.has(n.name));
      const kept = new Set(r.graph.initializers.keys());
      const dropped = new Set([...tensors.keys()].filter((k) => !kept.has(k)));
      g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
      g.input = g.input.filter((i) => !dropped.has(i.name));
    }
    view = r.graph;
  }
  const layers = findQuantizableLayers(view);
  const notQuantizable = new Map<string, string>();
  for (const n of view.nodes)
    if (['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.op) && !layers.some((l) => l.name === n.name))
      notQuantizable.set(n.name, `a ${n.op} whose weight is not a constant`);
    else if (!layers.some((l) => l.name === n.name)) notQuantizable.set(n.name, `a ${n.op}, not a quantizable op`);
  const prepared: PreparedLayer[] = layers.map((l) => {
    const w = view.initializers.get(l.weight)!;
    const node = view.nodes.find((n) => n.name === l.name)!;
    return {
      ...l,
      activationInput: l.weightInput === 1 ? 0 : 1,
      data: w.data instanceof Float32Array ? w.data : Float32Array.from(w.data as ArrayLike<number>),
      dims: [...w.dims],
      channelAxis: channelAxis(l, node, w.dims.length),
    };
  });
  return { name: model.name, bytes: encodeModel(m), opset: model.opset, layers: prepared, foldedBatchNorm: folded, notQuantizable };
}

/** Builds the quantized model in memory; `ranges` (by layer) must cover the quantized activations. */
export function applyConfig(p: PreparedModel, config: QuantConfig, opts: QuantizeOptions, ranges: Map<string, Range>): { bytes: Uint8Array; summary: ExportSummary } {
  const format = checkFormat(opts.format);
  const perChannel = opts.perChannel ?? false;
  const cfg = checkConfig(config, p.layers.map((l) => l.name), p.name, p.notQuantizable);
  const m = decodeModel(p.bytes, p.name);
  const g = m.graph!;
  let opset = p.opset;
  const warnings: string[] = [];
  const masks = checkMasks(opts.masks, p.layers, p.name);
  const layers = p.layers.filter((l) => cfg.weights.has(l.name) || cfg.activations.has(l.name) || masks.has(l.name));
  const needsQdq = cfg.activations.size > 0 || (format === 'qdq' && cfg.weights.size > 0);
  if (needsQdq && opset < 10) {
    // Opset 10 brought QuantizeLinear/DequantizeLinear, and onnxruntime's QDQ optimizer inserts
    // Round (opset 11), so an older model is raised to 11: Slice and Clip move their attributes to
    // inputs; a model with an op whose meaning changed otherwise (Pad, Resize, TopK, ...) is refused.
    const blocking = [...new Set(m.graph!.node.filter((n) => isDefault(n.domain) && UNSAFE_FOR_11.has(n.opType)).map((n) => n.opType))];
    if (opset < 7 || blocking.length)
      throw new InvalidModelError(
        `${p.name} uses opset ${opset}, but QuantizeLinear/DequantizeLinear need opset >= 10` +
          (blocking.length ? ` and its ${blocking.join(', ')} node(s) changed meaning by opset 11` : '') +
          '; convert the model to opset >= 11 first (e.g. onnx.version_converter)',
      );
    warnings.push(`opset raised from ${opset} to 11 for QuantizeLinear/DequantizeLinear (Slice and Clip attributes moved to inputs)`);
    upgradeAttrsToInputs(m);
    opset = 11;
    for (const o of m.opsetImport) if (isDefault(o.domain)) o.version = 11;
  }
  if ([...cfg.activations.values()].some((b) => b > 8) && opset < 11)
    throw new InvalidModelError(`${p.name} uses opset ${opset}; activations with more than 8 bits need Round (opset >= 11)`);
  if (format === 'qdq' && perChannel && cfg.weights.size > 0 && opset < 13)
    throw new InvalidOptionError(`Expected a model of opset >= 13 for option perChannel (per-axis DequantizeLinear) but ${p.name} uses opset ${opset}`);
  let int4 = false;
  if (format === 'qdq' && [...cfg.weights.values()].some((b) => b <= 4)) {
    if (opset >= 21) int4 = true;
    else if (opts.raiseOpset && canRaiseTo21(m, opset)) {
      int4 = true;
      opset = 21;
      for (const o of m.opsetImport) if (isDefault(o.domain)) o.version = 21;
    } else
      warnings.push(
        opts.raiseOpset
          ? `weights of <= 4 bits are stored as int8: opset ${opset} cannot be raised to 21 safely`
          : `weights of <= 4 bits are stored as int8 (int4 needs opset 21; pass raiseOpset to raise it where safe)`,
      );
  }
  if (int4 && toNum(m.irVersion) < 10) m.irVersion = 10;

  const taken = new Set<string>([...g.initializer.map((t) => t.name), ...g.input.map((i) => i.name), ...g.node.flatMap((n) => [...n.input, ...n.output, n.name])]);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const refs = (name: string) => g.node.reduce((a, n) => a + n.input.filter((t) => t === name).length, 0) + (g.output.some((o) => o.name === name) ? 1 : 0);
  const addInit = (name: string, elemType: string, dims: number[], data: ArrayLike<number>) => g.initializer.push(dataToTensorProto(name, { dims, elemType, data }) as unknown as TensorProto);
  const before = new Map<NodeProto, NodeProto[]>();
  const mk = (node: NodeProto, op: string, input: string[], output: string[], attribute: Partial<AttributeProto>[] = []) => {
    const n = { opType: op, name: unique(`${node.name}_${op}`), domain: '', input, output, attribute } as unknown as NodeProto;
    before.set(node, [...(before.get(node) ?? []), n]);
    return n;
  };
  const intAttr = (name: string, i: number) => ({ name, type: AttrType.INT, i });
  const exported: ExportedLayer[] = [];
  const released: string[] = [];

  for (const l of layers) {
    const node = g.node.find((n) => n.name === l.name)!;
    const e: ExportedLayer = { name: l.name, op: l.op };
    const wb = cfg.weights.get(l.name);
    const mask = masks.get(l.name);
    if (wb !== undefined || mask) {
      const wName = node.input[l.weightInput]!;
      const orig = inits.get(wName);
      if (!orig || orig.dataType !== 1)
        throw new InvalidModelError(`Export ${wb === undefined ? 'prunes' : 'quantizes'} float32 weights, but the weight '${wName}' of layer '${l.name}' is ${orig ? elemTypeName(orig.dataType) : 'not an initializer'}`);
      const data = mask ? maskedData(l.data, mask) : l.data;
      if (mask) e.pruned = { count: prunedCount(mask), sparsity: data.length ? prunedCount(mask) / data.length : 0 };
      const axis = perChannel ? l.channelAxis : undefined;
      const qw = wb === undefined ? undefined : quantizeWeight(data, l.dims, wb, axis, cfg.weightClip.get(l.name));
      let storage: NonNullable<ExportedLayer['weight']>['storage'] = 'float32';
      if (format === 'fake-quant' || !qw) {
        const values = qw ? qw.values : data;
        if (refs(wName) === 1) setTensorData(orig, l.dims, values);
        else {
          const name = unique(`${wName}_${qw ? 'quantized' : 'pruned'}`);
          addInit(name, 'float32', l.dims, values);
          node.input[l.weightInput] = name;
        }
      } else {
        storage = wb! <= 4 && int4 ? 'int4' : wb! <= 8 ? 'int8' : opset >= 21 ? 'int16' : 'int32';
        const qName = unique(`${wName}_quantized`);
        const sName = unique(`${wName}_scale`);
        const out = unique(`${wName}_dequantized`);
        if (storage === 'int4') g.initializer.push(int4Tensor(qName, l.dims, qw.q));
        else addInit(qName, storage, l.dims, qw.q);
        addInit(sName, 'float32', axis === undefined ? [] : [qw.scale.length], qw.scale);
        mk(node, 'DequantizeLinear', [qName, sName], [out], axis === undefined ? [] : [intAttr('axis', axis)]);
        node.input[l.weightInput] = out;
        released.push(wName);
      }
      if (qw) e.weight = { name: l.weight, bits: wb!, storage, axis, scale: Array.from(qw.scale) };
    }
    const ab = cfg.activations.get(l.name);
    if (ab !== undefined) {
      const r = ranges.get(l.name);
      if (!r) throw new InvalidOptionError(`Expected an activation range for layer '${l.name}' in option calibration but received none`);
      const a = node.input[l.activationInput]!;
      const keep = cfg.activationClip.get(l.name) ?? 1;
      const q = activationParams(r.min * keep, r.max * keep, ab);
      const base = `${a}_${l.name}`;
      const s = unique(`${base}_scale`);
      const z = unique(`${base}_zero_point`);
      addInit(s, 'float32', [], [q.scale]);
      const out = unique(`${base}_dequantized`);
      if (ab <= 8) {
        addInit(z, 'uint8', [], [q.zeroPoint]);
        const qt = unique(`${base}_quantized`);
        mk(node, 'QuantizeLinear', [a, s, z], [qt]);
        if (ab === 8) mk(node, 'DequantizeLinear', [qt, s, z], [out]);
        else if (opset >= 12) {
          const lo = unique(`${base}_qmin`);
          const hi = unique(`${base}_qmax`);
          addInit(lo, 'uint8', [], [0]);
          addInit(hi, 'uint8', [], [q.qmax]);
          const qc = unique(`${base}_clipped`);
          mk(node, 'Clip', [qt, lo, hi], [qc]);
          mk(node, 'DequantizeLinear', [qc, s, z], [out]);
        } else {
          const dq = unique(`${base}_unclipped`);
          mk(node, 'DequantizeLinear', [qt, s, z], [dq]);
          const top = Math.fround((q.qmax - q.zeroPoint) * q.scale);
          const bottom = Math.fround(-q.zeroPoint * q.scale);
          if (opset >= 11) {
            const lo = unique(`${base}_min`);
            const hi = unique(`${base}_max`);
            addInit(lo, 'float32', [], [bottom]);
            addInit(hi, 'float32', [], [top]);
            mk(node, 'Clip', [dq, lo, hi], [out]);
          } else mk(node, 'Clip', [dq], [out], [{ name: 'min', type: AttrType.FLOAT, f: bottom }, { name: 'max', type: AttrType.FLOAT, f: top }]);
        }
      } else {
        // b > 8: y = (Clip(Round(x / s) + z, 0, 2^b - 1) - z) * s in float
        addInit(z, 'float32', [], [q.zeroPoint]);
        const lo = unique(`${base}_qmin`);
        const hi = unique(`${base}_qmax`);
        addInit(lo, 'float32', [], [0]);
        addInit(hi, 'float32', [], [q.qmax]);
        const t = [1, 2, 3, 4, 5].map((i) => unique(`${base}_fq${i}`));
        mk(node, 'Div', [a, s], [t[0]!]);
        mk(node, 'Round', [t[0]!], [t[1]!]);
        mk(node, 'Add', [t[1]!, z], [t[2]!]);
        mk(node, 'Clip', [t[2]!, lo, hi], [t[3]!]);
        mk(node, 'Sub', [t[3]!, z], [t[4]!]);
        mk(node, 'Mul', [t[4]!, s], [out]);
      }
      node.input[l.activationInput] = out;
      e.activation = { name: l.activation, bits: ab, min: r.min, max: r.max, scale: q.scale, zeroPoint: q.zeroPoint };
    }
    exported.push(e);
  }
  g.node = g.node.flatMap((n) => [...(before.get(n) ?? []), n]);
  const gone = new Set(released.filter((t) => refs(t) === 0));
  g.initializer = g.initializer.filter((t) => !gone.has(t.name));
  g.input = g.input.filter((i) => !gone.has(i.name));
  return {
    bytes: encodeModel(m),
    summary: { model: p.name, format, opset, irVersion: toNum(m.irVersion), perChannel, foldedBatchNorm: p.foldedBatchNorm, layers: exported, warnings },
  };
}

/** int4 TensorProto (data type 22): two values per byte, the first in the low nibble. */
function int4Tensor(name: string, dims: number[], q: Int32Array): TensorProto {
  const raw = new Uint8Array(Math.ceil(q.length / 2));
  for (let i = 0; i < q.length; i++) raw[i >> 1]! |= (q[i]! & 0xf) << ((i & 1) * 4);
  return { name, dims, dataType: 22, rawData: raw } as unknown as TensorProto;
}

function checkFormat(format: unknown): ExportFormat {
  if (format === undefined) return 'qdq';
  if (format !== 'fake-quant' && format !== 'qdq')
    throw new InvalidOptionError(`Expected 'fake-quant' or 'qdq' for option format but received ${JSON.stringify(format)}`);
  return format;
}

/** The quantized model's bytes and a summary, without writing anything. */
export async function quantizeModel(model: string | Uint8Array, config: QuantConfig, opts: QuantizeOptions = {}): Promise<{ bytes: Uint8Array; summary: ExportSummary }> {
  checkFormat(opts.format);
  const p = prepareQuantization(model, { foldBatchNorm: opts.foldBatchNorm });
  const cfg = checkConfig(config, p.layers.map((l) => l.name), p.name, p.notQuantizable);
  checkMasks(opts.masks, p.layers, p.name);
  const ranges = await resolveRanges(p, p.layers.filter((l) => cfg.activations.has(l.name)), opts);
  return applyConfig(p, config, opts, ranges);
}

/**
 * Quantizes `model` as `config` says and writes it to `out` (atomically; on any error nothing is
 * written and an existing `out` is left as it was). See the module comment for the formats.
 */
export async function exportModel(model: string | Uint8Array, config: QuantConfig, out: string, opts: QuantizeOptions = {}): Promise<ExportSummary> {
  if (typeof out !== 'string' || out === '')
    throw new InvalidOptionError(`Expected an output file path for option out but received ${JSON.stringify(out)}`);
  const { bytes, summary } = await quantizeModel(model, config, opts);
  writeFileAtomic(out, bytes, 'out');
  return { ...summary, path: resolve(out) };
}
