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

/**
 * A synthetic document image for OCR models: white page with dark text-like strokes, normalized
 * with ImageNet mean/std as PP-OCR's preprocessing does. dims [n, 3, h, w].
 */
export function syntheticPage(n: number, h: number, w: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * 3 * h * w);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (let b = 0; b < n; b++) {
    const gray = new Float32Array(h * w).fill(0.95);
    const lines = 2 + Math.floor(r() * 3);
    for (let l = 0; l < lines; l++) {
      const y0 = Math.floor(r() * (h - 12));
      const th = 6 + Math.floor(r() * 6);
      let x = Math.floor(r() * 8);
      while (x < w - 4) {
        const cw = 2 + Math.floor(r() * 4);
        for (let y = y0; y < Math.min(h, y0 + th); y++)
          for (let xx = x; xx < Math.min(w, x + cw); xx++) if (r() < 0.8) gray[y * w + xx] = 0.1 + 0.1 * r();
        x += cw + 1 + Math.floor(r() * 3);
      }
    }
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < h * w; i++) out[((b * 3 + c) * h * w) + i] = (gray[i]! - mean[c]!) / std[c]!;
  }
  return out;
}
