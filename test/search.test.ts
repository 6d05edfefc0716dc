/** Mixed-precision search: exact against brute force, frontier, budgets, errors, MACs. */
import t from 'tap';
import { SensitivityReport, type LayerSensitivity } from '../src/fisher/report.js';
import { searchMixedPrecision, searchMixedPrecisionSync, frontierConfig, type SearchResult } from '../src/search/mixed-precision.js';
import { solveKnapsack, convexFrontier, type Choice } from '../src/search/knapsack.js';
import { layerMacs } from '../src/search/macs.js';
import { makeModel } from '../src/onnx/build.js';
import { InvalidInputError, InvalidOptionError } from '../src/errors.js';
import { rng } from './helpers/random.js';

type Kind = 'averageBits' | 'bytes' | 'bops';

function layer(name: string, count: number, wTrace: number, wMax: number, aTrace: number, aMin: number, aMax: number): LayerSensitivity {
  return {
    name,
    op: 'Gemm',
    weight: { name: `${name}.w`, count, min: -wMax / 2, max: wMax, fisherTrace: wTrace, stdError: null, fisherDiagonal: new Float64Array(0), channelTraces: [], dims: [] },
    activation: { name: `${name}.x`, count: 10, min: aMin, max: aMax, fisherTrace: aTrace, stdError: null },
  };
}

function randomInstance(seed: number, maxLayers: number, withActs: boolean) {
  const r = rng(seed);
  const L = 1 + Math.floor(r() * maxLayers);
  const layers = Array.from({ length: L }, (_, i) =>
    layer(`l${i}`, 1 + Math.floor(r() ** 2 * 3000), 10 ** (4 * r() - 2), 0.1 + r(), 10 ** (4 * r() - 3), -r(), 0.5 + r()));
  const report = new SensitivityReport('m', 'empirical', 'categorical', 1, true, layers);
  const pool = [2, 3, 4, 5, 6, 8];
  const pick = (n: number) => pool.filter(() => true).sort(() => r() - 0.5).slice(0, n).sort((a, b) => a - b);
  const weightBits = pick(2 + Math.floor(r() * 3));
  const activationBits = withActs ? pick(2 + Math.floor(r() * 2)) : undefined;
  const macs = Object.fromEntries(layers.map((l) => [l.name, Math.floor(1 + r() * 5000)]));
  return { report, layers, weightBits, activationBits, macs };
}

interface Config { w: number[]; a: number[]; fit: number; bits: number; bops: number }

/** Every configuration, with its FIT from report.fit() and its costs. */
function enumerate(inst: ReturnType<typeof randomInstance>): Config[] {
  const { report, layers, weightBits, macs } = inst;
  const acts = inst.activationBits ?? [8];
  const out: Config[] = [];
  const w: number[] = [];
  const a: number[] = [];
  const rec = (i: number) => {
    if (i === layers.length) {
      const weights = Object.fromEntries(layers.map((l, j) => [l.name, w[j]!]));
      const activations = Object.fromEntries(layers.map((l, j) => [l.name, a[j]!]));
      const bits = layers.reduce((s, l, j) => s + l.weight.count * w[j]!, 0);
      const bops = layers.reduce((s, l, j) => s + macs[l.name]! * w[j]! * a[j]!, 0);
      out.push({ w: [...w], a: [...a], fit: report.fit({ weights, activations }), bits, bops });
      return;
    }
    for (const wb of weightBits)
      for (const ab of acts) {
        w[i] = wb;
        a[i] = ab;
        rec(i + 1);
      }
  };
  rec(0);
  return out;
}

const costOf = (kind: Kind, c: { bits: number; bops: number }) => (kind === 'bops' ? c.bops : c.bits);
const budgetFor = (kind: Kind, cost: number, totalWeights: number) =>
  kind === 'averageBits' ? { averageBits: cost / totalWeights } : kind === 'bytes' ? { bytes: cost / 8 } : { bops: cost };
const bruteBest = (all: Config[], kind: Kind, cap: number) => Math.min(...all.filter((c) => costOf(kind, c) <= cap).map((c) => c.fit));
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b), 1e-300);
const resultCost = (kind: Kind, r: { bytes: number; bops: number | null }) => (kind === 'bops' ? r.bops! : r.bytes * 8);

t.test('exact against brute force on random instances, all three budgets', async (t) => {
  let checks = 0;
  let wrong = 0;
  let frontierWrong = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const withActs = seed % 3 === 0;
    const inst = randomInstance(seed, withActs ? 3 : 6, withActs);
    const all = enumerate(inst);
    const N = inst.layers.reduce((s, l) => s + l.weight.count, 0);
    for (const kind of ['averageBits', 'bytes', 'bops'] as Kind[]) {
      const costs = [...new Set(all.map((c) => costOf(kind, c)))].sort((a, b) => a - b);
      const r = rng(seed * 7 + kind.length);
      // random budgets, every distinct cost (the boundaries), and more than enough
      const budgets = [...Array.from({ length: 6 }, () => costs[0]! + r() * (costs.at(-1)! - costs[0]!)), ...costs.filter((_, i) => i % Math.ceil(costs.length / 12) === 0), costs.at(-1)! * 2];
      for (const cap of budgets) {
        const res = searchMixedPrecisionSync(inst.report, { budget: budgetFor(kind, cap, N), weightBits: inst.weightBits, activationBits: inst.activationBits, macs: inst.macs });
        checks++;
        const best = bruteBest(all, kind, cap);
        const ok = close(res.fit, best) && resultCost(kind, res) <= cap * (1 + 1e-12) && close(res.fit, inst.report.fit(res.config));
        if (!ok) {
          wrong++;
          if (wrong < 5) t.fail(`seed ${seed} ${kind} cap ${cap}: search ${res.fit} (cost ${resultCost(kind, res)}), brute force ${best}`);
        }
      }
      // the frontier: sorted, non-dominated, each point the optimum for its own cost
      const res = searchMixedPrecisionSync(inst.report, { budget: budgetFor(kind, costs.at(-1)!, N), weightBits: inst.weightBits, activationBits: inst.activationBits, macs: inst.macs });
      const f = res.frontier;
      for (let i = 0; i < f.length; i++) {
        const c = resultCost(kind, f[i]!);
        const ok = close(f[i]!.fit, bruteBest(all, kind, c)) && (i === 0 || (c > resultCost(kind, f[i - 1]!) && f[i]!.fit < f[i - 1]!.fit)) &&
          close(f[i]!.fit, inst.report.fit(frontierConfig(res, f[i]!)));
        if (!ok) frontierWrong++;
      }
      // the ends: all-cheapest and the least FIT overall
      t.ok(close(f[0]!.fit, bruteBest(all, kind, costs[0]!)) && close(f.at(-1)!.fit, Math.min(...all.map((c) => c.fit))));
    }
  }
  t.equal(wrong, 0, `${checks} budgets checked`);
  t.equal(frontierWrong, 0, 'every frontier point is optimal for its cost and non-dominated');
});

t.test('knapsack core against a pseudo-polynomial DP on larger instances', async (t) => {
  let wrong = 0;
  let n = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(1000 + seed);
    const G = 10 + Math.floor(r() * 50);
    // random traces; every third instance has traces proportional to counts (all slopes tie,
    // the hard subset-sum-like case), every fifth identical layers
    const shape = seed % 3 === 0 ? 'tied' : seed % 5 === 0 ? 'identical' : 'random';
    const groups: Choice[][] = Array.from({ length: G }, () => {
      const n = shape === 'identical' ? 5 : 1 + Math.floor(r() * 12);
      const tr = shape === 'random' ? 10 ** (3 * r()) : n;
      return [2, 3, 4, 5, 6, 7, 8].map((b) => ({ cost: n * b, value: tr * 4 ** -b * (shape === 'random' ? 1 + 0.3 * r() : 1) }));
    });
    const maxCost = groups.reduce((s, g) => s + Math.max(...g.map((c) => c.cost)), 0);
    // dp[c] = least value with total cost exactly c
    let dp = new Float64Array(maxCost + 1).fill(Infinity);
    dp[0] = 0;
    for (const g of groups) {
      const next = new Float64Array(maxCost + 1).fill(Infinity);
      for (let c = 0; c <= maxCost; c++) {
        if (dp[c] === Infinity) continue;
        for (const ch of g) if (c + ch.cost <= maxCost && dp[c]! + ch.value < next[c + ch.cost]!) next[c + ch.cost] = dp[c]! + ch.value;
      }
      dp = next;
    }
    const prefixMin = new Float64Array(maxCost + 1);
    let m = Infinity;
    for (let c = 0; c <= maxCost; c++) prefixMin[c] = m = Math.min(m, dp[c]!);
    const minCost = groups.reduce((s, g) => s + Math.min(...g.map((c) => c.cost)), 0);
    for (let k = 0; k < 15; k++) {
      const cap = Math.floor(minCost + r() * (maxCost - minCost));
      const s = solveKnapsack(groups, cap)!;
      n++;
      const cost = s.picks.reduce((a, p, g) => a + groups[g]![p]!.cost, 0);
      if (!(cost <= cap && close(s.value, prefixMin[cap]!))) wrong++;
    }
    for (const p of convexFrontier(groups)) if (!close(p.value, prefixMin[p.cost]!)) wrong++;
    t.equal(solveKnapsack(groups, minCost - 1), null);
  }
  t.equal(wrong, 0, `${n} capacities checked`);
});

t.test('budget boundaries: exactly at a frontier cost, and one bit below', async (t) => {
  const layers = [layer('a', 100, 5, 1, 0.1, 0, 1), layer('b', 30, 20, 0.5, 0.2, -1, 1), layer('c', 7, 1, 2, 0.05, 0, 3)];
  const report = new SensitivityReport('m', 'empirical', 'categorical', 1, true, layers);
  const N = 137;
  const base = searchMixedPrecisionSync(report, { budget: { averageBits: 8 } });
  t.equal(base.averageBits, 8, 'a budget covering everything: all 8 bits');
  t.same(base.config.weights, { a: 8, b: 8, c: 8 });
  t.same(base.config.activations, { a: 8, b: 8, c: 8 });
  t.ok(base.frontier.length >= 10);
  for (const p of base.frontier) {
    const bits = p.bytes * 8;
    const at = searchMixedPrecisionSync(report, { budget: { averageBits: bits / N } });
    t.ok(close(at.fit, p.fit) && at.bytes * 8 <= bits, `averageBits ${bits / N}`);
    const atBytes = searchMixedPrecisionSync(report, { budget: { bytes: p.bytes } });
    t.ok(close(atBytes.fit, p.fit));
    if (p !== base.frontier[0]) {
      const below = searchMixedPrecisionSync(report, { budget: { bytes: (bits - 1) / 8 } });
      t.ok(below.fit > p.fit && below.bytes * 8 <= bits - 1, `one bit below ${bits}`);
    }
  }
  // the least budget accepted is the all-2-bit configuration
  const min = searchMixedPrecisionSync(report, { budget: { averageBits: 2 } });
  t.same(min.config.weights, { a: 2, b: 2, c: 2 });
  t.equal(min.bytes, (137 * 2) / 8);
  t.equal(min.budget.minimum, 2);
});

t.test('result fields hold together', async (t) => {
  const inst = randomInstance(7, 6, true);
  const r: SearchResult = await searchMixedPrecision(inst.report, { budget: { bops: 200000 }, weightBits: [2, 4, 8], activationBits: [4, 8], macs: inst.macs });
  const sum = (f: (l: SearchResult['layers'][number]) => number) => r.layers.reduce((s, l) => s + f(l), 0);
  t.ok(close(r.fit, sum((l) => l.fit)));
  t.ok(close(r.fit, inst.report.fit(r.config)));
  t.equal(r.bytes, sum((l) => (l.weightCount * l.weightBits) / 8));
  t.equal(r.bops, sum((l) => l.macs! * l.weightBits * l.activationBits));
  t.ok(r.bops! <= 200000);
  t.ok(close(r.averageBits, (r.bytes * 8) / sum((l) => l.weightCount)));
  t.same(Object.keys(r.config.weights), inst.layers.map((l) => l.name));
  t.ok(r.frontier.some((p) => close(p.fit, r.fit) && p.bops === r.bops), 'the chosen configuration is on the frontier');
  t.equal(r.budget.kind, 'bops');
  // without macs there are no BOPs to report
  const noMacs = searchMixedPrecisionSync(inst.report, { budget: { averageBits: 4 } });
  t.equal(noMacs.bops, null);
  t.ok(noMacs.layers.every((l) => l.activationBits === 8), 'activations stay at 8 bits by default');
  // activation bits do not enter averageBits budgets: the most accurate activation width is taken
  const acts = searchMixedPrecisionSync(inst.report, { budget: { averageBits: 4 }, activationBits: [4, 6] });
  t.ok(acts.layers.every((l) => l.activationBits === 6));
  t.same(acts.config.weights, noMacs.config.weights);
});

t.test('errors', async (t) => {
  const report = new SensitivityReport('m', 'e', 'c', 1, true, [layer('a', 100, 5, 1, 0.1, 0, 1), layer('b', 50, 2, 1, 0.1, 0, 1)]);
  const e = (fn: () => unknown, re: RegExp, cls: new (...a: never[]) => Error = InvalidOptionError) => {
    let err: unknown;
    try {
      fn();
    } catch (x) {
      err = x;
    }
    t.ok(err instanceof cls, `${cls.name}: ${re.source}`);
    t.match((err as Error | undefined)?.message, re);
    t.equal((err as { code?: string } | undefined)?.code, cls === InvalidOptionError ? 'ERR_INVALID_OPTION' : 'ERR_INVALID_INPUT');
  };
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 1.9 } }), /Budget averageBits = 1\.9 is below the minimum achievable 2 bits per weight/);
  e(() => searchMixedPrecisionSync(report, { budget: { bytes: 37 }, weightBits: [3, 4] }), /Budget bytes = 37 is below the minimum achievable 56\.25 bytes/);
  e(() => searchMixedPrecisionSync(report, { budget: { bops: 100 }, macs: { a: 10, b: 20 } }), /Budget bops = 100 is below the minimum achievable 480 bit-operations \(every layer at 2-bit weights and 8-bit activations\)/);
  e(() => searchMixedPrecisionSync(report, { budget: { bops: 1e6 } }), /A bops budget needs the MACs of every layer: pass option macs/);
  e(() => searchMixedPrecisionSync(report, { budget: { bops: 1e6 }, macs: { a: 10 } }), /Option macs has no entry for layer 'b'/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 4 }, weightBits: [1, 4] }), /Expected a non-empty array of integer bit widths in \[2, 16\] for option weightBits but received \[1,4\]/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 4 }, activationBits: [] }), /for option activationBits but received \[\]/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: -4 } }), /Expected a positive finite number for option budget.averageBits but received -4/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 4, bytes: 3 } as never }), /exactly one\) for option budget but received \{"averageBits":4,"bytes":3\}/);
  e(() => searchMixedPrecisionSync(report, { budget: { bits: 4 } as never }), /for option budget but received \{"bits":4\}/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 4 }, macs: { a: -1, b: 1 } }), /Expected a non-negative finite number for option macs\['a'\] but received -1/);
  e(() => searchMixedPrecisionSync(report, { budget: { averageBits: 4 }, weightbits: [4] } as never), /received an option 'weightbits'/);
  e(() => searchMixedPrecisionSync(new SensitivityReport('m', 'e', 'c', 1, true, []), { budget: { averageBits: 4 } }), /no quantizable layers/, InvalidInputError);
  const nan = layer('n', 10, NaN, 1, 0, 0, 1);
  e(() => searchMixedPrecisionSync(new SensitivityReport('m', 'e', 'c', 1, true, [nan]), { budget: { averageBits: 4 } }), /Layer 'n' of the sensitivity report has a missing, negative or non-finite/, InvalidInputError);
  await t.rejects(searchMixedPrecision(report, { budget: { averageBits: 1 } }), { code: 'ERR_INVALID_OPTION' });
});

t.test('SensitivityReport.fromJSON round trip and validation', async (t) => {
  const report = new SensitivityReport('m.onnx', 'empirical', 'categorical', 64, false, [layer('a', 100, 5, 1, 0.1, 0, 1), layer('b', 50, 2, 1, 0.1, 0, 1)]);
  const json = JSON.parse(JSON.stringify(report.toJSON()));
  const back = SensitivityReport.fromJSON(json);
  t.same(back.toJSON(), report.toJSON());
  const cfg = { weights: { a: 3, b: 5 }, activations: { a: 6 } };
  t.equal(back.fit(cfg), report.fit(cfg));
  json.layers[1].activation.max = 'Infinity';
  t.equal(SensitivityReport.fromJSON(json).layers[1]!.activation.max, Infinity);
  t.throws(() => SensitivityReport.fromJSON({ ...json, version: 2 }, 's.json'), { code: 'ERR_INVALID_INPUT', message: /s\.json: expected "version" to be 1 but received 2/ });
  json.layers[0].weight.fisherTrace = 'big';
  t.throws(() => SensitivityReport.fromJSON(json), { message: /expected layers\[0\]\.weight\.fisherTrace to be a number but received "big"/ });
  t.throws(() => SensitivityReport.fromJSON([]), { message: /expected the top level to be an object/ });
});

t.test('MACs of a small Conv / ConvTranspose / Gemm / MatMul model', async (t) => {
  const f = (n: number) => Array.from({ length: n }, (_, i) => ((i % 7) - 3) / 10);
  const spec = (batch: number | string) => makeModel({
    opset: 13,
    inputs: [{ name: 'x', dims: [batch, 2, 6, 6] }],
    outputs: [{ name: 'y' }, { name: 't' }],
    initializers: [
      { name: 'W1', dims: [4, 2, 3, 3], type: 'float32', data: f(72) },
      { name: 'W2', dims: [4, 2, 3, 3], type: 'float32', data: f(72) },
      { name: 'W3', dims: [3, 4], type: 'float32', data: f(12) },
      { name: 'W4', dims: [3, 5], type: 'float32', data: f(15) },
      { name: 'WT', dims: [4, 2, 2, 2], type: 'float32', data: f(32) },
    ],
    nodes: [
      // [2,6,6] -> pad 1, stride 2 -> [4,3,3]: 36 outputs x (2 x 3 x 3) = 648
      { op: 'Conv', name: 'conv', inputs: ['x', 'W1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } },
      // grouped (2 groups): [4,3,3] -> [4,1,1]: 4 outputs x (4/2 x 3 x 3) = 72
      { op: 'Conv', name: 'gconv', inputs: ['c1', 'W2'], outputs: ['c2'], attrs: { group: 2 } },
      // transposed, stride 2: 36 inputs x (2 x 2 x 2) = 288
      { op: 'ConvTranspose', name: 'deconv', inputs: ['c1', 'WT'], outputs: ['t'], attrs: { strides: [2, 2] } },
      { op: 'Flatten', name: 'flat', inputs: ['c2'], outputs: ['h'] },
      // [4] -> [3]: 3 x 4 = 12
      { op: 'Gemm', name: 'gemm', inputs: ['h', 'W3'], outputs: ['g'], attrs: { transB: 1 } },
      // [3] -> [5]: 5 x 3 = 15
      { op: 'MatMul', name: 'matmul', inputs: ['g', 'W4'], outputs: ['y'] },
    ],
  });
  const want = { conv: 648, gconv: 72, deconv: 288, gemm: 12, matmul: 15 };
  t.same(layerMacs(spec('N')), want, 'dynamic batch');
  t.same(layerMacs(spec('N'), { batch: 5 }), want, 'per sample with batch 5');
  t.same(layerMacs(spec(3)), want, 'per sample with a fixed batch of 3');
});
