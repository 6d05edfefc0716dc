/** FIT against real measurements: validate (random configurations), layer-wise analysis, accuracy-bounded search. */
import t from 'tap';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { SensitivityReport } from '../src/fisher/report.js';
import { validate, randomConfigs, averageBits } from '../src/eval/validate.js';
import { layerwise } from '../src/eval/layerwise.js';
import { searchWithinDrop } from '../src/search/bounded.js';
import { evaluate, evaluateMany } from '../src/eval/evaluate.js';

const root = new URL('../assets/demo/', import.meta.url).pathname;
const model = `${root}cnn.onnx`;
const data = { input: `${root}calib_x.npy`, labels: `${root}calib_y.npy` };
const common = { data, maxSamples: 256, workers: 1 };

/**
 * FIT of a configuration by hand: sum of trace * Delta^2 / 12 over the quantized tensors, with
 * Delta = max(|min|, |max|) / (2^(b-1) - 1) for weights and (max - min) / (2^b - 1) for activations.
 */
function fitByHand(report: SensitivityReport, config: { weights?: Record<string, number>; activations?: Record<string, number> }): number {
  let total = 0;
  const layer = (name: string) => report.layers.find((l) => l.name === name)!;
  for (const [name, b] of Object.entries(config.weights ?? {})) {
    const w = layer(name).weight;
    const delta = Math.max(Math.abs(w.min), Math.abs(w.max)) / (2 ** (b - 1) - 1);
    total += (w.fisherTrace * delta * delta) / 12;
  }
  for (const [name, b] of Object.entries(config.activations ?? {})) {
    const a = layer(name).activation;
    const delta = (a.max - a.min) / (2 ** b - 1);
    total += (a.fisherTrace * delta * delta) / 12;
  }
  return total;
}
const relClose = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b));

const reportP = sensitivity(model, { data, maxSamples: 256, tolerance: 0, workers: 1 });

t.test('validate: FIT ranks random configurations like their measured accuracy drop', async (t) => {
  const report = await reportP;
  const v = await validate(model, report, { ...common, configs: 16, seed: 3 });
  t.equal(v.configs.length, 16);
  t.equal(v.metric, 'accuracy');
  t.ok(v.float > 0.85, `float accuracy ${v.float}`);
  t.equal(v.samples, 256);
  for (const c of v.configs) {
    t.equal(c.fit, report.fit(c.config), 'FIT is the report\'s');
    t.ok(Math.abs(c.damage - (v.float - c.value)) < 1e-12, 'damage = accuracy drop');
    t.ok(Object.values(c.config.weights!).every((b) => [3, 4, 5, 6, 8].includes(b)));
  }
  t.ok(v.spearman > 0.6, `Spearman ${v.spearman.toFixed(3)} > 0.6`);
  t.ok(v.kendall > 0.4, `Kendall ${v.kendall.toFixed(3)} > 0.4`);
  t.ok(v.klSpearman! > 0.8, `FIT vs KL Spearman ${v.klSpearman!.toFixed(3)} > 0.8`);
  // an independent oracle: FIT by hand from the traces and ranges, and the measured accuracy of the
  // least and the most damaged configurations from separate evaluate() runs
  for (const c of v.configs) t.ok(relClose(c.fit, fitByHand(report, c.config)), `FIT ${c.fit} = sum trace * Delta^2 / 12 by hand`);
  const byDamage = [...v.configs].sort((a, b) => a.damage - b.damage);
  const [lo, hi] = [byDamage[0]!, byDamage.at(-1)!];
  t.ok(hi.damage > lo.damage, `the configurations differ in damage (${lo.damage} .. ${hi.damage})`);
  const direct = await evaluateMany(model, [lo.config, hi.config], common);
  t.equal(direct[0]!.accuracy, lo.value, `least damaged: evaluate() accuracy ${direct[0]!.accuracy} = validate's value`);
  t.equal(direct[1]!.accuracy, hi.value, `most damaged: evaluate() accuracy ${direct[1]!.accuracy} = validate's value`);
  t.equal(direct[1]!.floatAccuracy, v.float, "evaluate()'s float accuracy = validate's float");
  // the same seed gives the same configurations, another seed others
  t.same(randomConfigs(report, 4, [3, 4], [8], 3), randomConfigs(report, 4, [3, 4], [8], 3));
  t.notSame(randomConfigs(report, 4, [3, 4], [8], 3), randomConfigs(report, 4, [3, 4], [8], 4));
  t.ok(Math.abs(averageBits(report, { weights: Object.fromEntries(report.layers.map((l) => [l.name, 4])) }) - 4) < 1e-12);
  await t.rejects(validate(model, report, { ...common, configs: 1 }), { code: 'ERR_INVALID_OPTION', message: /configs/ });
  await t.rejects(validate(model, report, { ...common, weightBits: [1, 4] }), { code: 'ERR_INVALID_OPTION', message: /weightBits/ });
});

t.test('layer-wise analysis: per-layer damage beside FIT; a layer whose FIT is understated is flagged and fixed', async (t) => {
  const report = await reportP;
  const r = await layerwise(model, report, { ...common, bits: 3 });
  t.equal(r.layers.length, report.layers.length);
  t.equal(r.damageMetric, 'KL');
  for (const l of r.layers) {
    t.ok(l.damage > 0 && l.fit > 0, `${l.name}: damage ${l.damage}, FIT ${l.fit}`);
    t.ok(l.accuracyDrop !== null);
  }
  // the calibration is the median ratio: half of the layers at or below 1, half at or above
  const ratios = r.layers.map((l) => l.ratio).sort((a, b) => a - b);
  t.ok(ratios[0]! <= 1 + 1e-9 && ratios.at(-1)! >= 1 - 1e-9);
  // with 4 layers the median is the mean of the middle two: exactly 1 after calibration
  t.equal(ratios.length, 4);
  t.ok(Math.abs((ratios[1]! + ratios[2]!) / 2 - 1) < 1e-9, `median ratio ${(ratios[1]! + ratios[2]!) / 2} = 1`);
  // ... and the ratios are not all 1: FIT mispredicts some layers' KL, the spread is real
  t.ok(ratios[0]! < 0.9 && ratios[3]! > 1.1, `ratios spread around 1: ${ratios.map((x) => x.toFixed(3)).join(', ')}`);
  // by hand: FIT from the traces, scale = median(damage / FIT), ratio = damage / (scale * FIT)
  const fits = r.layers.map((l) => fitByHand(report, { weights: { [l.name]: 3 } }));
  r.layers.forEach((l, i) => t.ok(relClose(l.fit, fits[i]!), `${l.name}: FIT ${l.fit} by hand`));
  const raw = r.layers.map((l, i) => l.damage / fits[i]!).sort((a, b) => a - b);
  const scale = (raw[1]! + raw[2]!) / 2;
  t.ok(relClose(r.scale, scale, 1e-9), `scale ${r.scale} = median damage / FIT ${scale}`);
  r.layers.forEach((l, i) => t.ok(relClose(l.ratio, l.damage / (scale * fits[i]!), 1e-9), `${l.name}: ratio ${l.ratio}`));
  // A report that understates one layer's weight trace 1000-fold predicts almost no damage there.
  const j = report.toJSON();
  const victim = r.layers.reduce((a, b) => (b.damage > a.damage ? b : a)).name;
  j.layers.find((l) => l.name === victim)!.weight.fisherTrace /= 1000;
  const skewed = SensitivityReport.fromJSON(j);
  const s = await layerwise(model, skewed, { ...common, bits: 3 });
  const flagged = s.layers.filter((l) => l.flagged).map((l) => l.name);
  t.same(flagged, [victim], `only ${victim} is flagged`);
  const v = s.layers.find((l) => l.name === victim)!;
  t.equal(v.fixes.length, 2);
  const more = v.fixes.find((f) => f.fix === '4 bits')!;
  t.ok(more.damage < v.damage, `one more bit reduces the damage (${more.damage} < ${v.damage})`);
  const clip = v.fixes.find((f) => f.fix.startsWith('clip'))!;
  t.ok(Number.isFinite(clip.damage) && clip.damage >= 0, `clipping measured (${clip.damage})`);
  t.equal(clip.fit, null);
  // the clip fix is the same layer at 3 bits with its weight range clipped at the 99.9th percentile
  t.same(clip.config, { weights: { [victim]: 3 }, weightClip: { [victim]: 0.999 } });
  // The victim has fewer than 1000 weights, so its 99.9th percentile of |w| (the ceil(0.999 n)-th
  // smallest) is its largest |w|: the default clip leaves the grid, and so the damage, unchanged.
  const victimCount = report.layers.find((l) => l.name === victim)!.weight.count;
  t.ok(victimCount < 1000, `${victim} has ${victimCount} < 1000 weights`);
  t.equal(clip.damage, v.damage, `clipping at 99.9% of ${victimCount} weights is a no-op (${clip.damage})`);
  // separate evaluate() runs of the three configurations measure the very same KL
  const direct = await evaluateMany(model, [{ weights: { [victim]: 3 } }, more.config, clip.config], common);
  t.equal(direct[0]!.kl, v.damage, `${victim} at 3 bits: evaluate() KL ${direct[0]!.kl}`);
  t.equal(direct[1]!.kl, more.damage, `${victim} at 4 bits: evaluate() KL ${direct[1]!.kl}`);
  t.equal(direct[2]!.kl, clip.damage, `${victim} at 3 bits, clipped: evaluate() KL ${direct[2]!.kl}`);
  // A clip that bites (the 90th percentile): the fix measures a different damage, the one a
  // separate evaluate() of the layer at 3 bits with that weightClip gives.
  const s90 = await layerwise(model, skewed, { ...common, bits: 3, clipPercentile: 0.9 });
  const v90 = s90.layers.find((l) => l.name === victim)!;
  t.same(s90.layers.filter((l) => l.flagged).map((l) => l.name), [victim]);
  t.equal(v90.damage, v.damage, 'the unclipped damage does not depend on clipPercentile');
  const clip90 = v90.fixes.find((f) => f.fix.startsWith('clip'))!;
  t.equal(clip90.fix, 'clip at 90.00%');
  t.same(clip90.config, { weights: { [victim]: 3 }, weightClip: { [victim]: 0.9 } });
  t.not(clip90.damage, v90.damage, `clipping at 90% changes the damage (${clip90.damage} vs ${v90.damage})`);
  const direct90 = await evaluate(model, { weights: { [victim]: 3 }, weightClip: { [victim]: 0.9 } }, common);
  t.equal(direct90.kl, clip90.damage, `evaluate() KL with weightClip 0.9: ${direct90.kl}`);
});

t.test('accuracy-bounded search: bisection over the frontier picks the cheapest point within the bound', async (t) => {
  const report = await reportP;
  const r = await searchWithinDrop(model, report, { ...common, maxDrop: 0.01 });
  t.ok(r.config && r.point, 'a configuration was found');
  t.ok(r.frontier.length >= 5);
  t.ok(r.evaluations.length <= Math.ceil(Math.log2(r.frontier.length)) + 2, `${r.evaluations.length} evaluations for ${r.frontier.length} points`);
  const chosen = r.evaluations.find((e) => e.point === r.point)!;
  t.ok(chosen.withinBound && chosen.damage <= 0.01);
  // the next cheaper frontier point was measured and is out of bound
  const idx = chosen.index;
  // on the demo data the cheapest frontier points are out of bound: the chosen one is not the first
  t.ok(idx > 0, `chosen frontier index ${idx} > 0`);
  t.ok(r.evaluations.some((e) => e.index === idx - 1 && !e.withinBound), 'the point below was measured out of bound');
  t.ok(r.evaluations.filter((e) => e.index < idx).every((e) => !e.withinBound), 'every cheaper point measured is out of bound');
  // the evaluation reported equals evaluate() on the chosen configuration
  const direct = await evaluate(model, r.config!, common);
  t.equal(direct.accuracy, chosen.value);
  // a bound outside [0, 1) is an option error
  await t.rejects(searchWithinDrop(model, report, { ...common, maxDrop: 1.5 }), { code: 'ERR_INVALID_OPTION', message: /maxDrop/ });
});
