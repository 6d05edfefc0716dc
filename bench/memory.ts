/**
 * Peak memory of a Fisher pass (one worker, on this thread) beside its floor, per DESIGN.md:
 *   floor    = weights + Fisher diagonal (float64 per quantizable weight) + one batch's activations
 *              (every node output of the prepared, BatchNorm-folded graph at the batch size, float32)
 *   measured = weights + Fisher diagonal (JS arrays, counted by size) + the engine's peak bytes in
 *              use during the pass (tensors and scratch of the native engine: activations kept for
 *              backward, gradients, per-sample squares, size-class slack)
 * Goal: measured <= 1.5x floor. Also printed: the process's resident-set growth over the pass (an
 * upper bound that includes V8, the block cache and code).
 */
import { prepareModel } from '../src/engine/load.js';
import { loadAddon } from '../src/engine/addon.js';
import { foldBatchNorm } from '../src/onnx/fold-bn.js';
import { sensitivity } from '../src/index.js';

const prod = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

export function fisherFloor(path: string, input: string, dims: number[]) {
  const prepared = prepareModel(path, { inputShapes: { [input]: dims } });
  const graph = foldBatchNorm(prepared.graph).graph;
  let activations = 0;
  for (const node of graph.nodes)
    for (const o of node.outputs) {
      const s = graph.shapes.get(o);
      if (!s) throw new Error(`bench memory: no shape for '${o}'`);
      activations += prod(s) * 4;
    }
  let weights = 0;
  for (const t of graph.initializers.values()) weights += t.data.byteLength;
  const diagonal = prepared.layers.reduce((a, l) => a + prod((graph.initializers.get(l.weight) ?? prepared.graph.initializers.get(l.weight)!).dims) * 8, 0);
  return { activations, weights, diagonal };
}

export async function benchMemory(name: string, path: string, input: string, dims: number[], samples: number) {
  const addon = loadAddon();
  const { activations, weights, diagonal } = fisherFloor(path, input, dims);
  const per = prod(dims.slice(1));
  const data = new Float32Array(samples * per);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const rss0 = process.memoryUsage().rss;
  addon.memoryStats(true);
  const before = addon.memoryStats();
  await sensitivity(path, { data: { input: { dims: [samples, ...dims.slice(1)], data } }, inputShapes: { [input]: dims }, batchSize: dims[0], tolerance: 0, workers: 1 });
  const after = addon.memoryStats();
  const rssGrowth = process.resourceUsage().maxRSS * 1024 - rss0;
  const floor = weights + diagonal + activations;
  const measured = weights + diagonal + (after.peak - before.inUse);
  console.log(
    `memory   ${name.padEnd(22)} batch ${dims[0]}, Fisher pass, 1 worker: peak ${mb(measured)} MB = ${(measured / floor).toFixed(2)}x floor ${mb(floor)} MB ` +
      `(weights ${mb(weights)} + diagonal ${mb(diagonal)} + activations ${mb(activations)}; goal <= 1.5x); engine in use after ${mb(after.inUse - before.inUse)} MB; ` +
      `process RSS grew ${mb(rssGrowth)} MB`,
  );
}
