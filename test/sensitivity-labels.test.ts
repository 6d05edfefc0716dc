/** Bernoulli labels in any usual form (0/1 integers [N] or [N,1], floats) give the same Fisher. */
import t from 'tap';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { MODELS } from './helpers/models.js';

t.test('openwakeword: integer and float 0/1 labels are the same targets', async (t) => {
  const n = 4;
  const x = new Float32Array(n * 25 * 96).map((_, i) => Math.sin(i * 0.37));
  const forms = [
    { dims: [n], data: BigInt64Array.from([0n, 1n, 1n, 0n]) },
    { dims: [n, 1], data: BigInt64Array.from([0n, 1n, 1n, 0n]) },
    { dims: [n, 1], data: Float32Array.from([0, 1, 1, 0]) },
  ];
  const traces: number[][] = [];
  for (const labels of forms) {
    const r = await sensitivity(MODELS.owwHello, { data: { input: { dims: [n, 25, 96], data: x }, labels }, workers: 1, tolerance: 0 });
    t.equal(r.likelihood, 'bernoulli');
    traces.push(r.layers.map((l) => l.weight.fisherTrace));
  }
  t.ok(traces[0]!.every((v) => v > 0 && Number.isFinite(v)));
  t.same(traces[1], traces[0]);
  t.same(traces[2], traces[0]);
});
