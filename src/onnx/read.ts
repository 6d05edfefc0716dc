/**
 * readModel: load an ONNX file (or bytes), check that it is a usable ONNX model, and resolve
 * external data so the rest of src/onnx only ever sees in-memory tensors.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { InvalidModelError, ModelLoadError } from '../errors.js';
import { AttrType, decodeModel, elemTypeName, readExternalBytes, toNum } from './proto.js';
import type { ValueInfo } from './types.js';
import type { GraphProto, ModelProto, TensorProto } from './proto.js';

export const MIN_OPSET = 7;
export const MAX_OPSET = 23;

export interface OnnxModel {
  /** the decoded ModelProto; external data already loaded into raw_data */
  proto: ModelProto;
  /** name used in messages: opts.name, the file's base name, or 'the model buffer' */
  name: string;
  /** absolute path when read from a file */
  path?: string;
  /** directory of the file (external data is resolved from here) */
  baseDir?: string;
  /** opset version per domain; the default domain is '' ('ai.onnx' is folded into '') */
  opsets: Map<string, number>;
  /** opset of the default domain (0 when the graph uses only other domains) */
  opset: number;
  irVersion: number;
  producer: { name: string; version: string };
}

export interface ReadModelOptions {
  /** name used in error messages (defaults to the file name) */
  name?: string;
}

function loadBytes(path: string, name: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) {
      throw new ModelLoadError(`Expected an ONNX file for ${name} but ${path} is a directory. Pass the path of the .onnx file.`);
    }
    size = st.size;
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`;
    throw new ModelLoadError(`Model file ${path} ${why}. Check the path (relative paths resolve from ${process.cwd()}).`, {
      cause: e,
    });
  }
  if (size === 0) {
    throw new ModelLoadError(`Model file ${path} is empty (0 bytes). Re-export or re-download the model.`);
  }
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ModelLoadError(`Model file ${path} cannot be read (${(e as Error).message}).`, { cause: e });
  }
}

function opsetMap(proto: ModelProto): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of proto.opsetImport ?? []) {
    const domain = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    m.set(domain, toNum(o.version));
  }
  return m;
}

/** Visit every TensorProto of a graph, including Constant attributes and subgraphs. */
function forEachTensor(g: GraphProto, fn: (t: TensorProto) => void): void {
  for (const t of g.initializer ?? []) fn(t);
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t) fn(a.t);
      for (const t of a.tensors ?? []) fn(t);
      if (a.g) forEachTensor(a.g, fn);
      for (const sg of a.graphs ?? []) forEachTensor(sg, fn);
    }
  }
}

function resolveExternalData(g: GraphProto, baseDir: string | undefined, name: string): void {
  forEachTensor(g, (t) => {
    if (t.dataLocation !== 1) return;
    t.rawData = readExternalBytes(t, baseDir, name);
    t.dataLocation = 0;
    t.externalData = [];
  });
}

/**
 * Read and validate an ONNX model from a path or from its bytes. Throws ModelLoadError for files
 * that are missing, empty, truncated or not ONNX, and InvalidModelError for unsupported opsets.
 */
export function readModel(source: string | Uint8Array, opts: ReadModelOptions = {}): OnnxModel {
  let bytes: Uint8Array;
  let path: string | undefined;
  let baseDir: string | undefined;
  let name: string;
  if (typeof source === 'string') {
    path = resolve(source);
    baseDir = dirname(path);
    name = opts.name ?? basename(path);
    bytes = loadBytes(path, name);
  } else if (source instanceof Uint8Array) {
    name = opts.name ?? 'the model buffer';
    if (source.length === 0) throw new ModelLoadError(`${name} is empty (0 bytes); expected the bytes of an ONNX model.`);
    bytes = source;
  } else {
    throw new ModelLoadError(
      `Expected a file path or a Uint8Array for the model but received ${source === null ? 'null' : typeof source}.`,
    );
  }
  const where = path ?? name;
  const proto = decodeModel(bytes, where);
  const opsets = opsetMap(proto);
  if (!proto.graph || !proto.opsetImport || proto.opsetImport.length === 0) {
    throw new ModelLoadError(
      `${where} decodes as protobuf but is not an ONNX model (it has no ${proto.graph ? 'opset_import' : 'graph'}). ` +
        'Check that you passed the .onnx file and not another artifact (e.g. a PyTorch checkpoint or external data file).',
    );
  }
  const opset = opsets.get('') ?? 0;
  if (opset === 0 && (proto.graph.node ?? []).some((n) => !n.domain || n.domain === 'ai.onnx')) {
    throw new InvalidModelError(
      `${where} uses default-domain ONNX ops but imports no opset for that domain (only ${[...opsets.keys()].join(', ')}). ` +
        'Re-export the model with an opset_import for the default domain.',
    );
  }
  // a graph of custom-domain ops only has no default opset; normalize() reports those ops as unsupported
  if (opset !== 0 && (opset < MIN_OPSET || opset > MAX_OPSET)) {
    throw new InvalidModelError(
      `${where} uses ONNX opset ${opset}, but onnx-fit supports opsets ${MIN_OPSET} to ${MAX_OPSET}. ` +
        'Convert it, e.g. with onnx.version_converter.convert_version(model, 17).',
    );
  }
  checkGraphShape(proto.graph, where);
  resolveExternalData(proto.graph, baseDir, where);
  return {
    proto,
    name,
    path,
    baseDir,
    opsets,
    opset,
    irVersion: toNum(proto.irVersion),
    producer: { name: proto.producerName ?? '', version: proto.producerVersion ?? '' },
  };
}

/** Cheap structural checks that catch random bytes that happen to decode as a ModelProto. */
function checkGraphShape(g: GraphProto, where: string): void {
  if ((g.output ?? []).length === 0) {
    throw new ModelLoadError(`${where} has a graph without outputs; it is not a usable ONNX model. Re-export it.`);
  }
  for (const n of g.node ?? []) {
    if (!n.opType) {
      throw new ModelLoadError(`${where} contains a node without an op type ('${n.name}'); the file is corrupt. Re-export it.`);
    }
    for (const a of n.attribute ?? []) {
      if (a.type === AttrType.GRAPH && !a.g) {
        throw new ModelLoadError(`${where}: attribute '${a.name}' of node '${n.name}' has no graph; the file is corrupt.`);
      }
    }
  }
}

/** The declared non-constant inputs of a model (dims: numbers, symbolic names, or null). */
export function graphInputs(proto: ModelProto, unknownType = 'unknown'): ValueInfo[] {
  const g = proto.graph!;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  return (g.input ?? [])
    .filter((v) => !inits.has(v.name))
    .map((v) => {
      const tt = v.type?.tensorType;
      const dims = (tt?.shape?.dim ?? []).map((d) => {
        if (d.dimParam) return d.dimParam;
        if (d.dimValue !== undefined && d.dimValue !== null) {
          const n = toNum(d.dimValue);
          return n > 0 ? n : null;
        }
        return null;
      });
      return { name: v.name, elemType: tt ? elemTypeName(tt.elemType) : unknownType, dims };
    });
}
