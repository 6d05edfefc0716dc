/** The plain graph that src/onnx produces and src/engine hands to the native engine. */

export type DTypeName = 'float32' | 'float64' | 'int64';

export type TypedData = Float32Array | Float64Array | BigInt64Array;

export interface TensorData {
  dims: number[];
  type: DTypeName;
  data: TypedData;
}

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string };

export interface GraphNode {
  op: string;
  /** ONNX node name; made unique and non-empty by the reader (`${op}_${index}` when missing). */
  name: string;
  /** '' or 'ai.onnx' for the default domain. */
  domain: string;
  /** Tensor names; '' marks an absent optional input/output. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/** A declared graph input or output. dims entries are numbers, symbolic names or null. */
export interface ValueInfo {
  name: string;
  /** ONNX element type name: 'float32', 'float64', 'int64', 'int32', 'uint8', 'float16', ... */
  elemType: string;
  dims: (number | string | null)[];
}

export interface Graph {
  /** Opset of the default ('' / 'ai.onnx') domain. */
  opset: number;
  /** Nodes in topological order. */
  nodes: GraphNode[];
  /** Constant tensors: float weights as float32, integer constants as int64. */
  initializers: Map<string, TensorData>;
  /** Non-constant graph inputs. */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Concrete dims of every tensor, filled by shape inference when input shapes are known. */
  shapes: Map<string, number[]>;
}

/** A Conv/ConvTranspose/Gemm/MatMul whose weight operand is constant (DESIGN.md). */
export interface QuantizableLayer {
  /** ONNX node name */
  name: string;
  op: 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul';
  /** initializer (or Constant output) name of the weight */
  weight: string;
  /** number of weight elements */
  count: number;
  /** the layer's data input (activation) tensor name */
  activation: string;
  /** which input of the node holds the weight */
  weightInput: number;
}
