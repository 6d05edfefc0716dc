/**
 * From a model file or buffer to a graph the engine runs: read, pick a concrete input shape,
 * normalize (fold shape subgraphs for that shape), find the quantizable layers, prepare.
 */
import { InvalidInputError, InvalidOptionError } from '../errors.js';
import { graphInputs, readModel, type OnnxModel } from '../onnx/read.js';
import { normalize } from '../onnx/normalize.js';
import { findQuantizableLayers } from '../onnx/layers.js';
import type { Graph, QuantizableLayer, ValueInfo } from '../onnx/types.js';
import { loadAddon } from './addon.js';
import { EngineModel } from './model.js';

export interface PrepareOptions {
  /** batch size used for a dynamic first dimension (default 1) */
  batch?: number;
  /** concrete shapes for inputs with dynamic dims, by input name */
  inputShapes?: Record<string, number[]>;
  /** name used in messages */
  name?: string;
}

export interface PreparedModel {
  model: OnnxModel;
  graph: Graph;
  layers: QuantizableLayer[];
  inputShapes: Record<string, number[]>;
}

/** The model's declared non-constant inputs. */
export function declaredInputs(model: OnnxModel): ValueInfo[] {
  return graphInputs(model.proto);
}

export function supportedOps(): Set<string> {
  return new Set(loadAddon().supportedOps());
}

/** Chooses a concrete shape per input: explicit shapes win; a dynamic first dim takes `batch`. */
export function resolveInputShapes(model: OnnxModel, opts: PrepareOptions = {}): Record<string, number[]> {
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1)
    throw new InvalidOptionError(`Expected a positive integer for option batch but received ${String(opts.batch)}`);
  const inputs = declaredInputs(model);
  const given = opts.inputShapes ?? {};
  for (const k of Object.keys(given))
    if (!inputs.some((i) => i.name === k))
      throw new InvalidOptionError(
        `Option inputShapes names '${k}' but ${model.name} has inputs ${inputs.map((i) => `'${i.name}'`).join(', ')}`,
      );
  const out: Record<string, number[]> = {};
  for (const inp of inputs) {
    const shape = given[inp.name];
    if (shape) {
      if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1))
        throw new InvalidOptionError(`Expected positive integer dims for input '${inp.name}' but received ${JSON.stringify(shape)}`);
      if (shape.length !== inp.dims.length && inp.dims.length > 0)
        throw new InvalidInputError(
          `Input '${inp.name}' of ${model.name} has rank ${inp.dims.length} ([${inp.dims.join(', ')}]) but the shape given has rank ${shape.length}`,
        );
      inp.dims.forEach((d, i) => {
        if (typeof d === 'number' && d !== shape[i])
          throw new InvalidInputError(
            `Input '${inp.name}' of ${model.name} has fixed dim ${i} = ${d} but the shape given says ${shape[i]}`,
          );
      });
      out[inp.name] = shape;
      continue;
    }
    out[inp.name] = inp.dims.map((d, i) => {
      if (typeof d === 'number') return d;
      if (i === 0) return batch;
      throw new InvalidInputError(
        `Input '${inp.name}' of ${model.name} has a dynamic dim ${i} (${d ?? '?'}) in [${inp.dims.map((x) => x ?? '?').join(', ')}]; ` +
          `give its shape, e.g. inputShapes: { '${inp.name}': [...] } or --shape ${inp.name}=${inp.dims.map((x, j) => (j === 0 ? batch : typeof x === 'number' ? x : 'N')).join('x')}`,
      );
    });
  }
  return out;
}

export function prepareModel(source: string | Uint8Array | OnnxModel, opts: PrepareOptions = {}): PreparedModel {
  const model = isOnnxModel(source) ? source : readModel(source, { name: opts.name });
  const inputShapes = resolveInputShapes(model, opts);
  const graph = normalize(model, { inputShapes, supportedOps: supportedOps(), modelName: model.name });
  const layers = findQuantizableLayers(graph);
  return { model, graph, layers, inputShapes };
}

export function loadEngineModel(source: string | Uint8Array | OnnxModel, opts: PrepareOptions = {}): PreparedModel & { engine: EngineModel } {
  const prepared = prepareModel(source, opts);
  return { ...prepared, engine: new EngineModel(prepared.graph) };
}

function isOnnxModel(v: unknown): v is OnnxModel {
  return typeof v === 'object' && v !== null && 'proto' in v && 'opsets' in v;
}
