/** Plain-JS references of the FITCompress kernels (native/fisher/compress.h), for the tests. */
import { rintEven } from '../../src/onnx/quantize.js';

export const importanceRef = (w: ArrayLike<number>, f: ArrayLike<number>): Float64Array =>
  Float64Array.from({ length: w.length }, (_, j) => f[j]! * (w[j]! * w[j]!));

/** Global rank of every weight, flat over layers: ascending (importance, layer, element). */
export function ranksRef(ws: ArrayLike<number>[], fs: ArrayLike<number>[]): Uint32Array[] {
  const flat: { imp: number; at: number }[] = [];
  let at = 0;
  ws.forEach((w, l) => {
    const imp = importanceRef(w, fs[l]!);
    for (let j = 0; j < w.length; j++) flat.push({ imp: imp[j]!, at: at++ });
  });
  flat.sort((a, b) => a.imp - b.imp || a.at - b.at);
  const rank = new Uint32Array(at);
  flat.forEach((e, r) => (rank[e.at] = r));
  const out: Uint32Array[] = [];
  let off = 0;
  for (const w of ws) {
    out.push(rank.slice(off, off + w.length));
    off += w.length;
  }
  return out;
}

export const pruneCountRef = (level: number, total: number): number => Math.min(total, Math.floor(level * total));

export function masksRef(ranks: Uint32Array[], k: number): Uint8Array[] {
  return ranks.map((r) => Uint8Array.from(r, (x) => (x >= k ? 1 : 0)));
}

/** mask ? Q_b(w) : 0, symmetric per tensor, Delta = fround(max|w_kept| / (2^(b-1) - 1)). */
export function quantizeMaskedRef(w: ArrayLike<number>, mask: ArrayLike<number> | null, bits: number): { values: Float32Array; scale: number } {
  const kept = (j: number) => !mask || mask[j] !== 0;
  const values = new Float32Array(w.length);
  if (bits === 32) {
    for (let j = 0; j < w.length; j++) values[j] = kept(j) ? w[j]! : 0;
    return { values, scale: 1 };
  }
  const qmax = 2 ** (bits - 1) - 1;
  let amax = 0;
  for (let j = 0; j < w.length; j++) if (kept(j)) amax = Math.max(amax, Math.abs(w[j]!));
  const scale = amax > 0 ? Math.fround(amax / qmax) : 1;
  for (let j = 0; j < w.length; j++) {
    if (!kept(j)) continue;
    const q = Math.min(qmax, Math.max(-qmax, rintEven(Math.fround(w[j]! / scale))));
    values[j] = q * scale;
  }
  return { values, scale };
}

export function measuredFitRef(a: ArrayLike<number>, b: ArrayLike<number>, f: ArrayLike<number>): number {
  let acc = 0;
  for (let j = 0; j < a.length; j++) {
    const d = a[j]! - b[j]!;
    acc += f[j]! * (d * d);
  }
  return acc;
}

export function compressionRef(nnz: readonly number[], bits: readonly number[], counts: readonly number[]): number {
  let num = 0;
  let den = 0;
  nnz.forEach((z, l) => {
    num += z * bits[l]!;
    den += counts[l]!;
  });
  return num / 8 / (4 * den);
}

export const relClose = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b), 1e-300);
