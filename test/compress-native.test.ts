/** FITCompress native kernels against plain-JS references on random data. */
import t from 'tap';
import { CompressKernels, compressionRatio, measuredFit, quantizeMasked } from '../src/engine/compress.js';
import { InvalidInputError, InvalidOptionError } from '../src/errors.js';
import { rng } from './helpers/random.js';
import {
  compressionRef,
  importanceRef,
  masksRef,
  measuredFitRef,
  pruneCountRef,
  quantizeMaskedRef,
  ranksRef,
  relClose,
} from './helpers/compress-ref.js';

/** Random layers; `ties` draws weights and Fisher from tiny sets so importances collide. */
function randomSet(seed: number, sizes: number[], ties = false) {
  const r = rng(seed);
  return sizes.map((n, l) => {
    const weights = new Float32Array(n);
    const fisher = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      weights[j] = ties ? [-0.5, 0, 0.25, 0.5][Math.floor(r() * 4)]! : (r() * 2 - 1) * (0.1 + l);
      fisher[j] = ties ? [0, 1, 2][Math.floor(r() * 3)]! : r() ** 3 * 10;
    }
    return { name: `l${l}`, weights, fisher };
  });
}

const LEVELS = [0, 0.1, 0.37, 0.5, 0.9, 0.999];

for (const [seed, ties] of [[1, false], [2, true], [3, false]] as const) {
  t.test(`importance, ranks and masks (seed ${seed}${ties ? ', ties' : ''})`, async (t) => {
    const data = randomSet(seed, [37, 1, 250, 64, 3], ties);
    const k = new CompressKernels(data);
    const N = data.reduce((a, d) => a + d.weights.length, 0);
    t.equal(k.total, N);
    let impTotal = 0;
    data.forEach((d, l) => {
      const ref = importanceRef(d.weights, d.fisher);
      t.same([...k.importance(l)], [...ref], `importance of layer ${l}`);
      impTotal += ref.reduce((a, b) => a + b, 0);
    });
    t.ok(relClose(k.importanceTotal, impTotal), 'importance total');
    const ranks = ranksRef(data.map((d) => d.weights), data.map((d) => d.fisher));
    data.forEach((_, l) => t.same([...k.ranks(l)], [...ranks[l]!], `ranks of layer ${l}`));
    for (const level of LEVELS) {
      const kk = pruneCountRef(level, N);
      t.equal(k.pruneCount(level), kk, `prune count at ${level}`);
      const masks = k.masks(level);
      t.same(masks.map((m) => [...m]), masksRef(ranks, kk).map((m) => [...m]), `masks at ${level}`);
      // exactly the kk lowest-importance weights are pruned: every pruned importance <= every kept one
      let pruned = 0;
      let maxPruned = -Infinity;
      let minKept = Infinity;
      data.forEach((d, l) => {
        const imp = importanceRef(d.weights, d.fisher);
        masks[l]!.forEach((m, j) => {
          if (m) minKept = Math.min(minKept, imp[j]!);
          else {
            pruned++;
            maxPruned = Math.max(maxPruned, imp[j]!);
          }
        });
      });
      t.equal(pruned, kk, `${kk} pruned at ${level}`);
      if (pruned && pruned < N) t.ok(maxPruned <= minKept, `pruned importances <= kept ones at ${level}`);
    }
  });
}

t.test('ties are broken by layer index, then element index', async (t) => {
  // every importance equal: the order is the flat (layer, element) order
  const data = [
    { name: 'a', weights: new Float32Array([1, -1, 1]), fisher: new Float64Array([2, 2, 2]) },
    { name: 'b', weights: new Float32Array([-1, 1]), fisher: new Float64Array([2, 2]) },
  ];
  const k = new CompressKernels(data);
  t.same([...k.ranks(0)], [0, 1, 2]);
  t.same([...k.ranks(1)], [3, 4]);
  t.same(k.masks(0.5).map((m) => [...m]), [[0, 0, 1], [1, 1]], 'floor(0.5 * 5) = 2 pruned: the first two of layer a');
  t.same(k.masks(0.8).map((m) => [...m]), [[0, 0, 0], [0, 1]]);
  // a Fisher value of -0 is importance 0, tied with +0 (not sorted after everything)
  const z = new CompressKernels([{ name: 'z', weights: new Float32Array([1, 1, 1, 0.5]), fisher: new Float64Array([1, -0, 0, 1]) }]);
  t.same([...z.ranks(0)], [3, 0, 1, 2]);
});

t.test('quantize after masking matches the reference bit for bit', async (t) => {
  const r = rng(11);
  for (const bits of [2, 3, 4, 5, 8, 16, 32]) {
    for (const n of [1, 7, 300]) {
      const w = Float32Array.from({ length: n }, () => (r() * 2 - 1) * 3);
      // exact halves on the grid: ties that must round to even
      if (n > 2 && bits < 32) w[1] = w[0]! * 0.5;
      const mask = Uint8Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0));
      for (const m of [null, mask, new Uint8Array(n)]) {
        const got = quantizeMasked(w, m, bits);
        const ref = quantizeMaskedRef(w, m, bits);
        t.equal(got.scale, ref.scale, `scale b=${bits} n=${n}`);
        t.same([...got.values], [...ref.values], `values b=${bits} n=${n} mask=${m ? 'some' : 'none'}`);
        if (m) got.values.forEach((v, j) => m[j] === 0 && t.equal(Object.is(v, 0) || Object.is(v, -0), true));
      }
    }
  }
  // round half to even: 0.5 and 1.5 and 2.5 steps
  const w = new Float32Array([7, 0.5, 1.5, 2.5, -2.5]); // 4 bits: qmax 7, Delta 1
  t.same([...quantizeMasked(w, null, 4).values], [7, 0, 2, 2, -2]);
  // negative values that round to 0 give -0, like rint and the JS quantizer
  const neg = quantizeMasked(new Float32Array([7, -0.4, 0.4]), null, 4).values;
  t.ok(Object.is(neg[1], -0) && Object.is(neg[2], 0), 'signed zeros');
  t.ok(Object.is(quantizeMaskedRef([7, -0.4], null, 4).values[1], -0), 'the reference agrees');
  // the scale comes from the kept weights only
  const q = quantizeMasked(new Float32Array([10, 1, -0.5]), new Uint8Array([0, 1, 1]), 2);
  t.equal(q.scale, 1);
  t.same([...q.values], [0, 1, -0]);
});

t.test('measured FIT and compression against the reference', async (t) => {
  const data = randomSet(5, [100, 20, 3]);
  const k = new CompressKernels(data);
  for (const level of LEVELS) {
    const bits = [8, 3, 32];
    const applied = k.apply(level, bits);
    const ranks = ranksRef(data.map((d) => d.weights), data.map((d) => d.fisher));
    const masks = masksRef(ranks, pruneCountRef(level, k.total));
    const refW = data.map((d, l) => quantizeMaskedRef(d.weights, masks[l]!, bits[l]!).values);
    t.same(applied.weights.map((w) => [...w]), refW.map((w) => [...w]), `weights at ${level}`);
    t.same([...applied.nnz], masks.map((m) => m.reduce((a, b) => a + b, 0)), `nnz at ${level}`);
    const fits = measuredFit(applied.weights, data.map((d) => d.weights), data.map((d) => d.fisher));
    data.forEach((d, l) => {
      const ref = measuredFitRef(refW[l]!, d.weights, d.fisher);
      t.ok(relClose(fits.perLayer[l]!, ref), `measured FIT layer ${l} at ${level}: ${fits.perLayer[l]} vs ${ref}`);
      t.equal(applied.fit[l], fits.perLayer[l], 'apply() reports the same FIT');
    });
    const nnz = [...applied.nnz];
    t.ok(relClose(compressionRatio(nnz, bits, k.counts), compressionRef(nnz, bits, k.counts)), 'compression');
  }
  t.equal(compressionRatio([10, 5], [32, 32], [10, 5]), 1, 'dense float = 1');
  t.equal(compressionRatio([10, 0], [8, 2], [10, 6]), (10 * 8) / 8 / (4 * 16));
  t.equal(measuredFit([new Float32Array([1, 2])], [new Float32Array([0, 4])], [new Float64Array([3, 0.5])]).total, 3 + 0.5 * 4);
});

t.test('cost tables agree with apply() and measured FIT', async (t) => {
  const data = randomSet(9, [120, 33, 7, 64]);
  const k = new CompressKernels(data);
  const levels = [0, 0.2, 0.5, 0.75, 0.95];
  const bits = [32, 8, 4, 2];
  const tb = await k.tables(levels, bits);
  const [L, P, S] = [data.length, levels.length, bits.length];
  t.same([tb.layers, tb.levels, tb.steps], [L, P, S]);
  const fis = data.map((d) => d.fisher);
  const states = levels.map((lv) => bits.map((b) => k.apply(lv, data.map(() => b))));
  for (let p = 0; p < P; p++) {
    t.equal(tb.pruned[p], pruneCountRef(levels[p]!, k.total));
    for (let s = 0; s < S; s++) {
      const here = states[p]![s]!;
      for (let l = 0; l < L; l++) {
        const c = (l * P + p) * S + s;
        t.equal(tb.nnz[l * P + p], here.nnz[l]);
        t.equal(tb.scales[c], here.scales[l]);
        const orig = measuredFitRef(here.weights[l]!, data[l]!.weights, fis[l]!);
        if (!relClose(tb.fitOriginal[c]!, orig)) t.fail(`fitOriginal l${l} p${p} s${s}: ${tb.fitOriginal[c]} vs ${orig}`);
        const q = s + 1 < S ? measuredFitRef(states[p]![s + 1]!.weights[l]!, here.weights[l]!, fis[l]!) : 0;
        if (!relClose(tb.quantizeCost[c]!, q)) t.fail(`quantizeCost l${l} p${p} s${s}: ${tb.quantizeCost[c]} vs ${q}`);
        const pr = p + 1 < P ? measuredFitRef(states[p + 1]![s]!.weights[l]!, here.weights[l]!, fis[l]!) : 0;
        if (!relClose(tb.pruneCost[c]!, pr)) t.fail(`pruneCost l${l} p${p} s${s}: ${tb.pruneCost[c]} vs ${pr}`);
      }
    }
  }
  t.ok(tb.quantizeCost.some((v) => v > 0) && tb.pruneCost.some((v) => v > 0), 'costs are not all zero');
  t.equal(tb.fitOriginal[0], 0, 'float, unpruned: no FIT');
});

t.test('bad input gives documented errors', async (t) => {
  t.throws(() => new CompressKernels([{ name: 'x', weights: new Float32Array(3), fisher: new Float64Array(2) }]), InvalidInputError);
  t.throws(() => new CompressKernels([{ name: 'x', weights: new Float32Array([NaN]), fisher: new Float64Array(1) }]), InvalidInputError);
  t.throws(() => new CompressKernels([{ name: 'x', weights: new Float32Array(1), fisher: new Float64Array([-1]) }]), InvalidInputError);
  const k = new CompressKernels(randomSet(1, [4]));
  t.throws(() => k.masks(1), InvalidOptionError);
  t.throws(() => k.apply(0, [7, 8]), InvalidOptionError);
  t.throws(() => k.apply(0, [1]), InvalidOptionError);
  t.throws(() => quantizeMasked(new Float32Array(2), null, 17), InvalidOptionError);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(k.tables([0], [8], ac.signal), { code: 'ERR_ABORTED' });
  const pending = k.tables([0, 0.5], [32, 8]);
  k.dispose();
  t.equal((await pending).levels, 2, 'a running tables() keeps its data after dispose()');
  t.throws(() => k.masks(0), InvalidOptionError, 'disposed');
});
