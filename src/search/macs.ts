/**
 * Multiply-accumulates per sample of every quantizable layer, from the model's shapes (for bops
 * budgets):
 *   Conv            output elements x (C_in / group) x prod(kernel) = output elements x prod(W.dims[1:])
 *   ConvTranspose   input elements x (C_out / group) x prod(kernel) = input elements x prod(W.dims[1:])
 *   Gemm, MatMul    output elements x K (the contracted dim)
 * The model is prepared for concrete input shapes (prepareModel: a dynamic first dim is `batch`,
 * default 1) and the counts are divided by the first dim of the first input (the samples of a run)
 * when that input has rank 2 or more.
 */
import { InvalidModelError } from '../errors.js';
import { prepareModel, type PrepareOptions } from '../engine/load.js';
import type { OnnxModel } from '../onnx/read.js';
import type { Graph, QuantizableLayer } from '../onnx/types.js';

const prod = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

function macsOf(graph: Graph, l: QuantizableLayer): number {
  const node = graph.nodes.find((n) => n.name === l.name)!;
  const w = graph.initializers.get(l.weight)?.dims;
  const out = graph.shapes.get(node.outputs[0] ?? '');
  const x = graph.shapes.get(l.activation);
  if (!w || !out || !x) throw new InvalidModelError(`Cannot count the MACs of layer '${l.name}' (${l.op}): the shapes of its weight, input or output are unknown`);
  switch (l.op) {
    case 'Conv':
      return prod(out) * prod(w.slice(1));
    case 'ConvTranspose':
      return prod(x) * prod(w.slice(1));
    case 'Gemm': {
      const k = (node.attrs.transB?.type === 'int' && node.attrs.transB.value === 1) ? w[1]! : w[0]!;
      return prod(out) * k;
    }
    case 'MatMul': {
      const k = l.weightInput === 1 ? (w.length === 1 ? w[0]! : w[w.length - 2]!) : w[w.length - 1]!;
      return prod(out) * k;
    }
  }
}

/** Layer name -> MACs per sample, for every quantizable layer of the model. */
export function layerMacs(source: string | Uint8Array | OnnxModel, options: PrepareOptions = {}): Record<string, number> {
  const { graph, layers, inputShapes } = prepareModel(source, options);
  const first = Object.values(inputShapes)[0];
  const samples = first && first.length >= 2 ? first[0]! : 1;
  const out: Record<string, number> = {};
  for (const l of layers) out[l.name] = macsOf(graph, l) / samples;
  return out;
}
