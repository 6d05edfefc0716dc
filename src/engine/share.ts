/**
 * Sharing between threads without copies: weights and in-memory data moved once into
 * SharedArrayBuffers, so that every worker's engine borrows the same memory (DESIGN.md "Data flow":
 * weights as Float32Array in SharedArrayBuffers). Structured cloning a typed array over a
 * SharedArrayBuffer shares its memory; over an ArrayBuffer it copies it.
 */
import type { Graph, TensorData, TypedData } from '../onnx/types.js';
import type { DataSpec } from '../data/source.js';
import type { NumericArray } from '../data/columns.js';

type AnyTyped = TypedData | NumericArray;

export const isShared = (a: ArrayBufferView): boolean =>
  typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;

/** A copy of `a` over a SharedArrayBuffer (or `a` itself if it already is). */
export function shareArray<T extends AnyTyped>(a: T): T {
  if (isShared(a)) return a;
  const Ctor = a.constructor as unknown as { new (b: SharedArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(a.byteLength), 0, a.length);
  (out as unknown as { set(s: T): void }).set(a);
  return out;
}

function sameTensor(a: TensorData, b: TensorData): boolean {
  if (a.type !== b.type || a.data.length !== b.data.length || a.dims.length !== b.dims.length) return false;
  if (a.dims.some((d, i) => d !== b.dims[i])) return false;
  if (a.data === b.data) return true;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * The graphs with every initializer moved into shared memory. Initializers with the same name and
 * the same contents in several graphs (the same model prepared for several batch sizes) share one
 * buffer. The graphs are changed in place and returned.
 */
export function shareGraphs<G extends Graph>(graphs: G[]): G[] {
  const seen = new Map<string, TensorData>();
  for (const g of graphs) {
    for (const [name, t] of g.initializers) {
      const prev = seen.get(name);
      if (prev && sameTensor(prev, t)) {
        g.initializers.set(name, prev);
        continue;
      }
      const shared: TensorData = { dims: t.dims, type: t.type, data: shareArray(t.data) };
      g.initializers.set(name, shared);
      if (!prev) seen.set(name, shared);
    }
  }
  return graphs;
}

function shareSource<T>(src: T): T {
  if (typeof src !== 'object' || src === null) return src;
  const s = src as unknown as { dims?: unknown; data?: unknown };
  if (!Array.isArray(s.dims) || !ArrayBuffer.isView(s.data) || s.data instanceof DataView) return src;
  return { ...s, data: shareArray(s.data as AnyTyped) } as T;
}

/**
 * A data spec whose in-memory arrays live in shared memory (one copy in all, instead of one per
 * worker). File paths are left alone: each worker reads only its shard's rows. Iterables are not
 * shareable and are returned unchanged (they run on the calling thread).
 */
export function shareData(spec: DataSpec): DataSpec {
  if (typeof spec !== 'object' || spec === null || !('input' in spec)) return spec;
  const input = spec.input;
  const isSingle = typeof input === 'string' || (typeof input === 'object' && input !== null && 'data' in input && 'dims' in input);
  const sharedInput = isSingle
    ? shareSource(input)
    : Object.fromEntries(Object.entries(input as Record<string, unknown>).map(([k, v]) => [k, shareSource(v)]));
  return { ...spec, input: sharedInput as typeof input, ...(spec.labels !== undefined ? { labels: shareSource(spec.labels) } : {}) };
}
