/**
 * The floor of a Fisher pass's memory (DESIGN.md benchmarks): weights + Fisher diagonal (float64
 * per quantizable weight) + one batch's activations (every node output of the prepared,
 * BatchNorm-folded graph at the batch size, float32). Used by test/memory.test.ts and
 * `npm run bench memory`.
 */
import { prepareModel } from '../../src/engine/load.js';
import { foldBatchNorm } from '../../src/onnx/fold-bn.js';

const prod = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

export function fisherFloor(path: string, input: string, dims: number[]) {
  const prepared = prepareModel(path, { inputShapes: { [input]: dims } });
  const graph = foldBatchNorm(prepared.graph).graph;
  let activations = 0;
  for (const node of graph.nodes)
    for (const o of node.outputs) {
      const s = graph.shapes.get(o);
      if (!s) throw new Error(`fisherFloor: no shape for '${o}'`);
      activations += prod(s) * 4;
    }
  let weights = 0;
  for (const t of graph.initializers.values()) weights += t.data.byteLength;
  const diagonal = prepared.layers.reduce((a, l) => a + prod((graph.initializers.get(l.weight) ?? prepared.graph.initializers.get(l.weight)!).dims) * 8, 0);
  return { activations, weights, diagonal };
}
