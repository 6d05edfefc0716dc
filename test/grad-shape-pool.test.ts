/**
 * Gradient rules of the shape, pooling, resize and normalization ops against central finite
 * differences in float64 (checkGrads: L = sum_k <c_k, y_k>, every output seeded), over the forward
 * tests' attribute combinations. Every runtime float operand is checked; int64 shape operands and
 * resize scales/roi are constants. The one-node graphs free every graph input that a rule does not
 * declare saved, so a rule reading an undeclared input fails here. Plus: Split with gradient
 * reaching only one output, MaxPool ties, and zero gradients for a runtime scales operand.
 */
import t from 'tap';
import { checkGrads, type GradCase } from './helpers/grad.js';
import { EngineModel } from '../src/engine/model.js';
import type { Graph, TensorData } from '../src/onnx/types.js';
import { rng } from './helpers/random.js';

const f = (value: number) => ({ type: 'float' as const, value });
const fs = (value: number[]) => ({ type: 'floats' as const, value });
const i64 = (data: number[]) => ({ dims: [data.length], type: 'int64' as const, data, const: true });
const c32 = (data: number[]) => ({ dims: [data.length], data, const: true });
const emptyRoi = { dims: [0], data: [], const: true };
const absent = { dims: [0], absent: true };
const X4 = [2, 3, 4, 5];

// ------------------------------------------------------------------------------------------------
const shapeCases: GradCase[] = [
  ...[0, 1, 2, -1, 4].map((axis): GradCase => ({ op: 'Flatten', attrs: { axis }, inputs: [{ dims: X4 }] })),
  { name: '[6,20]', op: 'Reshape', inputs: [{ dims: X4 }, i64([6, 20])] },
  { name: '0 copies, -1 infers', op: 'Reshape', inputs: [{ dims: X4 }, i64([0, -1])] },
  { name: 'middle 0', op: 'Reshape', inputs: [{ dims: X4 }, i64([2, 0, 20])] },
  { name: 'all size-1 dims', op: 'Squeeze', opset: 13, inputs: [{ dims: [1, 3, 1, 5] }] },
  { name: 'axes attr', op: 'Squeeze', opset: 11, attrs: { axes: [0] }, inputs: [{ dims: [1, 3, 1, 5] }] },
  { name: 'axes input negative', op: 'Squeeze', opset: 13, inputs: [{ dims: [1, 3, 1, 5] }, i64([-2, 0])] },
  { name: 'axes attr', op: 'Unsqueeze', opset: 11, attrs: { axes: [0, 5] }, inputs: [{ dims: X4 }] },
  { name: 'axes input negative', op: 'Unsqueeze', opset: 13, inputs: [{ dims: X4 }, i64([-1, 1])] },
  { name: 'scalar', op: 'Unsqueeze', opset: 13, inputs: [{ dims: [] }, i64([0])] },
  ...[null, [0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3], [2, 0, 3, 1]].map(
    (perm): GradCase => ({ op: 'Transpose', attrs: perm ? { perm } : {}, inputs: [{ dims: X4 }] }),
  ),
  { name: '2-D default', op: 'Transpose', inputs: [{ dims: [7, 9] }] },
  { name: '3 inputs, middle axis', op: 'Concat', attrs: { axis: 1 }, inputs: [{ dims: [2, 1, 4] }, { dims: [2, 3, 4] }, { dims: [2, 2, 4], const: true }] },
  { name: '3 runtime inputs, middle axis', op: 'Concat', attrs: { axis: 1 }, inputs: [{ dims: [2, 2, 4] }, { dims: [2, 3, 4] }, { dims: [2, 1, 4] }] },
  { name: 'axis 0', op: 'Concat', attrs: { axis: 0 }, inputs: [{ dims: [2, 3] }, { dims: [1, 3] }] },
  { name: 'axis -1', op: 'Concat', attrs: { axis: -1 }, inputs: [{ dims: [2, 3, 2] }, { dims: [2, 3, 5] }, { dims: [2, 3, 1] }] },
  { name: 'opset 13 split input, 3 uneven', op: 'Split', opset: 13, outputs: 3, attrs: { axis: 1 }, inputs: [{ dims: [2, 7, 3] }, i64([2, 4, 1])] },
  { name: 'opset 11 split attr', op: 'Split', opset: 11, outputs: 3, attrs: { axis: 1, split: [3, 3, 1] }, inputs: [{ dims: [2, 7, 3] }] },
  { name: 'equal, axis -1', op: 'Split', opset: 13, outputs: 3, attrs: { axis: -1 }, inputs: [{ dims: [2, 3, 6] }] },
  { name: 'equal, default axis', op: 'Split', opset: 11, outputs: 2, inputs: [{ dims: [4, 3] }] },
  { name: 'opset 18 num_outputs uneven', op: 'Split', opset: 18, outputs: 3, attrs: { axis: 1, num_outputs: 3 }, inputs: [{ dims: [2, 7, 3] }] },
  { name: 'basic', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([1]), i64([4]), i64([0])] },
  { name: 'no axes', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([1, 2]), i64([4, 5])] },
  { name: 'negative step, reverse axis', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([-1]), i64([-1e15]), i64([1]), i64([-1])] },
  { name: 'negative step 2 and step 3', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([5, 0]), i64([0, 7]), i64([0, 2]), i64([-2, 3])] },
  { name: 'clamped out-of-range', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([-100, 2]), i64([100, 1e15]), i64([0, -1]), i64([1, 2])] },
  { name: 'negative step clamps start', op: 'Slice', inputs: [{ dims: [5, 6, 7] }, i64([10]), i64([-10]), i64([2]), i64([-3])] },
  { name: 'negative step, start below -dim', op: 'Slice', inputs: [{ dims: [4, 3] }, i64([-5]), i64([-6]), i64([0]), i64([-3])] },
  { name: 'empty result', op: 'Slice', inputs: [{ dims: [4, 3] }, i64([3]), i64([1]), i64([0]), i64([1])] },
  { name: 'opset 9 attrs', op: 'Slice', opset: 9, attrs: { starts: [1, -2], ends: [3, 1000], axes: [0, 2] }, inputs: [{ dims: [5, 6, 7] }] },
  { name: 'constant with runtime value', op: 'Pad', opset: 11, inputs: [{ dims: [2, 3, 4] }, i64([0, 1, 2, 1, 0, 3]), { dims: [], data: [1.5] }] },
  { name: 'constant default value', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([1, 0, 0, 0, 2, 1])] },
  { name: 'absent value', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([0, 0, 1, 0, 0, 1]), { dims: [], absent: true }] },
  { name: 'negative pads crop, runtime value', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([0, -1, 2, 0, 1, -3]), { dims: [], data: [-2] }] },
  { name: 'crop only', op: 'Pad', opset: 13, inputs: [{ dims: [2, 3, 4] }, i64([0, -1, 0, -1, 0, -2]), { dims: [1], data: [0.5] }] },
  { name: 'NCHW spatial pad', op: 'Pad', opset: 13, inputs: [{ dims: [1, 2, 5, 5] }, i64([0, 0, 1, 1, 0, 0, 1, 1])] },
  { name: 'opset 7 attrs (Pad-2)', op: 'Pad', opset: 7, attrs: { pads: [1, 0, 0, 0, 0, 2], value: f(2) }, inputs: [{ dims: [2, 3, 4] }] },
  { name: 'opset 18 axes input', op: 'Pad', opset: 18, inputs: [{ dims: [2, 3, 4] }, i64([1, 2, 3, 0]), { dims: [], data: [-1] }, i64([-1, 0])] },
  { name: 'column to matrix', op: 'Expand', inputs: [{ dims: [3, 1] }, i64([2, 1, 4])] },
  { name: 'shape smaller than input', op: 'Expand', inputs: [{ dims: [3, 1] }, i64([1])] },
  { name: 'scalar', op: 'Expand', inputs: [{ dims: [] }, i64([2, 3])] },
  { name: 'per-channel', op: 'Expand', inputs: [{ dims: [1, 3, 1, 1] }, i64([2, 3, 4, 5])] },
  { name: '[2,3] x [2,3]', op: 'Tile', inputs: [{ dims: [2, 3] }, i64([2, 3])] },
  { name: 'rank 3 with 1s', op: 'Tile', inputs: [{ dims: [2, 1, 3] }, i64([1, 4, 1])] },
];

// ------------------------------------------------------------------------------------------------
// Random floats: no two taps of a window tie, so max pooling is differentiable at the test point.
const poolCases: GradCase[] = [
  { name: '3x3 s2 p1', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 9, 8] }] },
  { name: '2x2 s2', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 2, 8, 6] }] },
  { name: 'ceil_mode', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'ceil_mode drops a window starting in the pad', op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 1, 5, 5] }] },
  { name: 'asymmetric pads', op: 'MaxPool', attrs: { kernel_shape: [3, 2], pads: [0, 1, 2, 0] }, inputs: [{ dims: [1, 2, 6, 7] }] },
  { name: 'dilations', op: 'MaxPool', attrs: { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'SAME_UPPER', op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 8, 7] }] },
  { name: 'SAME_LOWER', op: 'MaxPool', attrs: { kernel_shape: [2, 2], auto_pad: 'SAME_LOWER' }, inputs: [{ dims: [1, 2, 5, 6] }] },
  { name: 'opset 8', op: 'MaxPool', opset: 8, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 3, 6, 6] }] },
  { name: '1-D', op: 'MaxPool', attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] }, inputs: [{ dims: [2, 3, 11] }] },
  { name: '3-D', op: 'MaxPool', attrs: { kernel_shape: [2, 3, 2], strides: [2, 1, 2], pads: [0, 1, 1, 1, 1, 0] }, inputs: [{ dims: [1, 2, 5, 6, 5] }] },
  { name: 'ceil_mode + dilations + pads', op: 'MaxPool', attrs: { kernel_shape: [3, 2], strides: [2, 3], dilations: [2, 1], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 10, 11] }] },
  { name: 'count_include_pad 0', op: 'AveragePool', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 6, 7] }] },
  { name: 'count_include_pad 1', op: 'AveragePool', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [2, 3, 6, 7] }] },
  { name: 'strides, asymmetric pads', op: 'AveragePool', attrs: { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 0, 0, 2] }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'ceil_mode', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, inputs: [{ dims: [1, 2, 8, 9] }] },
  { name: 'ceil_mode + pads + count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }, inputs: [{ dims: [1, 2, 8, 8] }] },
  { name: 'ceil_mode + pads, exclude pad', op: 'AveragePool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, inputs: [{ dims: [1, 1, 5, 6] }] },
  { name: 'SAME_UPPER', op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [{ dims: [1, 2, 8, 7] }] },
  { name: 'opset 19 dilations', op: 'AveragePool', opset: 19, attrs: { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'opset 19 dilations count_include_pad', op: 'AveragePool', opset: 19, attrs: { kernel_shape: [2, 2], dilations: [2, 1], pads: [1, 1, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [1, 2, 7, 8] }] },
  { name: 'opset 7', op: 'AveragePool', opset: 7, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ dims: [1, 3, 6, 6] }] },
  { name: '1-D', op: 'AveragePool', attrs: { kernel_shape: [4], strides: [2], pads: [1, 2] }, inputs: [{ dims: [2, 3, 11] }] },
  { name: '3-D count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [2, 2, 3], strides: [1, 2, 2], pads: [1, 0, 1, 0, 1, 1], count_include_pad: 1 }, inputs: [{ dims: [1, 2, 4, 6, 7] }] },
  { name: '1-D ceil_mode count_include_pad', op: 'AveragePool', attrs: { kernel_shape: [3], strides: [2], pads: [1, 1], ceil_mode: 1, count_include_pad: 1 }, inputs: [{ dims: [1, 2, 10] }] },
  { name: 'identity 1x1', op: 'AveragePool', attrs: { kernel_shape: [1, 1] }, inputs: [{ dims: [1, 2, 3, 4] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [2, 3, 5, 6] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [2, 3, 7] }] },
  { op: 'GlobalAveragePool', inputs: [{ dims: [1, 2, 3, 4, 5] }] },
  { op: 'GlobalMaxPool', inputs: [{ dims: [2, 3, 5, 6] }] },
  { op: 'GlobalMaxPool', inputs: [{ dims: [1, 4, 9] }] },
];

// ------------------------------------------------------------------------------------------------
const resizeCases: GradCase[] = [
  { name: 'PP-OCR det: nearest, scales [1,1,2,2], opset 11', op: 'Resize', opset: 11, attrs: { mode: 'nearest' }, inputs: [{ dims: [1, 3, 5, 6] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'nearest asymmetric floor (PP-OCR export attrs)', op: 'Resize', opset: 11, attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'nearest opset 13 roi absent', op: 'Resize', opset: 13, inputs: [{ dims: [2, 3, 4, 4] }, absent, c32([1, 1, 3, 2])] },
  { name: 'nearest downsample round_prefer_ceil', op: 'Resize', opset: 13, attrs: { nearest_mode: 'round_prefer_ceil' }, inputs: [{ dims: [1, 2, 9, 8] }, absent, c32([1, 1, 0.5, 0.6])] },
  { name: 'nearest scales on N and C too', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'asymmetric' }, inputs: [{ dims: [2, 3, 3, 2] }, absent, c32([1.5, 0.67, 2, 1])] },
  { name: 'nearest align_corners', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'align_corners' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, c32([1, 1, 1.75, 2.5])] },
  { name: 'nearest pytorch_half_pixel ceil, sizes', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'pytorch_half_pixel', nearest_mode: 'ceil' }, inputs: [{ dims: [1, 2, 5, 4] }, emptyRoi, absent, i64([1, 2, 8, 1])] },
  { name: 'nearest tf_crop_and_resize', op: 'Resize', opset: 13, attrs: { coordinate_transformation_mode: 'tf_crop_and_resize' }, inputs: [{ dims: [1, 2, 6, 5] }, c32([0, 0, 0.1, 0.3, 1, 1, 0.8, 1.3]), absent, i64([1, 2, 4, 6])] },
  { name: 'nearest 3-D input', op: 'Resize', opset: 13, inputs: [{ dims: [2, 3, 5] }, emptyRoi, c32([1, 1, 3])] },
  { name: 'linear half_pixel x2', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 3, 5, 6] }, emptyRoi, c32([1, 1, 2, 2])] },
  { name: 'linear half_pixel downsample', op: 'Resize', opset: 11, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 9, 10] }, emptyRoi, c32([1, 1, 0.5, 0.7])] },
  { name: 'linear align_corners, sizes', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, inputs: [{ dims: [1, 2, 4, 5] }, emptyRoi, absent, i64([1, 2, 7, 9])] },
  { name: 'linear align_corners downsample', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, inputs: [{ dims: [1, 2, 9, 8] }, emptyRoi, absent, i64([1, 2, 4, 3])] },
  { name: 'linear asymmetric', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'asymmetric' }, inputs: [{ dims: [2, 2, 3, 4] }, emptyRoi, c32([1, 1, 2.5, 1.5])] },
  { name: 'linear pytorch_half_pixel to size 1', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, inputs: [{ dims: [1, 2, 5, 6] }, emptyRoi, absent, i64([1, 2, 1, 9])] },
  { name: 'linear tf_crop_and_resize + extrapolation', op: 'Resize', opset: 13, attrs: { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: f(-2) }, inputs: [{ dims: [1, 1, 6, 6] }, c32([0, 0, 0.2, -0.1, 1, 1, 1.2, 0.9]), absent, i64([1, 1, 5, 7])] },
  { name: 'linear 5-D trilinear', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4, 3] }, emptyRoi, c32([1, 1, 2, 1.5, 2])] },
  { name: 'linear 3-D input', op: 'Resize', opset: 13, attrs: { mode: 'linear' }, inputs: [{ dims: [2, 3, 5] }, emptyRoi, c32([1, 1, 2])] },
  { name: 'opset 18 axes + sizes', op: 'Resize', opset: 18, attrs: { mode: 'linear', axes: [2, 3] }, inputs: [{ dims: [1, 2, 4, 6] }, absent, absent, i64([6, 9])] },
  { name: 'opset 19 half_pixel_symmetric', op: 'Resize', opset: 19, attrs: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' }, inputs: [{ dims: [1, 1, 4, 5] }, absent, c32([1, 1, 1.7, 2.3])] },
  { name: 'opset 10 nearest downsample', op: 'Resize', opset: 10, inputs: [{ dims: [1, 2, 8, 9] }, c32([1, 1, 0.5, 0.4])] },
  { name: 'opset 10 linear', op: 'Resize', opset: 10, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 2.5])] },
  { name: 'opset 9 nearest', op: 'Upsample', opset: 9, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 2])] },
  { name: 'opset 9 linear', op: 'Upsample', opset: 9, attrs: { mode: 'linear' }, inputs: [{ dims: [1, 2, 3, 4] }, c32([1, 1, 2, 3])] },
  { name: 'opset 7 scales attribute', op: 'Upsample', opset: 7, attrs: { mode: 'nearest', scales: fs([1, 1, 3, 2]) }, inputs: [{ dims: [1, 2, 3, 4] }] },
  { name: 'opset 7 linear non-integer scale', op: 'Upsample', opset: 7, attrs: { mode: 'linear', scales: fs([1, 1, 1.5, 2]) }, inputs: [{ dims: [2, 1, 4, 3] }] },
];

// ------------------------------------------------------------------------------------------------
// Every parameter is a runtime input here, so all of them are checked (variances kept positive).
const positive = { low: 0.5, high: 1.5 };
const bnParams = (d: number[]) => [{ dims: d }, { dims: d }, { dims: d }, { dims: d, ...positive }];
const normCases: GradCase[] = [
  { name: 'NCHW', op: 'BatchNormalization', opset: 15, inputs: [{ dims: [2, 3, 4, 5] }, ...bnParams([3])] },
  { name: 'epsilon, opset 9', op: 'BatchNormalization', opset: 9, attrs: { epsilon: f(0.01) }, inputs: [{ dims: [2, 4, 3, 3] }, ...bnParams([4])] },
  { name: 'rank 2, opset 14', op: 'BatchNormalization', opset: 14, inputs: [{ dims: [5, 3] }, ...bnParams([3])] },
  { name: '1-D spatial', op: 'BatchNormalization', inputs: [{ dims: [2, 3, 7] }, ...bnParams([3])] },
  { name: 'opset 7 spatial=0 (per-element parameters)', op: 'BatchNormalization', opset: 7, attrs: { spatial: 0 }, inputs: [{ dims: [2, 3, 4, 5] }, ...bnParams([3, 4, 5])] },
  { name: 'axis -1 with B', op: 'LayerNormalization', inputs: [{ dims: [2, 3, 8] }, { dims: [8] }, { dims: [8] }] },
  { name: 'axis -1 without B', op: 'LayerNormalization', inputs: [{ dims: [2, 3, 8] }, { dims: [8] }] },
  { name: 'axis 1 of rank 4 with B', op: 'LayerNormalization', attrs: { axis: 1 }, inputs: [{ dims: [2, 3, 2, 4] }, { dims: [3, 2, 4] }, { dims: [3, 2, 4] }] },
  { name: 'axis 1 of rank 4, no B, epsilon', op: 'LayerNormalization', attrs: { axis: 1, epsilon: f(1e-3) }, inputs: [{ dims: [2, 3, 2, 4] }, { dims: [3, 2, 4] }] },
  { name: 'axis -2', op: 'LayerNormalization', attrs: { axis: -2 }, inputs: [{ dims: [2, 3, 8] }, { dims: [3, 8] }, { dims: [3, 8] }] },
  { name: 'Mean and InvStdDev outputs', op: 'LayerNormalization', outputs: 3, inputs: [{ dims: [4, 16] }, { dims: [16] }, { dims: [16] }] },
  { name: 'Mean and InvStdDev outputs axis -2', op: 'LayerNormalization', attrs: { axis: -2 }, outputs: 3, inputs: [{ dims: [2, 3, 5] }, { dims: [3, 5] }, { dims: [3, 5] }] },
  { name: 'scale broadcast [1, D], B [D]', op: 'LayerNormalization', attrs: { axis: -2 }, inputs: [{ dims: [2, 3, 5] }, { dims: [1, 5] }, { dims: [5] }] },
  { op: 'InstanceNormalization', inputs: [{ dims: [2, 3, 5, 4] }, { dims: [3] }, { dims: [3] }] },
  { name: '1-D spatial, epsilon', op: 'InstanceNormalization', attrs: { epsilon: f(1e-2) }, inputs: [{ dims: [2, 4, 9] }, { dims: [4] }, { dims: [4] }] },
];

// Up to 256 elements per input are checked (every element of most of these small inputs).
const dense = (cases: GradCase[]) => cases.map((c) => ({ samples: 256, ...c }));
t.test('shape ops', async (t) => checkGrads(t, dense(shapeCases)));
t.test('pooling', async (t) => checkGrads(t, dense(poolCases)));
t.test('Resize / Upsample', async (t) => checkGrads(t, dense(resizeCases)));
t.test('normalization', async (t) => checkGrads(t, dense(normCases)));

// ------------------------------------------------------------------------------------------------
function oneNode(op: string, opset: number, inputs: { name: string; dims: number[] }[], outputs: string[], attrs: Graph['nodes'][0]['attrs'] = {}, inits: Graph['initializers'] = new Map()): EngineModel {
  return new EngineModel({
    opset,
    nodes: [{ op, name: 'n', domain: '', inputs: [...inputs.map((i) => i.name), ...inits.keys()], outputs, attrs }],
    initializers: inits,
    inputs: inputs.map((i) => ({ name: i.name, elemType: 'float32', dims: i.dims })),
    outputs: outputs.map((name) => ({ name, elemType: 'float32', dims: [] })),
    shapes: new Map(inputs.map((i) => [i.name, i.dims])),
  });
}

t.test('Split: outputs no gradient reaches give zeros', async (t) => {
  const m = oneNode('Split', 13, [{ name: 'x', dims: [2, 5] }], ['a', 'b', 'c'], { axis: { type: 'int', value: 1 } }, new Map([['split', { dims: [3], type: 'int64' as const, data: BigInt64Array.from([1n, 3n, 1n]) }]]));
  const x = Float64Array.from({ length: 10 }, (_, i) => i);
  const r = m.gradients({ x: { dims: [2, 5], data: x } }, { precision: 'float64', seeds: { b: { dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) } }, want: ['x'] });
  t.same(Array.from(r.grads.x!.data as Float64Array), [0, 1, 2, 3, 0, 0, 4, 5, 6, 0]);
  m.dispose();
});

t.test('MaxPool: a tie sends the gradient to the first maximal tap in window order', async (t) => {
  const attrs = { kernel_shape: { type: 'ints' as const, value: [2, 2] }, strides: { type: 'ints' as const, value: [2, 2] } };
  const m = oneNode('MaxPool', 13, [{ name: 'x', dims: [1, 1, 2, 4] }], ['y'], attrs);
  // window 0: taps (0,0)=1 (0,1)=3 (1,0)=3 (1,1)=0 -> (0,1); window 1: all 2 -> (0,2)
  const x = Float64Array.from([1, 3, 2, 2, 3, 0, 2, 2]);
  const r = m.gradients({ x: { dims: [1, 1, 2, 4], data: x } }, { precision: 'float64', seeds: { y: { dims: [1, 1, 1, 2], data: Float64Array.from([10, 20]) } }, want: ['x'] });
  t.same(Array.from(r.grads.x!.data as Float64Array), [0, 10, 20, 0, 0, 0, 0, 0]);
  m.dispose();
});

t.test('Resize: a runtime scales operand gets a zero gradient', async (t) => {
  const m = oneNode('Resize', 13, [{ name: 'x', dims: [1, 1, 2, 2] }, { name: 'roi', dims: [0] }, { name: 'scales', dims: [4] }], ['y'], { mode: { type: 'string', value: 'linear' } });
  const feeds = {
    x: { dims: [1, 1, 2, 2], data: Float64Array.from([1, 2, 3, 4]) },
    roi: { dims: [0], data: new Float64Array(0) },
    scales: { dims: [4], data: Float64Array.from([1, 1, 2, 2]) },
  };
  const r = m.gradients(feeds, { precision: 'float64', seeds: { y: { dims: [1, 1, 4, 4], data: new Float64Array(16).fill(1) } }, want: ['x', 'scales'] });
  t.same(Array.from(r.grads.scales!.data as Float64Array), [0, 0, 0, 0]);
  // Linear interpolation weights of each output sum to 1: with dy = 1, dx sums to the 16 outputs.
  t.equal(Array.from(r.grads.x!.data as Float64Array).reduce((a, b) => a + b, 0), 16);
  m.dispose();
});

t.test('a chain of these ops: values freed between nodes, fan-in, FD on every input element', async (t) => {
  // x -> Transpose -> MaxPool -> Resize -> Split -> Concat(b, a, b) -> Pad -> AveragePool -> Slice
  // (reverse) -> BatchNormalization -> Reshape -> LayerNormalization(scale s) -> y
  const r = rng(11);
  const rand = (n: number, lo = -1, hi = 1) => Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
  const ints = (v: number[]) => ({ dims: [v.length], type: 'int64' as const, data: BigInt64Array.from(v.map(BigInt)) });
  const f64 = (dims: number[], data: Float64Array) => ({ dims, type: 'float64' as const, data });
  const ia = (value: number[]) => ({ type: 'ints' as const, value });
  const node = (op: string, inputs: string[], outputs: string[], attrs: Graph['nodes'][0]['attrs'] = {}) => ({ op, name: outputs[0]!, domain: '', inputs, outputs, attrs });
  const g: Graph = {
    opset: 17,
    nodes: [
      node('Transpose', ['x'], ['t'], { perm: ia([0, 1, 3, 2]) }),
      node('MaxPool', ['t'], ['mp'], { kernel_shape: ia([2, 2]) }),
      node('Resize', ['mp', '', 'scales'], ['rs'], { mode: { type: 'string', value: 'nearest' } }),
      node('Split', ['rs', 'split'], ['a', 'b'], { axis: { type: 'int', value: 1 } }),
      node('Concat', ['b', 'a', 'b'], ['cc'], { axis: { type: 'int', value: 1 } }),
      node('Pad', ['cc', 'pads'], ['pd']),
      node('AveragePool', ['pd'], ['ap'], { kernel_shape: ia([3, 3]), strides: ia([2, 2]) }),
      node('Slice', ['ap', 'st', 'en', 'ax', 'sp'], ['sl']),
      node('BatchNormalization', ['sl', 'bs', 'bb', 'bm', 'bv'], ['bn']),
      node('Reshape', ['bn', 'shape'], ['rh']),
      node('LayerNormalization', ['rh', 's', 'lb'], ['y'], { axis: { type: 'int', value: -1 } }),
    ],
    initializers: new Map<string, TensorData>([
      ['scales', f64([4], Float64Array.from([1, 1, 2, 2]))],
      ['split', ints([1, 1])],
      ['pads', ints([0, 0, 1, 0, 0, 0, 0, 1])],
      ['st', ints([-1])],
      ['en', ints([-100])],
      ['ax', ints([3])],
      ['sp', ints([-1])],
      ['bs', f64([3], rand(3))],
      ['bb', f64([3], rand(3))],
      ['bm', f64([3], rand(3))],
      ['bv', f64([3], rand(3, 0.5, 1.5))],
      ['shape', ints([1, 3, 20])],
      ['lb', f64([20], rand(20))],
    ]),
    inputs: [
      { name: 'x', elemType: 'float32', dims: [1, 2, 6, 5] },
      { name: 's', elemType: 'float32', dims: [20] },
    ],
    outputs: [{ name: 'y', elemType: 'float32', dims: [] }],
    shapes: new Map([
      ['x', [1, 2, 6, 5]],
      ['s', [20]],
    ]),
  };
  const m = new EngineModel(g);
  const feeds = { x: { dims: [1, 2, 6, 5], data: rand(60) }, s: { dims: [20], data: rand(20) } };
  const c = rand(60);
  const loss = () => (m.run(feeds, { precision: 'float64' }).y!.data as Float64Array).reduce((acc, v, i) => acc + v * c[i]!, 0);
  const res = m.gradients(feeds, { precision: 'float64', seeds: { y: { dims: [1, 3, 20], data: c } }, want: ['x', 's'] });
  for (const name of ['x', 's'] as const) {
    const v = feeds[name].data;
    const grad = res.grads[name]!.data as Float64Array;
    let worst = 0;
    for (let i = 0; i < v.length; i++) {
      const o = v[i]!;
      v[i] = o + 1e-5;
      const lp = loss();
      v[i] = o - 1e-5;
      const lm = loss();
      v[i] = o;
      worst = Math.max(worst, Math.abs((lp - lm) / 2e-5 - grad[i]!));
    }
    t.ok(worst < 1e-6, `d L / d ${name} matches central differences at every element (max diff ${worst.toExponential(2)})`);
  }
  t.ok((res.grads.x!.data as Float64Array).some((v) => v !== 0), 'the gradient reaches x');
  // The float32 rules agree with the float64 ones.
  const f32 = (d: { dims: number[]; data: Float64Array }) => ({ dims: d.dims, data: Float32Array.from(d.data) });
  const r32 = m.gradients({ x: f32(feeds.x), s: f32(feeds.s) }, { seeds: { y: f32({ dims: [1, 3, 20], data: c }) }, want: ['x', 's'] });
  for (const name of ['x', 's']) {
    const a = r32.grads[name]!.data as Float32Array;
    const b = res.grads[name]!.data as Float64Array;
    const scale = Math.max(...Array.from(b, Math.abs));
    t.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-4 * scale), `float32 gradient of ${name} matches float64`);
  }
  m.dispose();
});
