/** The weights a sensitivity report was computed on, read back from its model (folded like it). */
import { InvalidInputError } from '../errors.js';
import { prepareModel } from '../engine/load.js';
import { foldBatchNorm } from '../onnx/fold-bn.js';
import type { SensitivityReport } from '../fisher/report.js';

/**
 * Weight (initializer) name -> float32 data of every layer in the report, from the model the report
 * was computed on, BatchNorm folded when the report folded it (the Fisher diagonal is in that layout).
 */
export function reportWeights(
  model: string | Uint8Array,
  report: SensitivityReport,
  opts: { inputShapes?: Record<string, number[]> } = {},
): Record<string, Float32Array> {
  const prepared = prepareModel(model, { inputShapes: opts.inputShapes });
  const graph = report.foldBatchNorm ? foldBatchNorm(prepared.graph).graph : prepared.graph;
  const out: Record<string, Float32Array> = {};
  for (const layer of report.layers) {
    const t = graph.initializers.get(layer.weight.name);
    if (!t || !(t.data instanceof Float32Array))
      throw new InvalidInputError(
        `The model has no float weight '${layer.weight.name}' (layer '${layer.name}' of the report); pass the model the report was computed on`,
      );
    if (t.data.length !== layer.weight.count)
      throw new InvalidInputError(
        `Weight '${layer.weight.name}' has ${t.data.length} elements in the model but ${layer.weight.count} in the report; pass the model the report was computed on`,
      );
    out[layer.weight.name] = t.data;
  }
  return out;
}
