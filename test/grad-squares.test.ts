/** layerInputSquares: per-sample sums of squared layer-input gradients computed natively equal the JS sums of the gradients. */
import t from 'tap';
import { loadEngineModel } from '../src/engine/load.js';
import { MODELS } from './helpers/models.js';
import { randomFloats } from './helpers/random.js';

t.test('native per-sample squares of layer-input gradients equal the sums over the returned gradients', async (t) => {
  const n = 5;
  const { engine, layers } = loadEngineModel(MODELS.demoCnn, { inputShapes: { input: [n, 1, 28, 28] } });
  const inputs = { input: { dims: [n, 1, 28, 28], data: randomFloats(n * 784, 9, -1, 1) } };
  const req = {
    loss: { tensor: 'logits', likelihood: 'categorical' as const, sampleSeed: 7 },
    layers: layers.map((l) => ({ node: l.name, dataInput: 0, weightInput: l.weightInput })),
    perSampleSquares: true,
  };
  for (const precision of ['float32', 'float64'] as const) {
    const full = engine.gradients(inputs, { ...req, precision });
    const sq = await engine.gradientsAsync(inputs, { ...req, precision, layerInputSquares: true });
    t.same(Object.keys(sq.layerInputGrads), [], 'no gradients cross over');
    t.same([...sq.loss], [...full.loss]);
    for (const l of layers) {
      const g = full.layerInputGrads[l.name]!.data as Float32Array | Float64Array;
      const per = g.length / n;
      const got = sq.layerInputSquares[l.name]!;
      t.equal(got.length, n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = i * per; k < (i + 1) * per; k++) s += g[k]! * g[k]!;
        t.ok(s > 0 && Math.abs(got[i]! - s) <= 1e-12 * s, `${precision} ${l.name} sample ${i}: ${got[i]} vs ${s}`);
      }
    }
  }
  engine.dispose();
});

t.test('activation ranges returned with gradients equal the min and max of the values', async (t) => {
  for (const n of [1, 5]) {
    const { engine } = loadEngineModel(MODELS.demoCnn, { inputShapes: { input: [n, 1, 28, 28] } });
    const x = randomFloats(n * 784, 11, -1, 1);
    x[n * 784 - 3] = 7.5; // extremes in the scalar tail and in the vector part
    x[17] = -6.25;
    const inputs = { input: { dims: [n, 1, 28, 28], data: x } };
    const logits = (await engine.run(inputs)).logits!.data as Float32Array;
    for (const precision of ['float32', 'float64'] as const) {
      const r = engine.gradients(inputs, { loss: { tensor: 'logits', likelihood: 'categorical', sampleSeed: 1 }, ranges: ['input', 'logits'], precision });
      t.same(r.ranges.input, [-6.25, 7.5], `${precision} n=${n}: input range over ${x.length} values`);
      const lo = Math.min(...logits), hi = Math.max(...logits);
      const tol = precision === 'float32' ? 0 : 1e-5 * Math.max(1, Math.abs(lo), Math.abs(hi));
      t.ok(Math.abs(r.ranges.logits![0] - lo) <= tol && Math.abs(r.ranges.logits![1] - hi) <= tol,
        `${precision} n=${n}: logits range [${r.ranges.logits}] vs [${lo}, ${hi}] over ${logits.length} values`);
    }
    engine.dispose();
  }
});

t.test('squared-gradient accumulators: the engine adds scale * squares in place and returns the sums', async (t) => {
  const n = 4;
  const { engine, layers } = loadEngineModel(MODELS.demoCnn, { inputShapes: { input: [n, 1, 28, 28] } });
  const inputs = { input: { dims: [n, 1, 28, 28], data: randomFloats(n * 784, 13, -1, 1) } };
  const req = {
    loss: { tensor: 'logits', likelihood: 'categorical' as const, sampleSeed: 5 },
    layers: layers.map((l) => ({ node: l.name, dataInput: 0, weightInput: l.weightInput })),
    perSampleSquares: true,
  };
  for (const precision of ['float32', 'float64'] as const) {
    const plain = engine.gradients(inputs, { ...req, precision });
    const accs = layers.map((l) => Float64Array.from({ length: plain.sqWeightGrads[l.name]!.data.length }, (_, j) => j % 3)); // prior contents
    const scale = 0.25;
    const res = await engine.gradientsAsync(inputs, { ...req, precision, sqWeightAccumulators: accs, sqWeightScale: scale });
    t.same(Object.keys(res.sqWeightGrads), [], `${precision}: no weight-sized arrays returned`);
    layers.forEach((l, i) => {
      const sq = plain.sqWeightGrads[l.name]!.data as Float32Array | Float64Array;
      let sum = 0, bad = 0;
      for (let j = 0; j < sq.length; j++) {
        const v = Number(sq[j]) * scale;
        sum += v;
        if (accs[i]![j] !== (j % 3) + v) bad++;
      }
      t.equal(bad, 0, `${precision} ${l.name}: all ${sq.length} accumulators hold prior + scale * square`);
      t.ok(sum > 0 && Math.abs(res.sqWeightSums[l.name]! - sum) <= 1e-12 * sum, `${precision} ${l.name}: sum ${res.sqWeightSums[l.name]} vs ${sum}`);
    });
  }
  t.throws(() => engine.gradients(inputs, { ...req, sqWeightAccumulators: [new Float64Array(3)] }), { code: 'ERR_INVALID_INPUT', message: /one Float64Array per layer \(4\)/ });
  const wrongSize = layers.map(() => new Float64Array(5));
  t.throws(() => engine.gradients(inputs, { ...req, sqWeightAccumulators: wrongSize }), { code: 'ERR_INVALID_INPUT', message: /accumulator 0 has 5 elements but its layer's weight has 72/ });
  engine.dispose();
});
