/** FIT against real measurements: validate (random configurations), layer-wise analysis, accuracy-bounded search. */
import t from 'tap';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { SensitivityReport } from '../src/fisher/report.js';
import { validate, randomConfigs, averageBits } from '../src/eval/validate.js';
import { layerwise } from '../src/eval/layerwise.js';
import { searchWithinDrop } from '../src/search/bounded.js';
import { evaluate } from '../src/eval/evaluate.js';

const root = new URL('../assets/demo/', import.meta.url).pathname;
const model = `${root}cnn.onnx`;
const data = { input: `${root}calib_x.npy`, labels: `${root}calib_y.npy` };
const common = { data, maxSamples: 256, workers: 1 };

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
});

t.test('accuracy-bounded search: bisection over the frontier picks the cheapest point within the bound', async (t) => {
  const report = await reportP;
  const r = await searchWithinDrop(model, report, { ...common, maxDrop: 0.01 });
  t.ok(r.config && r.point, 'a configuration was found');
  t.ok(r.frontier.length >= 5);
  t.ok(r.evaluations.length <= Math.ceil(Math.log2(r.frontier.length)) + 2, `${r.evaluations.length} evaluations for ${r.frontier.length} points`);
  const chosen = r.evaluations.find((e) => e.point === r.point)!;
  t.ok(chosen.withinBound && chosen.damage <= 0.01);
  // the next cheaper frontier point was measured and is out of bound (unless the cheapest was chosen)
  const idx = chosen.index;
  if (idx > 0) t.ok(r.evaluations.some((e) => e.index === idx - 1 && !e.withinBound), 'the point below was measured out of bound');
  // the evaluation reported equals evaluate() on the chosen configuration
  const direct = await evaluate(model, r.config!, common);
  t.equal(direct.accuracy, chosen.value);
  // a bound outside [0, 1) is an option error
  await t.rejects(searchWithinDrop(model, report, { ...common, maxDrop: 1.5 }), { code: 'ERR_INVALID_OPTION', message: /maxDrop/ });
});
