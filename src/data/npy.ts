/** .npy files (NumPy format 1.0-3.0): C-order arrays of float32/float64/uint8/int32/int64. */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic.js';
import { InvalidInputError } from '../errors.js';

export type NpyData = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

export interface NpyArray {
  dims: number[];
  dtype: 'float32' | 'float64' | 'uint8' | 'int32' | 'int64';
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Record<string, NpyArray['dtype']> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '<i4': 'int32',
  '<i8': 'int64',
};

export function parseNpy(bytes: Uint8Array, name = 'the .npy data'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m))
    throw new InvalidInputError(`${name} is not a .npy file (missing the \\x93NUMPY magic); save arrays with numpy.save`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new InvalidInputError(`${name} is truncated (header length missing)`);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new InvalidInputError(`${name} uses .npy format version ${major}, which is not supported (1, 2 or 3 are)`);
  }
  if (start + headerLen > bytes.length) throw new InvalidInputError(`${name} is truncated (header runs past the end)`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new InvalidInputError(`${name} has a malformed .npy header: ${header.trim()}`);
  const dtype = DESCR[descr];
  if (!dtype)
    throw new InvalidInputError(
      `${name} holds dtype '${descr}'; expected one of float32 (<f4), float64 (<f8), uint8 (|u1), int32 (<i4), int64 (<i8). ` +
        `Convert it with arr.astype(numpy.float32) before saving`,
    );
  if (fortran === 'True')
    throw new InvalidInputError(`${name} is stored in Fortran order; save a C-order array (numpy.ascontiguousarray)`);
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const width = dtype === 'uint8' ? 1 : dtype === 'float32' || dtype === 'int32' ? 4 : 8;
  const need = count * width;
  if (bytes.length - dataStart < need)
    throw new InvalidInputError(
      `${name} is truncated: shape (${dims.join(', ')}) needs ${need} bytes of data but ${bytes.length - dataStart} are present`,
    );
  // A fresh, aligned copy (Buffer#slice would be a view into a pooled ArrayBuffer).
  const copy = new Uint8Array(bytes.subarray(dataStart, dataStart + need));
  const buf = copy.buffer;
  const data: NpyData =
    dtype === 'float32'
      ? new Float32Array(buf, 0, count)
      : dtype === 'float64'
        ? new Float64Array(buf, 0, count)
        : dtype === 'uint8'
          ? new Uint8Array(buf, 0, count)
          : dtype === 'int32'
            ? new Int32Array(buf, 0, count)
            : new BigInt64Array(buf, 0, count);
  return { dims, dtype, data };
}

export function readNpy(path: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw new InvalidInputError(`Cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  return parseNpy(bytes, path);
}

export function encodeNpy(arr: NpyArray): Uint8Array {
  const descr = Object.entries(DESCR).find(([, v]) => v === arr.dtype)![0];
  const shape = arr.dims.length === 1 ? `(${arr.dims[0]},)` : `(${arr.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + arr.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength), 10 + header.length);
  return out;
}

/** Writes atomically: temp file, then rename. */
export function writeNpy(path: string, arr: NpyArray): void {
  writeFileAtomic(path, encodeNpy(arr), 'path');
}

/** Converts any numeric npy data to float32 (inputs of the engine). */
export function toFloat32(arr: NpyArray): Float32Array {
  if (arr.data instanceof Float32Array) return arr.data;
  if (arr.data instanceof BigInt64Array) return Float32Array.from(arr.data, (v) => Number(v));
  return Float32Array.from(arr.data as ArrayLike<number>);
}
