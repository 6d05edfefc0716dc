/**
 * normalize(): turn a read ONNX model into the plain Graph the engine runs. Constant nodes become
 * initializers, Identity/Dropout disappear, nodes get unique names and a topological order, shape
 * subgraphs are folded for concrete input shapes, every tensor gets its dims, and ops the engine
 * cannot run are reported together in one UnsupportedOpError.
 */
import {
  EngineError, InvalidInputError, InvalidModelError, InvalidOptionError, UnsupportedOpError,
} from '../errors.js';
import type { UnsupportedOpInfo } from '../errors.js';
import { evalNode, evalShapeOp, FOLDABLE_OPS } from './fold.js';
import {
  assignNames, constantValue, normDomain, removeDeadNodes, removePassThrough, toValueInfo, toWorkNode, topoSort,
} from './graph-prep.js';
import type { TensorSource } from './graph-prep.js';
import { describe } from './node-utils.js';
import type { WorkNode } from './node-utils.js';
import { tensorProtoToData } from './proto.js';
import type { OnnxModel } from './read.js';
import { inferShapes } from './shape-inference.js';
import type { Graph, GraphNode, TensorData, ValueInfo } from './types.js';

export interface NormalizeOptions {
  /** a concrete shape per non-constant graph input; inputs with all-static dims may be left out */
  inputShapes?: Record<string, number[]>;
  /**
   * op types (default domain) the engine can run. The returned Graph's initializers live in
   * SharedArrayBuffers (float weights float32, integer constants int64).
   */
  supportedOps: ReadonlySet<string>;
  /** name used in messages (defaults to the model's file name) */
  modelName?: string;
  /**
   * When an input has dynamic dims and no shape was given, return the graph without folding the
   * shape subgraphs (for inspection) instead of throwing InvalidInputError.
   */
  allowDynamic?: boolean;
}

type DeclaredInput = ValueInfo & { rankKnown: boolean };

function fmt(dims: readonly (number | string | null)[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** Concrete shapes of the graph inputs; `dynamic` explains the first input that has none. */
function resolveInputShapes(
  inputs: DeclaredInput[],
  given: Record<string, number[]> | undefined,
  modelName: string,
): { shapes: Map<string, number[]>; dynamic?: string } {
  const names = inputs.map((i) => i.name);
  if (given !== undefined && (given === null || typeof given !== 'object')) {
    throw new InvalidOptionError(`Expected an object of input name -> shape for option inputShapes but received ${String(given)}.`);
  }
  for (const k of Object.keys(given ?? {})) {
    if (!names.includes(k)) {
      throw new InvalidOptionError(
        `Expected option inputShapes to name inputs of ${modelName} (${names.map((n) => `'${n}'`).join(', ')}) but received '${k}'.`,
      );
    }
  }
  const shapes = new Map<string, number[]>();
  let dynamic: string | undefined;
  for (const inp of inputs) {
    const g = given?.[inp.name];
    if (g !== undefined) {
      if (!Array.isArray(g) || !g.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new InvalidOptionError(
          `Expected an array of non-negative integers for inputShapes['${inp.name}'] but received ${JSON.stringify(g)}.`,
        );
      }
      if (inp.rankKnown && g.length !== inp.dims.length) {
        throw new InvalidInputError(
          `Expected a shape of rank ${inp.dims.length} for input '${inp.name}' of ${modelName} (declared ${fmt(inp.dims)}) but received [${g.join(', ')}].`,
        );
      }
      inp.dims.forEach((d, i) => {
        if (inp.rankKnown && typeof d === 'number' && d !== g[i]) {
          throw new InvalidInputError(
            `Expected ${d} for dim ${i} of input '${inp.name}' of ${modelName} (declared ${fmt(inp.dims)}) but received [${g.join(', ')}].`,
          );
        }
      });
      shapes.set(inp.name, [...g]);
      continue;
    }
    const dyn = inp.dims.findIndex((d) => typeof d !== 'number');
    if (!inp.rankKnown || dyn >= 0) {
      dynamic ??= !inp.rankKnown
        ? `Input '${inp.name}' of ${modelName} declares no shape`
        : `Input '${inp.name}' of ${modelName} has a dynamic dim ${dyn}${inp.dims[dyn] ? ` ('${inp.dims[dyn]}')` : ''} in ${fmt(inp.dims)}`;
      continue;
    }
    shapes.set(inp.name, inp.dims as number[]);
  }
  if (dynamic) dynamic += `; pass inputShapes: { '${inputs.find((i) => !shapes.has(i.name))!.name}': [...] } with a concrete shape.`;
  return { shapes, dynamic };
}

interface Propagation {
  remaining: WorkNode[];
  /** why a node's output shapes are unknown */
  issues: Map<WorkNode, string>;
}

/** Fold constant nodes and infer shapes, in topological order. */
function propagate(nodes: WorkNode[], consts: Map<string, TensorData>, shapes: Map<string, number[]>, opset: number): Propagation {
  const remaining: WorkNode[] = [];
  const issues = new Map<WorkNode, string>();
  for (const n of nodes) {
    if (n.domain !== '') {
      issues.set(n, `it is a ${n.domain} op`);
      remaining.push(n);
      continue;
    }
    const values = n.inputs.map((t) => (t ? consts.get(t) : undefined));
    const inShapes = n.inputs.map((t) => (t ? shapes.get(t) : undefined));
    let folded: TensorData[] | undefined;
    if (inShapes[0] && (n.op === 'Shape' || n.op === 'Size')) folded = evalShapeOp(n, inShapes[0], opset);
    else if (FOLDABLE_OPS.has(n.op) && n.inputs.every((t) => !t || consts.has(t))) folded = evalNode(n, values, opset);
    if (folded) {
      n.outputs.forEach((o, i) => {
        const v = folded![i];
        if (o && v) {
          consts.set(o, v);
          shapes.set(o, v.dims);
        }
      });
      continue;
    }
    remaining.push(n);
    const r = inferShapes({ node: n, opset, shapes: inShapes, values });
    if (r.kind === 'ok') r.shapes.forEach((s, i) => { if (n.outputs[i]) shapes.set(n.outputs[i]!, s); });
    else issues.set(n, r.kind === 'pending' ? r.reason : 'onnx-fit has no shape rule for it');
  }
  return { remaining, issues };
}

function checkSupported(nodes: WorkNode[], supported: ReadonlySet<string>, shapesKnown: boolean, modelName: string): void {
  const unsupported = (n: WorkNode): boolean => n.domain !== '' || !supported.has(n.op);
  const hard = nodes.filter((n) => unsupported(n) && (n.domain !== '' || !FOLDABLE_OPS.has(n.op)));
  // foldable ops that stayed (their inputs are computed at run time) count only when folding had its chance
  const bad = hard.length > 0 ? hard : shapesKnown ? nodes.filter(unsupported) : [];
  if (bad.length === 0) return;
  const groups = new Map<string, UnsupportedOpInfo>();
  for (const n of bad) {
    const key = `${n.domain}::${n.op}`;
    const g = groups.get(key) ?? { opType: n.op, domain: n.domain, count: 0, nodes: [] };
    g.count++;
    g.nodes.push(n.name);
    groups.set(key, g);
  }
  throw new UnsupportedOpError([...groups.values()], modelName);
}

function checkShapes(nodes: WorkNode[], issues: Map<WorkNode, string>, shapes: Map<string, number[]>, modelName: string): void {
  for (const n of nodes) {
    const missing = n.outputs.find((o) => o && !shapes.has(o));
    if (missing === undefined) continue;
    const why = issues.get(n) ?? 'its rule returned no shape for this output';
    if (why.startsWith('onnx-fit has no shape rule')) {
      throw new EngineError(`onnx-fit has no shape rule for op ${n.op} (${describe(n)} in ${modelName}); please report this.`);
    }
    throw new InvalidModelError(
      `Could not infer the shape of tensor '${missing}' of ${describe(n)} in ${modelName}: ${why}. ` +
        'onnx-fit needs static shapes; export the model with this computation folded or check the input shapes.',
    );
  }
}

/** Copy a constant into a SharedArrayBuffer so worker threads can read it without a copy (DESIGN.md). */
function toShared(t: TensorData): TensorData {
  if (t.data.buffer instanceof SharedArrayBuffer) return t;
  const sab = new SharedArrayBuffer(t.data.byteLength);
  const data =
    t.data instanceof BigInt64Array ? new BigInt64Array(sab)
    : t.data instanceof Float64Array ? new Float64Array(sab)
    : new Float32Array(sab);
  data.set(t.data as never);
  return { dims: t.dims, type: t.type, data };
}

function toGraphNode(n: WorkNode): GraphNode {
  return { op: n.op, name: n.name, domain: n.domain, inputs: n.inputs, outputs: n.outputs, attrs: n.attrs };
}

/** Normalize a model read by readModel into the engine's Graph (see the module comment). */
export function normalize(model: OnnxModel, opts: NormalizeOptions): Graph {
  if (!opts || !(opts.supportedOps instanceof Set)) {
    throw new InvalidOptionError(`Expected a Set of op types for option supportedOps but received ${typeof opts?.supportedOps}.`);
  }
  const modelName = opts.modelName ?? model.name;
  const g = model.proto.graph;
  if (!g) throw new InvalidModelError(`${modelName} has no graph.`);
  if ((g.sparseInitializer ?? []).length > 0) {
    throw new InvalidModelError(`${modelName} has sparse initializers, which onnx-fit does not read. Densify them before export.`);
  }
  const src: TensorSource = { baseDir: model.baseDir, modelName };
  const consts = new Map<string, TensorData>();
  for (const t of g.initializer ?? []) consts.set(t.name, tensorProtoToData(t, src.baseDir, modelName));
  let nodes: WorkNode[] = [];
  (g.node ?? []).forEach((n, i) => {
    if (normDomain(n.domain) === '' && n.opType === 'Constant') consts.set(n.output[0] ?? '', constantValue(n, src));
    else nodes.push(toWorkNode(n, i, src));
  });
  const inputs = (g.input ?? []).map(toValueInfo).filter((v) => !consts.has(v.name));
  const outputs = (g.output ?? []).map(toValueInfo);
  const outNames = new Set(outputs.map((o) => o.name));

  assignNames(nodes);
  nodes = removePassThrough(nodes, outNames, consts);
  nodes = topoSort(nodes, new Set([...inputs.map((i) => i.name), ...consts.keys()]), modelName);
  nodes = removeDeadNodes(nodes, outNames);

  const { shapes, dynamic } = resolveInputShapes(inputs, opts.inputShapes, modelName);
  for (const [k, v] of consts) shapes.set(k, v.dims);
  const { remaining, issues } = propagate(nodes, consts, shapes, model.opset);
  nodes = removeDeadNodes(remaining, outNames);
  checkSupported(nodes, opts.supportedOps, !dynamic, modelName);
  if (dynamic && !opts.allowDynamic) throw new InvalidInputError(dynamic);
  if (!dynamic) checkShapes(nodes, issues, shapes, modelName);

  const produced = new Set([...inputs.map((i) => i.name), ...nodes.flatMap((n) => n.outputs)]);
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...outNames]);
  const initializers = new Map<string, TensorData>();
  for (const [k, v] of consts) if (read.has(k) && !produced.has(k)) initializers.set(k, toShared(v));
  for (const o of outNames) {
    if (!produced.has(o) && !initializers.has(o)) {
      throw new InvalidModelError(`Graph output '${o}' of ${modelName} is produced by no node, initializer or input. Re-export the model.`);
    }
  }
  const finalShapes = new Map<string, number[]>();
  for (const t of [...inputs.map((i) => i.name), ...initializers.keys(), ...nodes.flatMap((n) => n.outputs)]) {
    const s = shapes.get(t);
    if (t && s) finalShapes.set(t, s);
  }
  return {
    opset: model.opset,
    nodes: nodes.map(toGraphNode),
    initializers,
    inputs: inputs.map(({ name, elemType, dims }) => ({ name, elemType, dims })),
    outputs: outputs.map(({ name, elemType, dims }) => ({ name, elemType, dims })),
    shapes: finalShapes,
  };
}
