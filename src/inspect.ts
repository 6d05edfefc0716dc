/** inspect(): what a model holds, what onnx-fit can do with it, and whether the engine agrees with onnxruntime. */
import { UnsupportedOpError, type UnsupportedOpInfo } from './errors.js';
import { readModel, type OnnxModel } from './onnx/read.js';
import { declaredInputs, prepareModel, type PrepareOptions } from './engine/load.js';
import { EngineModel, type Inputs } from './engine/model.js';
import { agreement, type Agreement } from './eval/agreement.js';
import { xorshift32 } from './random.js';
import { elemTypeName, toNum } from './onnx/proto.js';
import type { ValueInfo } from './onnx/types.js';

export interface InspectOptions extends PrepareOptions {
  /** inputs to run; random (seeded, uniform [0,1)) when omitted */
  inputs?: Inputs;
  seed?: number;
  /** skip the engine/onnxruntime comparison */
  compare?: boolean;
}

export interface InspectReport {
  model: string;
  opset: number;
  producer: string;
  inputs: (ValueInfo & { prepared?: number[] })[];
  outputs: ValueInfo[];
  layers: { name: string; op: string; weight: string; count: number }[];
  unsupported: UnsupportedOpInfo[];
  agreement: Agreement[];
}

function declaredOutputs(model: OnnxModel): ValueInfo[] {
  return model.proto.graph!.output.map((v) => {
    const tt = v.type?.tensorType;
    return {
      name: v.name,
      elemType: tt ? elemTypeName(tt.elemType) : 'unknown',
      dims: (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue) : null)),
    };
  });
}

function randomInputs(shapes: Record<string, number[]>, seed: number): Inputs {
  const next = xorshift32(seed);
  const out: Inputs = {};
  for (const [name, dims] of Object.entries(shapes)) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = next();
    out[name] = { dims, data };
  }
  return out;
}

export async function inspect(source: string | Uint8Array, opts: InspectOptions = {}): Promise<InspectReport> {
  const model = readModel(source, { name: opts.name });
  const report: InspectReport = {
    model: model.name,
    opset: model.opset,
    producer: [model.producer.name, model.producer.version].filter(Boolean).join(' '),
    inputs: declaredInputs(model),
    outputs: declaredOutputs(model),
    layers: [],
    unsupported: [],
    agreement: [],
  };
  const inputShapes = { ...(opts.inputShapes ?? {}) };
  for (const [name, t] of Object.entries(opts.inputs ?? {})) inputShapes[name] = t.dims;
  let prepared;
  try {
    prepared = prepareModel(model, { ...opts, inputShapes });
  } catch (e) {
    if (e instanceof UnsupportedOpError) {
      report.unsupported = e.ops;
      return report;
    }
    throw e;
  }
  report.layers = prepared.layers.map((l) => ({ name: l.name, op: l.op, weight: l.weight, count: l.count }));
  for (const i of report.inputs) i.prepared = prepared.inputShapes[i.name];
  if (opts.compare === false) return report;
  const engine = new EngineModel(prepared.graph);
  try {
    const inputs = opts.inputs ?? randomInputs(prepared.inputShapes, opts.seed ?? 1);
    report.agreement = await agreement(model, engine, inputs);
  } finally {
    engine.dispose();
  }
  return report;
}
