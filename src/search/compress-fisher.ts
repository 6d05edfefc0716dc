/**
 * modelFisher(): a FisherCallback for planCompression's re-estimation that runs sensitivity() on
 * the model with its quantizable weights replaced by a compressed set.
 *
 * The planner's weights are in the report's layout: BatchNorm-folded when the report folded it.
 * The model keeps the raw (unfolded) initializers, so a folded weight W' = W * s is written back as
 * W' / s (per output channel, float32) and sensitivity() folds it again (equal up to float32
 * rounding, which does not matter for a Fisher estimate; pruned weights stay exactly 0).
 */
import { InvalidOptionError } from '../errors.js';
import { prepareModel } from '../engine/load.js';
import { foldBatchNorm, weightChannelScale } from '../onnx/fold-bn.js';
import { encodeModel, type TensorProto } from '../onnx/proto.js';
import { readModel } from '../onnx/read.js';
import type { SensitivityReport } from '../fisher/report.js';
import { sensitivity, type SensitivityOptions } from '../fisher/sensitivity.js';
import type { FisherCallback } from './compress-options.js';

const FLOAT = 1; // TensorProto.DataType.FLOAT

export function modelFisher(
  model: string | Uint8Array,
  report: SensitivityReport,
  options: Omit<SensitivityOptions, 'foldBatchNorm'>,
): FisherCallback {
  const om = readModel(model);
  const graph = om.proto.graph!;
  const inits = new Map(graph.initializer.map((t, i) => [t.name, i]));
  // per-element factors of folded weights (W' = W * f)
  const factors = new Map<string, Float64Array>();
  if (report.foldBatchNorm) {
    const prepared = prepareModel(om, { inputShapes: options.inputShapes });
    for (const pair of foldBatchNorm(prepared.graph).folded) {
      const dims = prepared.graph.initializers.get(pair.weight)!.dims;
      factors.set(pair.weight, weightChannelScale(pair.op, dims, pair.group, pair.scale));
    }
  }
  for (const l of report.layers)
    if (!inits.has(l.weight.name))
      throw new InvalidOptionError(
        `Weight '${l.weight.name}' of layer '${l.name}' is not an initializer of ${om.name} (a Constant node?), so modelFisher() cannot replace it; pass your own fisher callback`,
      );
  return async (weights) => {
    const initializer: TensorProto[] = [...graph.initializer];
    for (const l of report.layers) {
      const w = weights[l.weight.name]!;
      const f = factors.get(l.weight.name);
      const raw = new Uint8Array(w.length * 4);
      const view = new DataView(raw.buffer);
      for (let j = 0; j < w.length; j++) {
        const v = f ? (f[j] === 0 ? 0 : w[j]! / f[j]!) : w[j]!;
        view.setFloat32(j * 4, v, true);
      }
      const old = graph.initializer[inits.get(l.weight.name)!]!;
      initializer[inits.get(l.weight.name)!] = {
        name: old.name, dims: old.dims, dataType: FLOAT, rawData: raw,
        floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], stringData: [], externalData: [],
      };
    }
    const bytes = encodeModel({ ...om.proto, graph: { ...graph, initializer } });
    const fresh = await sensitivity(bytes, { ...options, foldBatchNorm: report.foldBatchNorm });
    return Object.fromEntries(fresh.layers.map((l) => [l.weight.name, l.weight.fisherDiagonal]));
  };
}
