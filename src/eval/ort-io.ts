/** onnxruntime-node plumbing shared by calibration, evaluation and the eval workers. */
import * as ort from 'onnxruntime-node';
import { InvalidInputError, InvalidModelError } from '../errors.js';
import type { ModelProto } from '../onnx/proto.js';
import { graphInputs } from '../onnx/read.js';
import type { ValueInfo } from '../onnx/types.js';

/** One thread per session: parallelism comes from the worker pool. */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
};

/** The model's declared non-constant inputs (an input of unknown type is fed as float32). */
export const modelInputs = (proto: ModelProto): ValueInfo[] => graphInputs(proto, 'float32');

/** Batch size to use: 1 when an input has a fixed batch of 1, else the requested one. */
export function effectiveBatch(inputs: ValueInfo[], requested: number): number {
  return inputs.some((i) => i.dims[0] === 1) ? 1 : requested;
}

export async function createSession(bytes: Uint8Array, what = 'the model'): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  } catch (e) {
    throw new InvalidModelError(`onnxruntime-node could not load ${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** Float32 batch data -> an ORT tensor of the input's declared element type. */
export function toOrtTensor(info: ValueInfo | undefined, dims: number[], data: Float32Array): ort.Tensor {
  const type = info?.elemType ?? 'float32';
  switch (type) {
    case 'float32': case 'unknown': return new ort.Tensor('float32', data, dims);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(data), dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(Math.round(v))), dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(data), dims);
    case 'uint8': return new ort.Tensor('uint8', Uint8Array.from(data), dims);
    case 'int8': return new ort.Tensor('int8', Int8Array.from(data), dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(data, (v) => (v ? 1 : 0)), dims);
    default:
      throw new InvalidInputError(`Input '${info?.name}' has element type ${type}, which onnx-fit cannot feed to onnxruntime; expected a float or integer input`);
  }
}

export function feeds(inputs: Record<string, { dims: number[]; data: Float32Array }>, declared: ValueInfo[]): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) out[name] = toOrtTensor(declared.find((d) => d.name === name), t.dims, t.data);
  return out;
}

/** An ORT output as float32 values. */
export function outputData(t: ort.Tensor): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float32Array.from(d, (v) => Number(v));
  return Float32Array.from(d as ArrayLike<number>);
}
