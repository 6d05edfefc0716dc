/**
 * IDX files (the MNIST / Fashion-MNIST container), gzipped or plain.
 *
 * Layout: a 4-byte big-endian magic 0x0000TTRR (TT the element type, RR the rank), RR big-endian
 * uint32 dims, then the elements in C order. onnx-fit reads unsigned-byte files (TT = 0x08), which is
 * what the (Fashion-)MNIST sets use: labels are 0x00000801 ([N]) and images 0x00000803 ([N, rows, cols]).
 * Gzip is detected from the content (the 1f 8b header), not from the file name.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { InvalidInputError } from '../errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'uint8',
  0x09: 'int8',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** True when the bytes start with the gzip header (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parses the (already decompressed) bytes of an IDX file. */
export function parseIdx(bytes: Uint8Array, name = 'the IDX data'): IdxArray {
  if (bytes.length < 4)
    throw new InvalidInputError(`${name} is truncated: ${bytes.length} byte(s), too short for the 4-byte IDX magic number`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = bytes[2]!;
  const rank = bytes[3]!;
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(type in TYPE_NAMES) || rank === 0)
    throw new InvalidInputError(
      `${name} is not an IDX file: magic number ${hex(magic)}, expected 0x00000801 (labels) or 0x00000803 (images). ` +
        `Pass the (gzipped) *-idx1-ubyte / *-idx3-ubyte files of MNIST or Fashion-MNIST`,
    );
  if (type !== 0x08)
    throw new InvalidInputError(
      `${name} holds ${TYPE_NAMES[type]} elements (IDX magic ${hex(magic)}); onnx-fit reads unsigned-byte IDX files only ` +
        `(magic 0x000008NN, e.g. 0x00000801 labels, 0x00000803 images)`,
    );
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes)
    throw new InvalidInputError(
      `${name} is truncated: its magic ${hex(magic)} announces ${rank} dim(s) (a ${headerBytes}-byte header) but the file has ${bytes.length} bytes`,
    );
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - headerBytes;
  if (have < count)
    throw new InvalidInputError(
      `${name} is truncated: dims [${dims.join(', ')}] need ${count} bytes of data but ${have} are present. Re-download or reinstall the file`,
    );
  if (have > count)
    throw new InvalidInputError(
      `${name} has ${have - count} trailing byte(s) after the [${dims.join(', ')}] data; it is not a well-formed IDX file`,
    );
  return { dims, data: bytes.slice(headerBytes, headerBytes + count) };
}

/** Reads an IDX file, gunzipping it first when it is gzip-compressed. */
export function readIdx(path: string): IdxArray {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (cause) {
    throw new InvalidInputError(`Cannot read IDX file ${path}: ${(cause as Error).message}`, { cause });
  }
  let bytes = raw;
  if (isGzip(raw)) {
    try {
      bytes = gunzipSync(raw);
    } catch (cause) {
      throw new InvalidInputError(
        `${path} is a gzip file that does not decompress (${(cause as Error).message}); it is probably truncated. Re-download or reinstall it`,
        { cause },
      );
    }
  }
  return parseIdx(bytes, path);
}
