/** Rank correlations against hand-computed values and their definitions. */
import t from 'tap';
import { kendall, ranks, spearman } from '../src/eval/rank.js';
import { rng } from './helpers/random.js';

t.test('ranks average ties', async (t) => {
  t.same(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
});

t.test('hand-computed values', async (t) => {
  // x = 1..5, y = [2, 1, 4, 3, 5]: d = [-1, 1, -1, 1, 0], sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8
  t.ok(Math.abs(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.8) < 1e-12);
  // pairs: 10 in all, discordant (1,2) and (3,4): tau = (8 - 2) / 10 = 0.6
  t.ok(Math.abs(kendall([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.6) < 1e-12);
  t.equal(spearman([1, 2, 3], [30, 20, 10]), -1);
  t.equal(kendall([1, 2, 3], [30, 20, 10]), -1);
  // tau-b with ties: x = [1, 2, 2, 3], y = [1, 2, 3, 3]; concordant 4, discordant 0, ties in x only 1,
  // ties in y only 1: (4 - 0) / sqrt(5 * 5) = 0.8
  t.ok(Math.abs(kendall([1, 2, 2, 3], [1, 2, 3, 3]) - 0.8) < 1e-12);
  t.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])), 'constant series: undefined');
  t.throws(() => spearman([1, 2], [1]), { code: 'ERR_INVALID_OPTION' });
});

t.test('invariant to monotone transforms; Spearman without ties equals 1 - 6 sum d^2 / (n (n^2 - 1))', async (t) => {
  const r = rng(3);
  const x = Array.from({ length: 40 }, () => r());
  const y = x.map((v) => v + 0.3 * r());
  const rho = spearman(x, y);
  t.equal(spearman(x.map(Math.exp), y.map((v) => v ** 3)), rho);
  t.equal(kendall(x.map(Math.exp), y), kendall(x, y));
  const rx = ranks(x);
  const ry = ranks(y);
  const d2 = rx.reduce((a, v, i) => a + (v - ry[i]!) ** 2, 0);
  t.ok(Math.abs(rho - (1 - (6 * d2) / (40 * (40 * 40 - 1)))) < 1e-12);
  t.ok(rho > 0.5 && kendall(x, y) > 0.4, 'positively related series correlate');
});
