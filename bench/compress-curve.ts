/**
 * The accuracy/compression curve of the demo CNN (assets/demo, all 512 labelled samples): FITCompress
 * (A*, default schedules, Fisher from the same samples) and the three baselines of
 * src/search/baselines.ts at targets 0.25, 0.1, 0.05, 0.02, every model measured with
 * onnxruntime-node in the same run. Calibration and evaluation data are the same 512 samples (the
 * demo ships no separate split), so the figures compare methods; they are not held-out accuracies.
 * Standalone: node --import tsx bench/compress-curve.ts
 */
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { baselineTitle, compressCurve, type CompressCurve } from '../src/search/compress.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

export async function benchCompressCurve(targets = [0.25, 0.1, 0.05, 0.02], opts: { workers?: number; maxSamples?: number } = {}): Promise<CompressCurve> {
  const demo = join(root, 'assets', 'demo');
  const t0 = performance.now();
  const c = await compressCurve(join(demo, 'cnn.onnx'), {
    data: { input: join(demo, 'calib_x.npy'), labels: join(demo, 'calib_y.npy') },
    targets,
    tolerance: 0,
    ...(opts.workers !== undefined && { workers: opts.workers }),
    ...(opts.maxSamples !== undefined && { maxSamples: opts.maxSamples }),
  });
  const ms = performance.now() - t0;
  const samples = c.results[0]!.measured!.samples;
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '      -' : `${(100 * v).toFixed(2).padStart(6)}%`);
  const names = c.results[0]!.baselines.map((b) => b.name);
  const heads = ['FITCompress', ...names.map(baselineTitle)];
  console.log(`FITCompress vs baselines on the demo CNN, ${samples} samples (Fisher and evaluation), float32 accuracy ${pct(c.float).trim()}; ${(ms / 1000).toFixed(1)} s in all`);
  console.log(`  accuracy @ compression (active bytes / fp32 bytes); columns: ${heads.join(' | ')}`);
  for (const r of c.results) {
    const cells = [
      `${pct(r.measured?.accuracy)} @ ${r.compression.toFixed(4)}`,
      ...names.map((n) => {
        const b = r.baselines.find((x) => x.name === n)!;
        return b.reachable ? `${pct(b.measured?.accuracy)} @ ${b.compression!.toFixed(4)} (${b.label})` : 'unreachable';
      }),
    ];
    console.log(`  target ${String(r.target).padEnd(5)} ${cells.map((x, i) => (i === 0 ? x : x.padEnd(i === 1 ? 42 : 36))).join('  ')}`);
  }
  for (const r of c.results) {
    const layers = r.report.layers.map((l) => `${l.name} ${r.config.weights[l.name] !== undefined ? `${r.config.weights[l.name]}b` : "float"}/${(100 * r.plan.final.sparsity[l.name]!).toFixed(1)}%`);
    console.log(`  plan at ${r.target}: ${r.plan.plan.length} moves, ${layers.join(', ')}; planned in ${r.plan.ms.toFixed(0)} ms`);
  }
  return c;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchCompressCurve().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
