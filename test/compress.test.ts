/**
 * compress(): FITCompress on the demo CNN end to end — the exported model carries the plan's
 * masks and grids bit for bit (fake-quant and QDQ), onnxruntime-node's accuracy of the file equals
 * what compress() measured, baselines at <= the target, determinism, and masks in export/evaluate.
 */
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sensitivity } from '../src/fisher/sensitivity.js';
import type { SensitivityReport } from '../src/fisher/report.js';
import { compress, compressCurve, exportCompressed, type CompressResult } from '../src/search/compress.js';
import { readModel } from '../src/onnx/read.js';
import { tensorProtoToData } from '../src/onnx/proto.js';
import { quantizeModel } from '../src/onnx/write.js';
import { evaluate } from '../src/eval/evaluate.js';
import { readNpy, toFloat32 } from '../src/data/npy.js';
import { InvalidOptionError } from '../src/errors.js';
import { MODELS } from './helpers/models.js';
import { compressionRef } from './helpers/compress-ref.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-compress-'));
const demo = join(MODELS.demoCnn, '..');
const data = { input: join(demo, 'calib_x.npy'), labels: join(demo, 'calib_y.npy') };
const SAMPLES = 128;
const common = { data, maxSamples: SAMPLES, workers: 1 };
let report: SensitivityReport;
let result: CompressResult;

t.before(async () => {
  report = await sensitivity(MODELS.demoCnn, { ...common, tolerance: 0 });
  result = await compress(MODELS.demoCnn, { ...common, report, target: 0.1 });
});

/** Weight name -> dequantized weight values (and the step when quantized) of an exported model. */
function exportedWeights(path: string): Map<string, { values: Float32Array; scale?: number }> {
  const m = readModel(path);
  const g = m.proto.graph!;
  const inits = new Map(g.initializer.map((x) => [x.name, x]));
  const out = new Map<string, { values: Float32Array; scale?: number }>();
  for (const n of g.node) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
    const w = n.input[1]!;
    const dq = g.node.find((d) => d.opType === 'DequantizeLinear' && d.output[0] === w);
    if (!dq) {
      out.set(w, { values: tensorProtoToData(inits.get(w)!).data as Float32Array });
      continue;
    }
    const q = tensorProtoToData(inits.get(dq.input[0]!)!).data as BigInt64Array;
    const scale = (tensorProtoToData(inits.get(dq.input[1]!)!).data as Float32Array)[0]!;
    const values = Float32Array.from(q, (v) => Number(v) * scale);
    out.set(w.replace(/_dequantized$/, ''), { values, scale });
  }
  return out;
}

async function ortAccuracy(path: string, samples: number): Promise<number> {
  const x = readNpy(data.input);
  const y = readNpy(data.labels);
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  const s = await ort.InferenceSession.create(path);
  let correct = 0;
  const xs = toFloat32(x);
  const labels = y.data as BigInt64Array;
  for (let start = 0; start < samples; start += 64) {
    const n = Math.min(64, samples - start);
    const feed = new ort.Tensor('float32', xs.slice(start * per, (start + n) * per), [n, ...x.dims.slice(1)]);
    const logits = (await s.run({ input: feed })).logits!.data as Float32Array;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k]! > logits[i * 10 + best]!) best = k;
      if (best === Number(labels[start + i])) correct++;
    }
  }
  await s.release();
  return correct / samples;
}

t.test('the plan reaches the target and is measured beside the float model', async (t) => {
  t.ok(result.compression <= 0.1, `compression ${result.compression}`);
  // Independent of plan.final: replay the plan's moves from "every layer in float" to get each
  // layer's final width, count the kept weights in the masks, and recompute the compression.
  const bitsOf = new Map(report.layers.map((l) => [l.name, 32]));
  for (const s of result.plan.plan) {
    if (s.move.kind !== 'quantize') continue;
    t.equal(s.move.fromBits, bitsOf.get(s.move.layer), `${s.move.layer}: move from its current width`);
    bitsOf.set(s.move.layer, s.move.toBits);
  }
  const replayed = Object.fromEntries([...bitsOf].filter(([, b]) => b !== 32));
  t.ok(Object.keys(replayed).length > 0, `the plan quantizes some layers (${JSON.stringify(replayed)})`);
  const nnz = report.layers.map((l) => result.masks[l.weight.name]!.reduce((a, m) => a + (m ? 1 : 0), 0));
  const counts = report.layers.map((l) => l.weight.count);
  t.same(report.layers.map((l) => result.masks[l.weight.name]!.length), counts, 'one mask entry per weight');
  const expected = compressionRef(nnz, report.layers.map((l) => bitsOf.get(l.name)!), counts);
  t.equal(result.compression, expected, `compression ${result.compression} = sum(nnz * bits) / (32 * N) from masks and replayed widths`);
  t.equal(result.plan.final.compression, expected);
  t.equal(result.metric, 'accuracy');
  t.equal(result.measured!.samples, SAMPLES);
  t.ok(result.float! > 0.8, `float accuracy ${result.float}`);
  t.ok(result.measured!.accuracy! > 0.5, `compressed accuracy ${result.measured!.accuracy}`);
  t.ok(result.sparsity > 0 && result.sparsity < 1);
  t.same(result.config.weights, replayed, "config.weights = the widths the plan's moves lead to");
  t.same(result.plan.final.weights, replayed);
  // and from the compressed weights themselves: the largest kept |w| of a b-bit layer is 2^(b-1) - 1 steps
  for (const l of report.layers) {
    const b = bitsOf.get(l.name)!;
    if (b === 32) continue;
    const top = result.plan.weights[l.weight.name]!.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    t.equal(Math.round(top / result.plan.scales[l.weight.name]!), 2 ** (b - 1) - 1, `${l.name}: ${b}-bit grid reaches +-${2 ** (b - 1) - 1}`);
  }
  t.same(Object.keys(result.masks).sort(), report.layers.map((l) => l.weight.name).sort());
});

for (const format of ['fake-quant', 'qdq'] as const) {
  t.test(`${format}: exported weights are the plan's, masked and on their grid; ORT accuracy matches`, async (t) => {
    const out = join(dir, `cnn-${format}.onnx`);
    const summary = await exportCompressed(MODELS.demoCnn, result, out, { format });
    t.equal(summary.format, format);
    const got = exportedWeights(out);
    for (const l of report.layers) {
      const w = got.get(l.weight.name);
      t.ok(w, `weight ${l.weight.name} found`);
      const planned = result.plan.weights[l.weight.name]!;
      const mask = result.masks[l.weight.name]!;
      t.equal(w!.values.length, planned.length);
      let same = 0;
      let zeros = 0;
      let maskedZero = true;
      let onGrid = true;
      const bits = result.config.weights[l.name];
      const delta = result.plan.scales[l.weight.name]!;
      for (let j = 0; j < planned.length; j++) {
        if (w!.values[j] === planned[j]) same++;
        if (w!.values[j] === 0) zeros++;
        if (!mask[j] && w!.values[j] !== 0) maskedZero = false;
        if (bits !== undefined) {
          // w = q * Delta (float32) with an integer |q| <= 2^(b-1) - 1
          const q = Math.round(w!.values[j]! / delta);
          if (Math.fround(q * delta) !== w!.values[j] || Math.abs(q) > 2 ** (bits - 1) - 1) onGrid = false;
        }
      }
      const prunedPlanned = Math.round(result.plan.final.sparsity[l.name]! * planned.length);
      t.equal(same, planned.length, `${l.name}: every exported weight equals plan.weights`);
      t.ok(maskedZero, `${l.name}: masked positions are exactly 0`);
      t.ok(zeros >= prunedPlanned, `${l.name}: ${zeros} zeros >= ${prunedPlanned} planned pruned`);
      t.ok(onGrid, `${l.name}: w / Delta is an integer (${bits ?? 'float'} bits)`);
      if (bits !== undefined && format === 'qdq') t.equal(w!.scale, delta, `${l.name}: stored scale is the plan's Delta`);
      const e = summary.layers.find((x) => x.name === l.name);
      t.equal(e?.pruned?.count, prunedPlanned);
    }
    t.equal(await ortAccuracy(out, SAMPLES), result.measured!.accuracy, 'onnxruntime-node accuracy of the file = measured');
  });
}

t.test('baselines: at compression <= target, reported, measured with the same data', async (t) => {
  const names = result.baselines.map((b) => b.name);
  t.same(names, ['uniform+magnitude', 'fit-mixed-precision', 'magnitude-pruning']);
  for (const b of result.baselines) {
    t.ok(b.reachable, `${b.name} reachable at 0.1`);
    t.ok(b.compression! <= 0.1 && b.compression! > 0.05, `${b.name}: compression ${b.compression}`);
    t.equal(b.measured?.samples, SAMPLES);
    t.equal(b.measured?.floatAccuracy, result.float);
  }
  const prune = result.baselines[2]!;
  t.ok(Math.abs(prune.sparsity - 0.9) < 1e-4, `pruning alone at 32 bits: sparsity ${prune.sparsity}`);
  t.same(prune.weights, {});
  const uni = result.baselines[0]!;
  t.equal(new Set(Object.values(uni.weights)).size, 1, 'one bit width');
  const mp = result.baselines[1]!;
  t.equal(mp.sparsity, 0);
  t.equal(mp.masks, undefined);

  // below 2/32, mixed precision alone cannot get there
  const low = await compress(MODELS.demoCnn, { ...common, report, target: 0.03, evaluate: false });
  t.equal(low.measured, null);
  const mpl = low.baselines.find((b) => b.name === 'fit-mixed-precision')!;
  t.equal(mpl.reachable, false);
  t.match(mpl.reason, /at best 2\/32/);
  for (const b of low.baselines.filter((x) => x.reachable)) t.ok(b.compression! <= 0.03, `${b.name}: ${b.compression}`);
});

t.test('the same inputs give the same plan', async (t) => {
  const a = await compress(MODELS.demoCnn, { ...common, target: 0.1, evaluate: false, baselines: false });
  const b = await compress(MODELS.demoCnn, { ...common, target: 0.1, evaluate: false, baselines: false });
  t.same(a.plan.plan, b.plan.plan);
  t.same(a.config, b.config);
  for (const k of Object.keys(a.masks)) t.same(Array.from(a.masks[k]!), Array.from(b.masks[k]!));
  t.same(a.baselines, []);
});

t.test('re-estimating the Fisher along the plan (every-k) reaches the target too', async (t) => {
  const r = await compress(MODELS.demoCnn, { ...common, report, target: 0.05, algorithm: 'greedy', reestimate: 'every-k', reestimateEvery: 4, evaluate: false, baselines: false });
  t.ok(r.plan.reestimations >= 1, `${r.plan.reestimations} re-estimations`);
  t.ok(r.compression <= 0.05);
});

t.test('compressCurve: one report, one evaluator, curves for the chart', async (t) => {
  const c = await compressCurve(MODELS.demoCnn, { ...common, report, targets: [0.25, 0.05], algorithm: 'greedy' });
  t.equal(c.results.length, 2);
  t.ok(c.results.every((r) => r.compression <= r.target));
  t.equal(c.curves!.metric, 'accuracy');
  t.equal(c.curves!.curves[0]!.name, 'FITCompress');
  t.equal(c.curves!.curves[0]!.points.length, 2);
  const mp = c.curves!.curves.find((x) => x.name === 'FIT mixed precision')!;
  t.equal(mp.points.length, 1, 'mixed precision reaches 0.25, not 0.05');
});

t.test('masks in quantizeModel / evaluate', async (t) => {
  const w = result.masks['fc2.weight']!;
  // a mask without bits: float weights, masked; by layer name
  const { summary } = await quantizeModel(MODELS.demoCnn, {}, { masks: { fc2: w } });
  t.same(summary.layers.map((l) => l.name), ['fc2']);
  t.equal(summary.layers[0]!.weight, undefined);
  const e = await evaluate(MODELS.demoCnn, { weights: result.config.weights }, { ...common, masks: result.masks });
  t.equal(e.accuracy, result.measured!.accuracy, 'evaluate() with the masks = compress() measurement');
  await t.rejects(quantizeModel(MODELS.demoCnn, {}, { masks: { nope: w } }), InvalidOptionError);
  await t.rejects(quantizeModel(MODELS.demoCnn, {}, { masks: { fc2: w.subarray(1) } }), /Expected a Uint8Array of 640 values/);
  await t.rejects(quantizeModel(MODELS.demoCnn, {}, { masks: { fc2: new Uint8Array(640).fill(2) } }), /only 0 \(pruned\) and 1/);
  await t.rejects(compress(MODELS.demoCnn, { ...common, report, target: 0 }), /Expected a number in \(0, 1\] for option target but received 0/);
  await t.rejects(compress(MODELS.demoCnn, { ...common, report, target: 1e-7, evaluate: false }), /Expected a target compression of at least/);
});
