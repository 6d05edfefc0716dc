/**
 * Peak memory of a Fisher pass (one worker, on this thread) beside its floor, per DESIGN.md:
 *   floor    = weights + Fisher diagonal (float64 per quantizable weight) + one batch's activations
 *              (every node output of the prepared, BatchNorm-folded graph at the batch size, float32)
 *   measured = weights + Fisher diagonal (JS arrays, counted by size) + the engine's peak bytes in
 *              use during the pass (tensors and scratch of the native engine: activations kept for
 *              backward, gradients, per-sample squares, size-class slack)
 * Goal: measured <= 1.5x floor.
 */
import { loadAddon } from '../src/engine/addon.js';
import { sensitivity } from '../src/index.js';
import { fisherFloor } from '../test/helpers/memory.js';

const prod = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

export async function benchMemory(name: string, path: string, input: string, dims: number[], samples: number) {
  const addon = loadAddon();
  const { activations, weights, diagonal } = fisherFloor(path, input, dims);
  const per = prod(dims.slice(1));
  const data = new Float32Array(samples * per);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  addon.memoryStats(true);
  const before = addon.memoryStats();
  await sensitivity(path, { data: { input: { dims: [samples, ...dims.slice(1)], data } }, inputShapes: { [input]: dims }, batchSize: dims[0], tolerance: 0, workers: 1 });
  const after = addon.memoryStats();
  const floor = weights + diagonal + activations;
  const measured = weights + diagonal + (after.peak - before.inUse);
  console.log(
    `memory   ${name.padEnd(22)} batch ${dims[0]}, Fisher pass, 1 worker: peak ${mb(measured)} MiB = ${(measured / floor).toFixed(2)}x floor ${mb(floor)} MiB ` +
      `(weights ${mb(weights)} + diagonal ${mb(diagonal)} + activations ${mb(activations)}; goal <= 1.5x); engine in use after ${mb(after.inUse - before.inUse)} MiB`,
  );
}
