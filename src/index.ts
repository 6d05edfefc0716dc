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
export {
  searchMixedPrecision, searchMixedPrecisionSync, frontierConfig, type SearchResult, type SearchLayer, type FrontierPoint,
  type MixedPrecisionConfig, type ReportLike, type Budget, type BudgetKind, type SearchOptions,
} from './search/mixed-precision.js';
export { layerMacs } from './search/macs.js';
export { solveKnapsack, convexFrontier, type Choice, type KnapsackSolution, type FrontierPick } from './search/knapsack.js';
export { foldBatchNorm } from './onnx/fold-bn.js';
export { openData, type DataSpec } from './data/source.js';
export type { GradientRequest, GradientResult, Likelihood } from './engine/model.js';
export { closeWorkers } from './engine/pool.js';
export { exportModel, quantizeModel, type ExportFormat, type ExportSummary, type ExportedLayer, type QuantizeOptions, type Calibration, type ActivationRanges } from './onnx/write.js';
export { quantizeWeight, activationParams, fakeQuantActivation, type QuantConfig } from './onnx/quantize.js';
export { evaluate, evaluateMany, createEvaluator, type Evaluator, type EvaluateOptions, type EvaluateProgress, type EvaluationResult } from './eval/evaluate.js';
export { validate, randomConfigs, type ValidateOptions, type ValidationResult, type ValidatedConfig } from './eval/validate.js';
export { layerwise, type LayerwiseOptions, type LayerwiseResult, type LayerAnalysis, type LayerFix } from './eval/layerwise.js';
export { spearman, kendall } from './eval/rank.js';
export { searchWithinDrop, type BoundedSearchOptions, type BoundedSearchResult, type BoundedEvaluation } from './search/bounded.js';
export { renderReport, writeReport, type ReportInput } from './report/html.js';
export { planCompression, modelFisher, reportWeights, type CompressPlan, type CompressStep, type CompressOptions, type CompressMove, type CompressProgress } from './search/fitcompress.js';
export {
  compress, compressCurve, exportCompressed, baselineTitle, type CompressModelOptions, type CompressCurveOptions, type CompressResult, type CompressCurve,
  type CompressModelProgress, type MeasuredBaseline, type Baseline, type BaselineName, type ExportCompressedOptions,
} from './search/compress.js';
export type { WeightMasks } from './onnx/masks.js';
