/**
 * FITCompress planning time (cost tables + search + final weights; no Fisher pass) on a synthetic
 * model: 56 quantizable layers, ~1.2M weights, random weights and Fisher diagonals; A* (paper
 * heuristic) and greedy at several targets, default schedules (7 bit widths x 40 pruning levels);
 * then 200 layers / 2M weights. A* stops at 20000 expansions or 2M known states and completes greedily
 * (fallback = true).
 * Standalone: node --import tsx bench/compress.ts
 */
import { pathToFileURL } from 'node:url';
import { SensitivityReport, type LayerSensitivity } from '../src/fisher/report.js';
import { planCompression } from '../src/search/fitcompress.js';
import { rng } from '../test/helpers/random.js';


/** `layers` layers with log-uniform counts scaled to `total` weights; Fisher scales 1e-4 .. 1e2. */
export function syntheticCompressModel(layers: number, total: number, seed = 1) {
  const r = rng(seed);
  const raw = Array.from({ length: layers }, () => 10 ** (2 + 3 * r()));
  const sum = raw.reduce((a, b) => a + b, 0);
  const weights: Record<string, Float32Array> = {};
  const ls: LayerSensitivity[] = raw.map((x, i) => {
    const n = Math.max(16, Math.round((x / sum) * total));
    const spread = 0.02 + 0.5 * r();
    const w = Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * spread);
    const scale = 10 ** (6 * r() - 4);
    const f = Float64Array.from({ length: n }, () => scale * r() ** 3);
    weights[`w${i}`] = w;
    return {
      name: `layer${i}`,
      op: 'Gemm',
      weight: { name: `w${i}`, count: n, min: 0, max: 0, fisherTrace: f.reduce((a, b) => a + b, 0), stdError: null, fisherDiagonal: f, channelTraces: [], dims: [n] },
      activation: { name: `a${i}`, count: 1, min: 0, max: 1, fisherTrace: 0, stdError: null },
    };
  });
  return { report: new SensitivityReport('synthetic', 'empirical', 'categorical', 1, false, ls), weights };
}

export async function benchCompress(): Promise<void> {
  const layers = 56;
  const { report, weights } = syntheticCompressModel(layers, 1_200_000);
  const total = report.layers.reduce((a, l) => a + l.weight.count, 0);
  console.log(`FITCompress planning, synthetic model: ${layers} layers, ${total} weights, schedule 32/8/6/5/4/3/2 bits x 40 pruning levels`);
  console.log('  algorithm  target   total ms  tables ms  search ms  expansions  moves  path cost   FIT        compression  fallback');
  await table(report, weights, [0.15, 0.08, 0.05, 0.02]);
  const big = syntheticCompressModel(200, 2_000_000, 2);
  console.log(`scaling: 200 layers, ${big.report.layers.reduce((a, l) => a + l.weight.count, 0)} weights`);
  await table(big.report, big.weights, [0.05]);
}

async function table(report: SensitivityReport, weights: Record<string, Float32Array>, targets: number[]): Promise<void> {
  for (const target of targets) {
    for (const algorithm of ['astar', 'greedy'] as const) {
      const heap0 = process.memoryUsage().heapUsed;
      const p = await planCompression(report, { weights, target, algorithm });
      const heap = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
      console.log(
        `  ${algorithm.padEnd(9)}  ${target.toFixed(2).padStart(6)}  ${p.ms.toFixed(0).padStart(9)}  ${p.tablesMs.toFixed(0).padStart(9)}  ` +
          `${p.searchMs.toFixed(1).padStart(9)}  ${String(p.expansions).padStart(10)}  ${String(p.plan.length).padStart(5)}  ` +
          `${p.totalCost.toExponential(3).padStart(9)}  ${p.final.fit.toExponential(3)}  ${p.final.compression.toFixed(4).padStart(11)}  ${p.fallback}` +
          `${heap > 50 ? `  (+${heap.toFixed(0)} MiB heap)` : ''}`,
      );
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchCompress().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
