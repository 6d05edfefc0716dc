/**
 * The FITCompress search space on the native cost tables. A state is a schedule position per layer
 * plus one global pruning level; a move takes one layer one step down the bit schedule or the
 * whole model to the next pruning level. Measured FIT is a sum over weights, so every quantity is
 * a sum of per-layer table cells (native/fisher/compress_tables.h):
 *   cost(quantize l)  = sqrt(quantizeCost[l, p, s_l])
 *   cost(prune)       = sqrt(sum_l pruneCost[l, p, s_l])
 *   FIT vs original   = sum_l fitOriginal[l, p, s_l]
 *   compression       = sum_l nnz[l, p] * bits[s_l] / (32 N)   (the numerator is an exact integer)
 */
import type { CompressTables } from '../engine/compress.js';

export interface SearchState {
  /** schedule index per layer */
  steps: Uint8Array;
  /** pruning level index */
  level: number;
  /** sum_l nnz_l * bits_l (exact integer) */
  num: number;
}

/** A successor: layer >= 0 quantizes that layer one step; layer = -1 prunes to the next level. */
export interface Successor {
  layer: number;
  cost: number;
  num: number;
}

export class CompressSpace {
  readonly L: number;
  readonly P: number;
  readonly S: number;
  /** 32 * N */
  readonly denom: number;
  constructor(
    readonly tables: CompressTables,
    readonly schedule: readonly number[],
    readonly total: number,
  ) {
    this.L = tables.layers;
    this.P = tables.levels;
    this.S = tables.steps;
    this.denom = 32 * total;
  }

  private cell(l: number, p: number, s: number): number {
    return (l * this.P + p) * this.S + s;
  }

  nnz(l: number, p: number): number {
    return this.tables.nnz[l * this.P + p]!;
  }

  start(): SearchState {
    const steps = new Uint8Array(this.L);
    return { steps, level: 0, num: this.numOf(steps, 0) };
  }

  /** The last point of the schedules: every layer at its smallest width, the highest level. */
  last(): SearchState {
    const steps = new Uint8Array(this.L).fill(this.S - 1);
    return { steps, level: this.P - 1, num: this.numOf(steps, this.P - 1) };
  }

  numOf(steps: Uint8Array, p: number): number {
    let num = 0;
    for (let l = 0; l < this.L; l++) num += this.nnz(l, p) * this.schedule[steps[l]!]!;
    return num;
  }

  compression(s: SearchState): number {
    return s.num / this.denom;
  }

  /** Measured FIT of a state against the original weights. */
  fit(s: SearchState): number {
    let f = 0;
    for (let l = 0; l < this.L; l++) f += this.tables.fitOriginal[this.cell(l, s.level, s.steps[l]!)]!;
    return f;
  }

  /** Every move from s, in a fixed order: layers by index, then the prune move. */
  successors(s: SearchState): Successor[] {
    const out: Successor[] = [];
    const p = s.level;
    for (let l = 0; l < this.L; l++) {
      const k = s.steps[l]!;
      if (k + 1 >= this.S) continue;
      const cost = Math.sqrt(this.tables.quantizeCost[this.cell(l, p, k)]!);
      out.push({ layer: l, cost, num: s.num - this.nnz(l, p) * (this.schedule[k]! - this.schedule[k + 1]!) });
    }
    if (p + 1 < this.P) {
      let sq = 0;
      let num = 0;
      for (let l = 0; l < this.L; l++) {
        sq += this.tables.pruneCost[this.cell(l, p, s.steps[l]!)]!;
        num += this.nnz(l, p + 1) * this.schedule[s.steps[l]!]!;
      }
      out.push({ layer: -1, cost: Math.sqrt(sq), num });
    }
    return out;
  }

  /**
   * Zobrist hashing: a state's key XORs one fixed random 53-bit word per (layer, step) and one for
   * the level, so a move updates it in O(1). Two states share a key with probability ~2^-53 per
   * pair; a collision could only make A* skip a state, never produce an invalid plan (paths are
   * rebuilt from the moves). The words come from a fixed seed: plans are reproducible.
   */
  private zobrist?: { hi: Uint32Array; lo: Uint32Array };
  private words(): { hi: Uint32Array; lo: Uint32Array } {
    if (!this.zobrist) {
      const n = this.L * this.S + this.P;
      const hi = new Uint32Array(n);
      const lo = new Uint32Array(n);
      let a = 0x9e3779b9;
      const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (t ^ (t >>> 14)) >>> 0;
      };
      for (let i = 0; i < n; i++) {
        hi[i] = next() & 0x1fffff;
        lo[i] = next();
      }
      this.zobrist = { hi, lo };
    }
    return this.zobrist;
  }

  /** The key of a full state. */
  hash(steps: Uint8Array, level: number): { hi: number; lo: number } {
    const z = this.words();
    let hi = z.hi[this.L * this.S + level]!;
    let lo = z.lo[this.L * this.S + level]!;
    for (let l = 0; l < this.L; l++) {
      hi ^= z.hi[l * this.S + steps[l]!]!;
      lo ^= z.lo[l * this.S + steps[l]!]!;
    }
    return { hi, lo };
  }

  /** XOR delta of a move from (steps, level): layer >= 0 quantizes it, -1 prunes. */
  delta(steps: Uint8Array, level: number, layer: number): { hi: number; lo: number } {
    const z = this.words();
    const [a, b] = layer < 0 ? [this.L * this.S + level, this.L * this.S + level + 1] : [layer * this.S + steps[layer]!, layer * this.S + steps[layer]! + 1];
    return { hi: z.hi[a]! ^ z.hi[b]!, lo: z.lo[a]! ^ z.lo[b]! };
  }
}

/** A 53-bit map key from the two halves. */
export const keyOf = (hi: number, lo: number): number => (hi >>> 0) * 4294967296 + (lo >>> 0);
