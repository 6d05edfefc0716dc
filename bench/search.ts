/**
 * Mixed-precision search time (exact solver + frontier), on synthetic reports: random Fisher
 * traces, weight counts and ranges, 7 weight bit widths (2..8). Goal: 200 layers x 7 widths in
 * under 100 ms. Standalone: node --import tsx bench/search.ts
 */
import { pathToFileURL } from 'node:url';
import { SensitivityReport, type LayerSensitivity } from '../src/fisher/report.js';
import { searchMixedPrecisionSync, type Budget } from '../src/search/mixed-precision.js';
import { rng } from '../test/helpers/random.js';

const BITS = [2, 3, 4, 5, 6, 7, 8];


/** A report of `n` layers: counts 100 .. 1e6 (log-uniform), traces 1e-3 .. 1e3, random ranges. */
export function syntheticReport(n: number, seed = 1): SensitivityReport {
  const r = rng(seed);
  const layers: LayerSensitivity[] = Array.from({ length: n }, (_, i) => {
    const max = 0.05 + r();
    return {
      name: `layer${i}`,
      op: i % 3 === 0 ? 'Conv' : 'Gemm',
      weight: {
        name: `w${i}`, count: Math.floor(10 ** (2 + 4 * r())), min: -max * r(), max, fisherTrace: 10 ** (6 * r() - 3),
        stdError: null, fisherDiagonal: new Float64Array(0), channelTraces: [], dims: [],
      },
      activation: { name: `a${i}`, count: 1000, min: -r(), max: 1 + r(), fisherTrace: 10 ** (4 * r() - 3), stdError: null },
    };
  });
  return new SensitivityReport('synthetic', 'empirical', 'categorical', 1, true, layers);
}

function median(fn: () => void, runs = 7): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Median ms over seeds and budgets for `n` layers. */
function timeSearch(n: number, budgets: Budget[], seeds = [1, 2, 3]): { ms: number; worst: number; states: number } {
  const all: number[] = [];
  let states = 0;
  for (const seed of seeds) {
    const report = syntheticReport(n, seed);
    const weights = report.layers.reduce((s, l) => s + l.weight.count, 0);
    for (const b of budgets) {
      // bytes budgets are given as a fraction of the 8-bit size
      const budget = 'bytes' in b ? { bytes: (b.bytes * weights * 8) / 8 } : b;
      all.push(median(() => void searchMixedPrecisionSync(report, { budget, weightBits: BITS })));
      states = Math.max(states, searchMixedPrecisionSync(report, { budget, weightBits: BITS }).stats.states);
    }
  }
  all.sort((a, b) => a - b);
  return { ms: all[Math.floor(all.length / 2)]!, worst: all.at(-1)!, states };
}

export async function benchSearch(): Promise<void> {
  const budgets: Budget[] = [{ averageBits: 3 }, { averageBits: 4.25 }, { averageBits: 6 }, { bytes: 0.45 }, { bytes: 0.6 }];
  const main = timeSearch(200, budgets);
  const verdict = main.ms < 100 ? 'goal < 100 ms: met' : 'goal < 100 ms: MISSED';
  console.log(`mixed-precision search, 200 layers x 7 bit widths (averageBits and bytes budgets): median ${main.ms.toFixed(1)} ms, worst ${main.worst.toFixed(1)} ms (${verdict})`);
  console.log('search time vs layer count (7 bit widths; median / worst over 3 reports x 5 budgets):');
  console.log('  layers   median ms   worst ms   max DP states');
  for (const n of [25, 50, 100, 200, 400]) {
    const r = n === 200 ? main : timeSearch(n, budgets);
    console.log(`  ${String(n).padStart(6)}   ${r.ms.toFixed(2).padStart(9)}   ${r.worst.toFixed(2).padStart(8)}   ${String(r.states).padStart(13)}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchSearch().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
