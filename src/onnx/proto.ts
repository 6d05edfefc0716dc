/**
 * The ONNX protobuf boundary: loads proto/onnx.proto with protobufjs (once), decodes/encodes
 * ModelProto, and converts TensorProto <-> TensorData. Everything protobuf-shaped is typed by the
 * small interfaces below (protobufjs camelCases field names: raw_data -> rawData).
 */
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { InvalidModelError, ModelLoadError } from '../errors.js';
import type { TensorData } from './types.js';

/** An int64 field as protobufjs decodes it (a Long when the `long` package is present). */
export type Int64Like = number | { low: number; high: number; unsigned?: boolean; toNumber(): number };

export interface StringStringEntryProto { key: string; value: string }
export interface TensorProto {
  name: string;
  dims: Int64Like[];
  dataType: number;
  floatData: number[];
  int32Data: number[];
  int64Data: Int64Like[];
  doubleData: number[];
  uint64Data: Int64Like[];
  stringData: Uint8Array[];
  rawData?: Uint8Array | number[];
  dataLocation?: number;
  externalData: StringStringEntryProto[];
}
export interface AttributeProto {
  name: string;
  type: number;
  f: number;
  i: Int64Like;
  s: Uint8Array;
  t?: TensorProto | null;
  g?: GraphProto | null;
  floats: number[];
  ints: Int64Like[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  refAttrName?: string;
}
export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  attribute: AttributeProto[];
}
export interface DimensionProto { dimValue?: Int64Like; dimParam?: string; value?: string }
export interface TypeProto {
  tensorType?: { elemType: number; shape?: { dim: DimensionProto[] } | null } | null;
}
export interface ValueInfoProto { name: string; type?: TypeProto | null }
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  sparseInitializer: unknown[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}
export interface OperatorSetIdProto { domain: string; version: Int64Like }
export interface ModelProto {
  irVersion: Int64Like;
  opsetImport: OperatorSetIdProto[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: Int64Like;
  graph?: GraphProto | null;
  functions: unknown[];
}

export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** TensorProto.DataType code -> element type name used in ValueInfo / builders. */
export const ELEM_TYPE_NAMES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 14: 'complex64',
  15: 'complex128', 16: 'bfloat16',
};
const ELEM_TYPE_CODES: Record<string, number> = Object.fromEntries(
  Object.entries(ELEM_TYPE_NAMES).map(([k, v]) => [v, Number(k)]),
);
ELEM_TYPE_CODES.float = 1;
ELEM_TYPE_CODES.double = 11;

export function elemTypeName(code: number): string {
  return ELEM_TYPE_NAMES[code] ?? `unknown(${code})`;
}
export function elemTypeCode(name: string): number {
  const code = ELEM_TYPE_CODES[name];
  if (code === undefined) {
    throw new InvalidModelError(
      `Expected an ONNX element type name (${Object.keys(ELEM_TYPE_CODES).join(', ')}) but received '${name}'.`,
    );
  }
  return code;
}

const FLOAT_CODES = new Set([1, 10, 11, 16]);
const INT_CODES = new Set([2, 3, 4, 5, 6, 7, 9, 12, 13]);
const BYTE_WIDTH: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

let cachedRoot: protobuf.Root | undefined;
function root(): protobuf.Root {
  if (!cachedRoot) {
    const file = fileURLToPath(new URL('../../proto/onnx.proto', import.meta.url));
    try {
      cachedRoot = protobuf.loadSync(file);
    } catch (e) {
      throw new ModelLoadError(
        `Could not load the ONNX schema ${file}: ${(e as Error).message}. Reinstall onnx-fit (the proto/ folder is part of the package).`,
        { cause: e },
      );
    }
  }
  return cachedRoot;
}
function modelType(): protobuf.Type {
  return root().lookupType('onnx.ModelProto');
}

/** Decode ONNX bytes; throws a ModelLoadError naming `name` when the bytes are not a protobuf. */
export function decodeModel(bytes: Uint8Array, name = 'the model'): ModelProto {
  try {
    return modelType().decode(bytes) as unknown as ModelProto;
  } catch (e) {
    throw new ModelLoadError(
      `Could not decode ${name} as an ONNX protobuf (${(e as Error).message}); the file is truncated or not an ONNX model. ` +
        'Re-export or re-download it.',
      { cause: e },
    );
  }
}

/** Encode a ModelProto (a decoded message or a plain object with camelCase fields). */
export function encodeModel(obj: ModelProto | Record<string, unknown>): Uint8Array {
  const T = modelType();
  const msg = T.fromObject(obj as Record<string, unknown>);
  return T.encode(msg).finish();
}

export function toNum(v: Int64Like | undefined | null): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
export function toBig(v: Int64Like): bigint {
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  const big = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? big : BigInt.asIntN(64, big);
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

const LITTLE = endianness() === 'LE';

/** Read `count` little-endian elements of ONNX type `code` from a private, aligned copy of `raw`. */
function fromRaw(raw: Uint8Array, code: number, count: number, what: string): Float32Array | BigInt64Array {
  const width = BYTE_WIDTH[code];
  if (width === undefined) throw unsupportedType(code, what);
  if (raw.length !== width * count) {
    throw new InvalidModelError(
      `Expected ${width * count} bytes of raw_data for tensor ${what} (${count} x ${elemTypeName(code)}) but received ${raw.length}. ` +
        'The model file is corrupt; re-export it.',
    );
  }
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  const buf = copy.buffer;
  const dv = new DataView(buf);
  const ints = (get: (i: number) => bigint): BigInt64Array => {
    const out = new BigInt64Array(count);
    for (let i = 0; i < count; i++) out[i] = get(i);
    return out;
  };
  const floats = (get: (i: number) => number): Float32Array => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = get(i);
    return out;
  };
  switch (code) {
    case 1: return LITTLE ? new Float32Array(buf) : floats((i) => dv.getFloat32(i * 4, true));
    case 11: return floats((i) => dv.getFloat64(i * 8, true));
    case 10: return floats((i) => halfToFloat(dv.getUint16(i * 2, true)));
    case 16: return floats((i) => { u32[0] = dv.getUint16(i * 2, true) << 16; return f32[0]!; });
    case 7: return LITTLE ? new BigInt64Array(buf) : ints((i) => dv.getBigInt64(i * 8, true));
    case 13: return ints((i) => BigInt.asIntN(64, dv.getBigUint64(i * 8, true)));
    case 6: return ints((i) => BigInt(dv.getInt32(i * 4, true)));
    case 12: return ints((i) => BigInt(dv.getUint32(i * 4, true)));
    case 5: return ints((i) => BigInt(dv.getInt16(i * 2, true)));
    case 4: return ints((i) => BigInt(dv.getUint16(i * 2, true)));
    case 3: return ints((i) => BigInt(dv.getInt8(i)));
    case 2: return ints((i) => BigInt(dv.getUint8(i)));
    case 9: return ints((i) => (dv.getUint8(i) ? 1n : 0n));
    default: throw unsupportedType(code, what);
  }
}

function unsupportedType(code: number, what: string): InvalidModelError {
  return new InvalidModelError(
    `Tensor ${what} has element type ${elemTypeName(code)}, which onnx-fit cannot read; ` +
      'only float (float32/float64/float16/bfloat16) and integer/bool tensors are supported.',
  );
}

/** Entries of TensorProto.external_data as a record. */
export function externalInfo(t: TensorProto): { location: string; offset: number; length?: number } {
  const kv: Record<string, string> = {};
  for (const e of t.externalData ?? []) kv[e.key] = e.value;
  if (!kv.location) {
    throw new InvalidModelError(`Tensor '${t.name}' is marked as external data but has no 'location' entry. Re-export the model.`);
  }
  const offset = kv.offset ? Number(kv.offset) : 0;
  const length = kv.length ? Number(kv.length) : undefined;
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
    throw new InvalidModelError(`Tensor '${t.name}' has an invalid external data offset/length (${kv.offset}/${kv.length}).`);
  }
  return { location: kv.location, offset, length };
}

/**
 * Read the bytes of an external-data tensor from beside the model. `baseDir` is the model's
 * directory; `modelName` names the model in errors.
 */
export function readExternalBytes(t: TensorProto, baseDir: string | undefined, modelName = 'the model'): Uint8Array {
  const { location, offset, length } = externalInfo(t);
  if (baseDir === undefined) {
    throw new ModelLoadError(
      `Tensor '${t.name}' of ${modelName} stores its data in the external file '${location}', but the model was given as a ` +
        'buffer, so there is no directory to find that file in. Pass the model path instead of its bytes.',
    );
  }
  const file = resolve(baseDir, location);
  const escapes = (from: string, to: string): boolean => {
    const rel = relative(from, to);
    return rel.startsWith('..') || isAbsolute(rel);
  };
  if (isAbsolute(location) || escapes(baseDir, file)) {
    throw new ModelLoadError(
      `Tensor '${t.name}' of ${modelName} points to external data '${location}' outside the model's directory ${baseDir}; ` +
        'onnx-fit refuses to read it. Move the data file next to the model and fix the location.',
    );
  }
  let size: number;
  try {
    size = statSync(file).size;
    if (escapes(realpathSync(baseDir), realpathSync(file))) throw new Error('resolves outside the model directory');
  } catch (e) {
    throw new ModelLoadError(
      `External data file '${location}' for tensor '${t.name}' of ${modelName} could not be opened at ${file} ` +
        `(${(e as Error).message}). Keep the data file next to the model, under the name the model expects.`,
      { cause: e },
    );
  }
  const len = length ?? size - offset;
  if (offset + len > size || len < 0) {
    throw new ModelLoadError(
      `External data file ${file} is too short for tensor '${t.name}' of ${modelName}: expected ${len} bytes at offset ` +
        `${offset} but the file has ${size} bytes. The data file is truncated or belongs to another model.`,
    );
  }
  const out = new Uint8Array(len);
  const fd = openSync(file, 'r');
  try {
    let done = 0;
    while (done < len) {
      const n = readSync(fd, out, done, len - done, offset + done);
      if (n <= 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNum);
}

/**
 * Convert a TensorProto to TensorData: float types -> Float32Array 'float32', integer and bool
 * types -> BigInt64Array 'int64'. External data is read relative to `baseDir`.
 */
export function tensorProtoToData(t: TensorProto, baseDir?: string, modelName?: string): TensorData {
  const dims = tensorDims(t);
  const count = dims.reduce((a, b) => a * b, 1);
  const code = t.dataType;
  const what = `'${t.name}'`;
  if (!FLOAT_CODES.has(code) && !INT_CODES.has(code)) throw unsupportedType(code, what);
  const type = FLOAT_CODES.has(code) ? 'float32' : 'int64';
  if (t.dataLocation === 1) {
    return { dims, type, data: fromRaw(readExternalBytes(t, baseDir, modelName), code, count, what) };
  }
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const bytes = raw instanceof Uint8Array ? raw : Uint8Array.from(raw);
    return { dims, type, data: fromRaw(bytes, code, count, what) };
  }
  const src: ArrayLike<number | Int64Like> =
    code === 1 ? t.floatData
    : code === 11 ? t.doubleData
    : code === 7 ? t.int64Data
    : code === 12 || code === 13 ? t.uint64Data
    : t.int32Data;
  const n = src?.length ?? 0;
  if (n !== count) {
    throw new InvalidModelError(
      `Expected ${count} values in tensor ${what} (dims [${dims.join(', ')}]) but it holds ${n}. The model file is corrupt; re-export it.`,
    );
  }
  if (type === 'float32') {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const v = src[i] as number;
      out[i] = code === 10 ? halfToFloat(v) : code === 16 ? (u32[0] = (v & 0xffff) << 16, f32[0]!) : v;
    }
    return { dims, type, data: out };
  }
  const out = new BigInt64Array(count);
  for (let i = 0; i < count; i++) {
    const v = src[i] as Int64Like;
    out[i] = code === 9 ? (toNum(v) ? 1n : 0n) : toBig(v);
  }
  return { dims, type, data: out };
}

/** Input accepted by dataToTensorProto: TensorData or any ONNX element type with plain data. */
export interface RawTensorInput {
  dims: number[];
  elemType: string;
  data: ArrayLike<number> | ArrayLike<bigint> | BigInt64Array;
}

/** A plain TensorProto object (camelCase) with little-endian raw_data, ready for encodeModel. */
export interface TensorProtoObject {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

function writeRaw(code: number, data: ArrayLike<number | bigint>, name: string): Uint8Array {
  const width = BYTE_WIDTH[code];
  if (width === undefined) throw unsupportedType(code, `'${name}'`);
  const n = data.length;
  const out = new Uint8Array(n * width);
  const dv = new DataView(out.buffer);
  const num = (i: number): number => Number(data[i]);
  const big = (i: number): bigint => {
    const v = data[i]!;
    return typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
  };
  for (let i = 0; i < n; i++) {
    switch (code) {
      case 1: dv.setFloat32(i * 4, num(i), true); break;
      case 11: dv.setFloat64(i * 8, num(i), true); break;
      case 10: dv.setUint16(i * 2, floatToHalf(num(i)), true); break;
      case 16: f32[0] = num(i); dv.setUint16(i * 2, u32[0]! >>> 16, true); break;
      case 7: dv.setBigInt64(i * 8, big(i), true); break;
      case 13: dv.setBigUint64(i * 8, BigInt.asUintN(64, big(i)), true); break;
      case 6: dv.setInt32(i * 4, num(i), true); break;
      case 12: dv.setUint32(i * 4, num(i), true); break;
      case 5: dv.setInt16(i * 2, num(i), true); break;
      case 4: dv.setUint16(i * 2, num(i), true); break;
      case 3: dv.setInt8(i, num(i)); break;
      case 2: dv.setUint8(i, num(i)); break;
      case 9: dv.setUint8(i, num(i) ? 1 : 0); break;
      default: throw unsupportedType(code, `'${name}'`);
    }
  }
  return out;
}

/** Build a TensorProto object (raw_data, little-endian) from TensorData or {dims, elemType, data}. */
export function dataToTensorProto(name: string, t: TensorData | RawTensorInput): TensorProtoObject {
  const elemType = 'elemType' in t ? t.elemType : t.type;
  const code = elemTypeCode(elemType);
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new InvalidModelError(
      `Expected ${count} values for tensor '${name}' (dims [${t.dims.join(', ')}]) but received ${t.data.length}.`,
    );
  }
  return { name, dims: [...t.dims], dataType: code, rawData: writeRaw(code, t.data as ArrayLike<number | bigint>, name) };
}
