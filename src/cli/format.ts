/** Number formats shared by the command tables. */

/** Three significant digits in exponent form without '+': 1.23e-4, 4.56e2, 0, -7.10e0. */
export function compact(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return '0';
  return v.toExponential(2).replace('e+', 'e');
}

/** A fraction as a percentage with two decimals (0.9199 -> 91.99%); `missing` for null / undefined. */
export function pct(v: number | null | undefined, missing = '-'): string {
  return v === null || v === undefined ? missing : `${(100 * v).toFixed(2)}%`;
}

/** A measured value (or drop) of `metric`: a percentage, or compact for 'output MSE'. */
export function metricValue(metric: string, v: number): string {
  return metric === 'output MSE' ? compact(v) : pct(v);
}
