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
