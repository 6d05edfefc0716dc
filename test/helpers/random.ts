/** Seeded random numbers for reproducible tests (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomFloats(n: number, seed: number, low = -1, high = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * r();
  return out;
}

/** max |a-b| and max |a-b| / max(|b|, floor) over two arrays */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): { abs: number; rel: number; at: number } {
  let abs = 0;
  let rel = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= abs)) {
      abs = d;
      at = i;
    }
    const r = d / Math.max(Math.abs(b[i]!), floor);
    if (!(r <= rel)) rel = r;
  }
  return { abs, rel, at };
}
