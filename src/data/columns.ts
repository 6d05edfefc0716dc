/**
 * Columns of calibration data: one array per model input (or the labels), read by sample range.
 * In-memory arrays are sliced as views; .npy files are read lazily, only the rows a batch needs
 * (positional reads), so the whole data set is never held in memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InvalidInputError } from '../errors.js';
import type { NpyArray } from './npy.js';

/** Any numeric typed array accepted as data; values are converted to float32 for the engine. */
/** An InvalidInputError whose message starts with a capital letter (messages often start with a name). */
export function inputError(message: string, options?: { cause?: unknown }): InvalidInputError {
  return new InvalidInputError(message.charAt(0).toUpperCase() + message.slice(1), options);
}

export type NumericArray =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Uint16Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array;

/** A C-order array with its dims (axis 0 = samples). An NpyArray is one too. */
export interface TypedArrayWithDims {
  dims: number[];
  data: NumericArray;
}

/** An array given as a .npy path, an NpyArray or a typed array with dims. */
export type ArraySource = string | NpyArray | TypedArrayWithDims;

export interface Column {
  /** e.g. "input 'x' (calib_x.npy)" — used in messages */
  where: string;
  /** full dims, axis 0 the samples */
  dims: number[];
  /** element type name: float32, float64, uint8, int32, int64, ... */
  dtype: string;
  /** true for arrays in memory (checked up front); false for files (checked as read) */
  inMemory: boolean;
  /** the raw values of samples [start, start + count) */
  read(start: number, count: number): NumericArray;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const NPY_DESCR: Record<string, { dtype: string; width: number }> = {
  '<f4': { dtype: 'float32', width: 4 },
  '<f8': { dtype: 'float64', width: 8 },
  '|u1': { dtype: 'uint8', width: 1 },
  '<u1': { dtype: 'uint8', width: 1 },
  '<i4': { dtype: 'int32', width: 4 },
  '<i8': { dtype: 'int64', width: 8 },
};

export function isTypedArrayWithDims(v: unknown): v is TypedArrayWithDims {
  return (
    typeof v === 'object' && v !== null && Array.isArray((v as TypedArrayWithDims).dims) &&
    ArrayBuffer.isView((v as TypedArrayWithDims).data) && !((v as TypedArrayWithDims).data instanceof DataView)
  );
}

export function dtypeOf(a: NumericArray): string {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof BigInt64Array) return 'int64';
  return (a as object).constructor?.name ?? typeof a;
}

export const isIntegerDtype = (dtype: string): boolean => !dtype.startsWith('float');

const fmtDims = (dims: readonly number[]): string => `[${dims.join(', ')}]`;
const rowSize = (dims: readonly number[]): number => dims.slice(1).reduce((a, b) => a * b, 1);

function makeTyped(dtype: string, buf: ArrayBuffer, count: number): NumericArray {
  switch (dtype) {
    case 'float32': return new Float32Array(buf, 0, count);
    case 'float64': return new Float64Array(buf, 0, count);
    case 'uint8': return new Uint8Array(buf, 0, count);
    case 'int32': return new Int32Array(buf, 0, count);
    default: return new BigInt64Array(buf, 0, count);
  }
}

/** Header of a .npy file (format 1.0-3.0), read without loading the data. */
function readNpyHeader(path: string, fd: number): { dims: number[]; dtype: string; width: number; offset: number } {
  const size = fstatSync(fd).size;
  const head = new Uint8Array(12);
  const got = readSync(fd, head, 0, 12, 0);
  if (got < 10 || NPY_MAGIC.some((m, i) => head[i] !== m))
    throw inputError(`${path} is not a .npy file (missing the \\x93NUMPY magic); save arrays with numpy.save`);
  const major = head[6]!;
  const view = new DataView(head.buffer);
  let headerLen: number;
  let start: number;
  if (major === 1) [headerLen, start] = [view.getUint16(8, true), 10];
  else if ((major === 2 || major === 3) && got >= 12) [headerLen, start] = [view.getUint32(8, true), 12];
  else if (major === 2 || major === 3) throw inputError(`${path} is truncated (header length missing)`);
  else throw inputError(`${path} uses .npy format version ${major}, which is not supported (1, 2 or 3 are)`);
  if (start + headerLen > size) throw inputError(`${path} is truncated (header runs past the end)`);
  const hbytes = new Uint8Array(headerLen);
  readSync(fd, hbytes, 0, headerLen, start);
  const header = new TextDecoder().decode(hbytes);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw inputError(`${path} has a malformed .npy header: ${header.trim()}`);
  const d = NPY_DESCR[descr];
  if (!d)
    throw inputError(
      `${path} holds dtype '${descr}'; expected one of float32 (<f4), float64 (<f8), uint8 (|u1), int32 (<i4), int64 (<i8). ` +
        'Convert it with arr.astype(numpy.float32) before saving',
    );
  if (fortran === 'True') throw inputError(`${path} is stored in Fortran order; save a C-order array (numpy.ascontiguousarray)`);
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const offset = start + headerLen;
  const need = dims.reduce((a, b) => a * b, 1) * d.width;
  if (size - offset < need)
    throw inputError(
      `${path} is truncated: shape (${dims.join(', ')}) needs ${need} bytes of data but ${size - offset} are present`,
    );
  return { dims, dtype: d.dtype, width: d.width, offset };
}

function fileColumn(path: string, where: string): Column {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw inputError(`Cannot read ${where}: ${(cause as Error).message}. Check the path (relative paths resolve from ${process.cwd()}).`, { cause });
  }
  let h: ReturnType<typeof readNpyHeader>;
  try {
    h = readNpyHeader(path, fd);
  } finally {
    closeSync(fd);
  }
  const row = rowSize(h.dims);
  return {
    where,
    dims: h.dims,
    dtype: h.dtype,
    inMemory: false,
    read(start, count) {
      const n = count * row;
      const bytes = new Uint8Array(n * h.width); // a fresh, aligned buffer
      const f = openSync(path, 'r');
      try {
        let done = 0;
        while (done < bytes.length) {
          const r = readSync(f, bytes, done, bytes.length - done, h.offset + start * row * h.width + done);
          if (r === 0) throw inputError(`${where} became shorter while it was being read; do not rewrite data files during a run`);
          done += r;
        }
      } finally {
        closeSync(f);
      }
      return makeTyped(h.dtype, bytes.buffer, n);
    },
  };
}

function memoryColumn(a: TypedArrayWithDims, where: string): Column {
  if (!a.dims.every((d) => Number.isInteger(d) && d >= 0))
    throw inputError(`Expected non-negative integer dims for ${where} but received ${JSON.stringify(a.dims)}`);
  const n = a.dims.reduce((x, y) => x * y, 1);
  if (a.data.length !== n)
    throw inputError(`${where} has ${a.data.length} elements but its dims ${fmtDims(a.dims)} need ${n}`);
  const row = rowSize(a.dims);
  return {
    where,
    dims: [...a.dims],
    dtype: dtypeOf(a.data),
    inMemory: true,
    read: (start, count) => a.data.subarray(start * row, (start + count) * row) as NumericArray,
  };
}

/** Opens a .npy path or wraps an in-memory array. `what` is e.g. "input 'x'" or "the labels array". */
export function openColumn(src: ArraySource, what: string): Column {
  if (typeof src === 'string') return fileColumn(src, `${what} (${src})`);
  if (isTypedArrayWithDims(src)) return memoryColumn(src, what);
  throw inputError(
    `Expected a .npy path, an NpyArray or { dims, data } with a typed array for ${what} but received ${describeValue(src)}`,
  );
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'a plain array (wrap it: { dims, data: Float32Array.from(...) })';
  if (typeof v !== 'object') return `${typeof v} ${JSON.stringify(v)}`;
  return (v as object).constructor?.name ?? 'an object';
}

/** float32 values for the engine: float32 data is returned as is, anything else converted by value. */
export function toFloat32(raw: NumericArray): Float32Array {
  if (raw instanceof Float32Array) return raw;
  const out = new Float32Array(raw.length);
  if (raw instanceof BigInt64Array) for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]!);
  else out.set(raw);
  return out;
}

/** "[s, i, j, ...]": the multi-index of flat element `flat` of an array with these dims. */
export function multiIndex(dims: readonly number[], flat: number): number[] {
  const idx = new Array<number>(dims.length).fill(0);
  for (let d = dims.length - 1; d >= 0; d--) {
    const n = dims[d]!;
    if (n > 0) {
      idx[d] = flat % n;
      flat = Math.floor(flat / n);
    }
  }
  return idx;
}

/**
 * Throws InvalidInputError naming the first NaN/Inf of `data` (float32 values of samples starting
 * at `start` of a column with full dims `dims`); `raw` tells overflow apart from a stored Inf.
 */
export function checkFinite(data: Float32Array, raw: NumericArray, dims: readonly number[], start: number, where: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v === 0) continue; // finite
    const row = rowSize(dims);
    const flat = start * row + i;
    const r = raw instanceof BigInt64Array ? Number(raw[i]!) : raw[i]!;
    const what = Number.isFinite(r) ? `${r}, which overflows float32,` : String(r);
    throw inputError(
      `${where} holds ${what} at index ${fmtDims(multiIndex(dims, flat))} (sample ${Math.floor(flat / Math.max(row, 1))}, ` +
        `flat element ${flat}); replace non-finite values before calibrating (e.g. numpy.nan_to_num)`,
    );
  }
}
