/** Forward agreement between the engine and onnxruntime-node on the same inputs. */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/proto.js';
import type { OnnxModel } from '../onnx/read.js';
import type { EngineModel, Inputs } from '../engine/model.js';

export interface Agreement {
  output: string;
  dims: number[];
  /** max_i |engine_i - ort_i| */
  maxAbsDiff: number;
  /** maxAbsDiff / max_i |ort_i| (relative to the output's scale; 0 when both are all zero) */
  maxRelDiff: number;
}

export async function ortSession(model: OnnxModel, threads = 1): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  return model.path ? ort.InferenceSession.create(model.path, opts) : ort.InferenceSession.create(encodeModel(model.proto), opts);
}

export async function runOnnxruntime(session: ort.InferenceSession, inputs: Inputs): Promise<Record<string, { dims: number[]; data: Float32Array }>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    feeds[name] = new ort.Tensor('float32', data, t.dims);
  }
  const res = await session.run(feeds);
  const out: Record<string, { dims: number[]; data: Float32Array }> = {};
  for (const [name, t] of Object.entries(res)) {
    const d = t.data;
    out[name] = { dims: Array.from(t.dims, Number), data: d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>) };
  }
  return out;
}

export function compareOutputs(name: string, got: ArrayLike<number>, want: ArrayLike<number>, dims: number[]): Agreement {
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    const s = Math.abs(want[i]!);
    if (s > scale) scale = s;
  }
  if (got.length !== want.length) maxAbs = Number.POSITIVE_INFINITY;
  const rel = maxAbs === 0 ? 0 : scale === 0 ? Number.POSITIVE_INFINITY : maxAbs / scale;
  return { output: name, dims, maxAbsDiff: maxAbs, maxRelDiff: rel };
}

/** Runs both on `inputs` and compares every output of the model. */
export async function agreement(model: OnnxModel, engine: EngineModel, inputs: Inputs): Promise<Agreement[]> {
  const session = await ortSession(model);
  try {
    const want = await runOnnxruntime(session, inputs);
    const got = await engine.runAsync(inputs);
    return engine.outputNames.map((name) => {
      const g = got[name]!;
      const w = want[name];
      if (!w) return { output: name, dims: g.dims, maxAbsDiff: Number.POSITIVE_INFINITY, maxRelDiff: Number.POSITIVE_INFINITY };
      return compareOutputs(name, g.data as Float32Array, w.data, g.dims);
    });
  } finally {
    await session.release();
  }
}
