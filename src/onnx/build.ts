/**
 * A small ONNX model builder, used by tests and by export. Attributes may be given as AttrValue
 * objects or as plain JS values: a number is an INT, a number[] INTS, a string STRING; floats must
 * be spelled `{ type: 'float', value }` / `{ type: 'floats', value }`; tensors
 * `{ type: 'tensor', value: { dims, elemType | type, data } }`.
 */
import { InvalidOptionError } from '../errors.js';
import { AttrType, dataToTensorProto, elemTypeCode, encodeModel } from './proto.js';
import type { RawTensorInput, TensorProtoObject } from './proto.js';
import type { AttrValue, Graph, TensorData } from './types.js';

export type BuildAttr =
  | AttrValue
  | { type: 'tensor'; value: TensorData | RawTensorInput }
  | number
  | number[]
  | string;

export interface BuildNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, BuildAttr>;
}

export interface BuildValueInfo {
  name: string;
  /** element type name ('float32', 'int64', ...); defaults to 'float32' */
  elemType?: string;
  /** dims: numbers, symbolic names, or null for unknown; omitted = unknown rank */
  dims?: (number | string | null)[];
}

export interface BuildInitializer {
  name: string;
  dims: number[];
  /** element type name: 'float32' | 'int64' | 'int32' | 'uint8' | 'bool' | 'float16' | ... */
  type: string;
  data: ArrayLike<number> | ArrayLike<bigint>;
}

export interface BuildModelSpec {
  opset: number;
  nodes: BuildNode[];
  inputs: BuildValueInfo[];
  outputs: BuildValueInfo[];
  initializers?: BuildInitializer[];
  /** extra domains, e.g. { 'com.microsoft': 1 } */
  opsets?: Record<string, number>;
  irVersion?: number;
  graphName?: string;
  producerName?: string;
}

/** The IR version that ships with a default-domain opset (never below 7, which onnxruntime needs for unlisted initializers). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

function attrToProto(name: string, a: BuildAttr, where: string): Record<string, unknown> {
  if (typeof a === 'number') {
    if (!Number.isInteger(a)) {
      throw new InvalidOptionError(
        `Expected an integer for attribute '${name}' of ${where} but received ${a}; write { type: 'float', value: ${a} } for a FLOAT attribute.`,
      );
    }
    return { name, type: AttrType.INT, i: a };
  }
  if (typeof a === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(a) };
  if (Array.isArray(a)) {
    if (!a.every(Number.isInteger)) {
      throw new InvalidOptionError(
        `Expected integers for attribute '${name}' of ${where} but received [${a.join(', ')}]; write { type: 'floats', value: [...] } for FLOATS.`,
      );
    }
    return { name, type: AttrType.INTS, ints: a };
  }
  switch (a.type) {
    case 'int': return { name, type: AttrType.INT, i: a.value };
    case 'float': return { name, type: AttrType.FLOAT, f: a.value };
    case 'ints': return { name, type: AttrType.INTS, ints: a.value };
    case 'floats': return { name, type: AttrType.FLOATS, floats: a.value };
    case 'string': return { name, type: AttrType.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor': return { name, type: AttrType.TENSOR, t: dataToTensorProto('', a.value) };
    default:
      throw new InvalidOptionError(`Unknown attribute kind for '${name}' of ${where}: ${JSON.stringify(a)}.`);
  }
}

function valueInfoToProto(v: BuildValueInfo): Record<string, unknown> {
  const tensorType: Record<string, unknown> = { elemType: elemTypeCode(v.elemType ?? 'float32') };
  if (v.dims) {
    tensorType.shape = {
      dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { name: v.name, type: { tensorType } };
}

export function initializerToProto(init: BuildInitializer): TensorProtoObject {
  return dataToTensorProto(init.name, { dims: init.dims, elemType: init.type, data: init.data });
}

/** The ModelProto as a plain object (camelCase fields), before encoding. */
export function makeModelObject(spec: BuildModelSpec): Record<string, unknown> {
  if (!Number.isInteger(spec.opset) || spec.opset < 1) {
    throw new InvalidOptionError(`Expected a positive integer for option opset but received ${spec.opset}.`);
  }
  const nodes = spec.nodes.map((n, i) => {
    const where = `node ${n.name ?? `#${i}`} (${n.op})`;
    return {
      opType: n.op,
      name: n.name ?? '',
      domain: n.domain ?? '',
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attrToProto(k, v, where)),
    };
  });
  const opsetImport = [{ domain: '', version: spec.opset }];
  for (const [domain, version] of Object.entries(spec.opsets ?? {})) opsetImport.push({ domain, version });
  return {
    irVersion: spec.irVersion ?? irVersionForOpset(spec.opset),
    producerName: spec.producerName ?? 'onnx-fit',
    opsetImport,
    graph: {
      name: spec.graphName ?? 'graph',
      node: nodes,
      initializer: (spec.initializers ?? []).map(initializerToProto),
      input: spec.inputs.map(valueInfoToProto),
      output: spec.outputs.map(valueInfoToProto),
    },
  };
}

/** Build and encode an ONNX model. */
export function makeModel(spec: BuildModelSpec): Uint8Array {
  return encodeModel(makeModelObject(spec));
}

/**
 * Write a Graph back as ONNX (nodes, initializers, inputs with their concrete shapes when known).
 * Used to check normalization against onnxruntime, and as the base of export.
 */
export function graphToModel(graph: Graph, opts: { irVersion?: number; opsets?: Record<string, number> } = {}): Uint8Array {
  const dimsOf = (name: string, declared: (number | string | null)[]): (number | string | null)[] =>
    graph.shapes.get(name) ?? declared;
  return makeModel({
    opset: graph.opset,
    opsets: opts.opsets,
    irVersion: opts.irVersion,
    nodes: graph.nodes.map((n) => ({ op: n.op, name: n.name, domain: n.domain, inputs: n.inputs, outputs: n.outputs, attrs: n.attrs })),
    initializers: [...graph.initializers].map(([name, t]) => ({ name, dims: t.dims, type: t.type, data: t.data })),
    inputs: graph.inputs.map((i) => ({ name: i.name, elemType: i.elemType, dims: dimsOf(i.name, i.dims) })),
    outputs: graph.outputs.map((o) => ({
      name: o.name,
      elemType: o.elemType === 'unknown' ? undefined : o.elemType,
      dims: dimsOf(o.name, o.dims),
    })),
  });
}
