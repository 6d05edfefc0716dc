/** Quantizable layers (DESIGN.md "Numerical contract"). */
import { product } from './node-utils.js';
import type { Graph, GraphNode, QuantizableLayer } from './types.js';

const WEIGHT_INPUT_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

function layer(node: GraphNode, graph: Graph, weightInput: number, activationInput: number): QuantizableLayer | undefined {
  const weight = node.inputs[weightInput] ?? '';
  const activation = node.inputs[activationInput] ?? '';
  const w = graph.initializers.get(weight);
  if (!weight || !activation || !w || graph.initializers.has(activation)) return undefined;
  return {
    name: node.name,
    op: node.op as QuantizableLayer['op'],
    weight,
    count: product(w.dims),
    activation,
    weightInput,
  };
}

/**
 * Every Conv, ConvTranspose, Gemm or MatMul whose weight operand is a constant: input 1 for
 * Conv/ConvTranspose/Gemm (input 0 the activation); for MatMul either operand, the other being the
 * activation (MatMuls with two constant or two computed operands are not layers). In graph order.
 */
export function findQuantizableLayers(graph: Graph): QuantizableLayer[] {
  const out: QuantizableLayer[] = [];
  for (const n of graph.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    let l: QuantizableLayer | undefined;
    if (WEIGHT_INPUT_OPS.has(n.op)) l = layer(n, graph, 1, 0);
    else if (n.op === 'MatMul') {
      const c0 = graph.initializers.has(n.inputs[0] ?? '');
      const c1 = graph.initializers.has(n.inputs[1] ?? '');
      if (c0 !== c1) l = c1 ? layer(n, graph, 1, 0) : layer(n, graph, 0, 1);
    }
    if (l) out.push(l);
  }
  return out;
}
