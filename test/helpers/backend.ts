/**
 * Runs the ONNX backend node tests (Debian's libonnx-testdata) on the engine: each test directory
 * holds model.onnx and test_data_set_N/{input,output}_K.pb.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { readModel } from '../../src/onnx/read.js';
import { normalize } from '../../src/onnx/normalize.js';
import { decodeModel, encodeModel, tensorProtoToData, toNum, type TensorProto } from '../../src/onnx/proto.js';
import { EngineModel } from '../../src/engine/model.js';
import { supportedOps } from '../../src/engine/load.js';
import { OnnxFitError } from '../../src/errors.js';
import type { TensorData } from '../../src/onnx/types.js';

export const NODE_TEST_DIR = '/usr/share/libonnx-testdata/data/node';

let tensorType: protobuf.Type | undefined;
export function readTensorPb(path: string): TensorProto {
  tensorType ??= protobuf.loadSync(new URL('../../proto/onnx.proto', import.meta.url).pathname).lookupType('onnx.TensorProto');
  return tensorType.decode(readFileSync(path)) as unknown as TensorProto;
}

export type Outcome =
  | { kind: 'pass'; ops: string[]; maxErr: number }
  | { kind: 'fail'; ops: string[]; message: string }
  | { kind: 'error'; ops: string[]; code: string; message: string }
  | { kind: 'skip'; ops: string[]; reason: string };

const FLOAT_TYPES = new Set([1, 10, 11, 16]); // float, float16, double, bfloat16
const INT_TYPES = new Set([2, 3, 4, 5, 6, 7, 9, 12, 13]);

/** ONNX backend default tolerance: |a-b| <= atol + rtol * |b| with rtol 1e-3, atol 1e-7. */
function within(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-3, atol = 1e-7): { ok: boolean; worst: number } {
  let ok = got.length === want.length;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const excess = d - (atol + rtol * Math.abs(want[i]!));
    if (got[i] === want[i] || (Number.isNaN(want[i]!) && Number.isNaN(got[i]!))) continue;
    if (!(excess <= 0)) ok = false;
    if (!(d <= worst)) worst = d;
  }
  return { ok, worst };
}

/** Float inputs that are parameters (not data) and must be constants for shape inference. */
const PARAM_INPUTS: Record<string, number[]> = { Resize: [1, 2, 3], Upsample: [1] };

/**
 * Ops whose definition did not change between opset 1-6 and opset 7: their opset-6 node tests are
 * run as opset 7 (onnx-fit reads opset 7 and later).
 */
const SAME_SINCE_6 = new Set([
  'Abs', 'Ceil', 'Clip', 'Concat', 'Conv', 'ConvTranspose', 'Elu', 'Exp', 'Flatten', 'Floor', 'GlobalAveragePool',
  'GlobalMaxPool', 'HardSigmoid', 'LeakyRelu', 'Log', 'LogSoftmax', 'MatMul', 'Neg', 'Reciprocal', 'Relu', 'Selu',
  'Sigmoid', 'Softmax', 'Softplus', 'Sqrt', 'Tanh', 'Transpose',
]);

export function runNodeTest(dir: string, supported: Set<string>): Outcome {
  const file = join(dir, 'model.onnx');
  let model;
  try {
    model = readModel(file);
  } catch (e) {
    if (!(e instanceof OnnxFitError)) throw e;
    const bytes = readFileSync(file);
    const proto = decodeModel(bytes, file);
    const ops = [...new Set(proto.graph!.node.map((n) => n.opType))].sort();
    const def = proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
    if (!def || toNum(def.version) > 6 || !ops.every((o) => SAME_SINCE_6.has(o)))
      return { kind: 'skip', ops, reason: `opset ${def ? toNum(def.version) : '?'} (onnx-fit reads opset 7-23)` };
    def.version = 7;
    model = readModel(encodeModel(proto), { name: file });
  }
  const g = model.proto.graph!;
  const params = new Set(g.node.flatMap((n) => (PARAM_INPUTS[n.opType] ?? []).map((i) => n.input[i]).filter((x): x is string => !!x)));
  const ops = [...new Set(g.node.map((n) => n.opType))].sort();
  const unsupported = ops.filter((o) => !supported.has(o));
  const dataSet = join(dir, 'test_data_set_0');
  if (!existsSync(dataSet)) return { kind: 'skip', ops, reason: 'no test data' };
  const inits = new Set(g.initializer.map((t) => t.name));
  const graphInputs = g.input.filter((v) => !inits.has(v.name));
  if ([...graphInputs, ...g.output].some((v) => !v.type?.tensorType))
    return { kind: 'skip', ops, reason: 'sequence/optional/map values' };
  const inputs = graphInputs.map((_, k) => readTensorPb(join(dataSet, `input_${k}.pb`)));
  if (inputs.some((i) => !FLOAT_TYPES.has(i.dataType) && !INT_TYPES.has(i.dataType)))
    return { kind: 'skip', ops, reason: 'string/complex input' };
  const outputs = g.output.map((_, k) => readTensorPb(join(dataSet, `output_${k}.pb`)));
  if (outputs.some((o) => !FLOAT_TYPES.has(o.dataType))) return { kind: 'skip', ops, reason: 'non-float output' };
  // Integer inputs (shapes, axes, pads, indices) become constants, as in exported models; float
  // inputs stay runtime inputs.
  const feeds: Record<string, { dims: number[]; data: Float32Array }> = {};
  const inputShapes: Record<string, number[]> = {};
  graphInputs.forEach((v, k) => {
    const t = inputs[k]!;
    t.name = v.name;
    if (FLOAT_TYPES.has(t.dataType) && !params.has(v.name)) {
      const d = tensorProtoToData(t);
      feeds[v.name] = { dims: d.dims, data: d.data as Float32Array };
      inputShapes[v.name] = d.dims;
    } else {
      g.initializer.push(t);
    }
  });
  let graph;
  try {
    graph = normalize(model, { inputShapes, supportedOps: supported, modelName: dir });
  } catch (e) {
    if (e instanceof OnnxFitError) {
      if (unsupported.length) return { kind: 'skip', ops, reason: `unsupported op ${unsupported.join(', ')}` };
      return { kind: 'error', ops, code: e.code, message: e.message };
    }
    throw e;
  }
  let engine: EngineModel | undefined;
  try {
    engine = new EngineModel(graph);
    const got = engine.run(feeds);
    let maxErr = 0;
    for (let k = 0; k < g.output.length; k++) {
      const name = g.output[k]!.name;
      const want: TensorData = tensorProtoToData(outputs[k]!);
      const res = got[name];
      if (!res) return { kind: 'fail', ops, message: `output ${name} missing` };
      if (res.dims.join(',') !== want.dims.join(','))
        return { kind: 'fail', ops, message: `output ${name} dims [${res.dims}] != [${want.dims}]` };
      const w = within(res.data as Float32Array, want.data as Float32Array);
      maxErr = Math.max(maxErr, w.worst);
      if (!w.ok) return { kind: 'fail', ops, message: `output ${name} differs (max abs err ${w.worst})` };
    }
    return { kind: 'pass', ops, maxErr };
  } catch (e) {
    if (e instanceof OnnxFitError) return { kind: 'error', ops, code: e.code, message: e.message };
    throw e;
  } finally {
    engine?.dispose();
  }
}

export function listNodeTests(): string[] {
  if (!existsSync(NODE_TEST_DIR)) return [];
  return readdirSync(NODE_TEST_DIR).filter((d) => d.startsWith('test_')).sort();
}

export { supportedOps };
