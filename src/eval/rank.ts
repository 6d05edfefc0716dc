/** Rank correlations between predicted damage (FIT) and measured damage: Spearman's rho and Kendall's tau-b. */
import { InvalidOptionError } from '../errors.js';

function check(x: readonly number[], y: readonly number[]): void {
  if (x.length !== y.length) throw new InvalidOptionError(`Expected two series of the same length but received ${x.length} and ${y.length}`);
  if (x.some((v) => Number.isNaN(v)) || y.some((v) => Number.isNaN(v))) throw new InvalidOptionError('Expected numbers without NaN for a rank correlation');
}

/** Ranks 1..n, ties getting the mean of the ranks they span. */
export function ranks(x: readonly number[]): number[] {
  const idx = x.map((_, i) => i).sort((a, b) => x[a]! - x[b]!);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]!] === x[idx[i]!]) j++;
    const mean = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]!] = mean;
    i = j + 1;
  }
  return r;
}

function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rho: the Pearson correlation of the ranks (ties averaged). NaN when a series is constant. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  check(x, y);
  return x.length < 2 ? NaN : pearson(ranks(x), ranks(y));
}

/** Kendall's tau-b (tie-corrected). NaN when a series is constant. O(n^2), fine for hundreds of configurations. */
export function kendall(x: readonly number[], y: readonly number[]): number {
  check(x, y);
  let c = 0;
  let d = 0;
  let tx = 0;
  let ty = 0;
  for (let i = 0; i < x.length; i++)
    for (let j = i + 1; j < x.length; j++) {
      const a = Math.sign(x[i]! - x[j]!);
      const b = Math.sign(y[i]! - y[j]!);
      if (a === 0 && b === 0) continue;
      if (a === 0) tx++;
      else if (b === 0) ty++;
      else if (a === b) c++;
      else d++;
    }
  const den = Math.sqrt((c + d + tx) * (c + d + ty));
  return den === 0 ? NaN : (c - d) / den;
}
