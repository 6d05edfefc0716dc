/** onnx-fit: the public API. */
export * from './errors.js';
export { inspect, type InspectOptions, type InspectReport } from './inspect.js';
export { readModel, type OnnxModel } from './onnx/read.js';
export { normalize } from './onnx/normalize.js';
export { findQuantizableLayers } from './onnx/layers.js';
export type { Graph, GraphNode, QuantizableLayer, TensorData } from './onnx/types.js';
export { EngineModel, type Inputs, type InputTensor, type RunOptions } from './engine/model.js';
export { loadEngineModel, prepareModel, type PrepareOptions, type PreparedModel } from './engine/load.js';
export { readNpy, writeNpy, parseNpy, type NpyArray } from './data/npy.js';
export { sensitivity, type SensitivityOptions, type SensitivityProgress, type Estimator } from './fisher/sensitivity.js';
export { SensitivityReport, type LayerSensitivity, type FitConfig, type SensitivityJson } from './fisher/report.js';
export { foldBatchNorm } from './onnx/fold-bn.js';
export { openData, type DataSpec } from './data/source.js';
export type { GradientRequest, GradientResult, Likelihood } from './engine/model.js';
export { closeWorkers } from './engine/pool.js';
