/** A small seeded generator (xorshift32) for reproducible random inputs and configurations. */

/** Uniform numbers in [0, 1); the same seed gives the same sequence (seed 0 acts as 1). */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
