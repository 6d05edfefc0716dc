/** Per-output-channel sums of a weight-shaped array (the output channel axis depends on the op). */
import type { GraphNode, QuantizableLayer } from '../onnx/types.js';

/** Output channel of every weight element, and the channel count. */
export function channelIndex(layer: QuantizableLayer, node: GraphNode, dims: number[]): { channels: number; of: (i: number) => number } {
  const n = dims.reduce((a, b) => a * b, 1);
  const attrInt = (k: string, d: number) => {
    const a = node.attrs[k];
    return a && a.type === 'int' ? a.value : d;
  };
  if (layer.op === 'Conv' || dims.length < 2) {
    const per = n / (dims[0] || 1);
    return { channels: dims[0] ?? 1, of: (i) => Math.floor(i / per) };
  }
  if (layer.op === 'ConvTranspose') {
    const group = attrInt('group', 1);
    const c = dims[0]!;
    const mg = dims[1]!;
    const inner = n / (c * mg);
    return { channels: mg * group, of: (i) => Math.floor(Math.floor(i / (mg * inner)) / (c / group)) * mg + (Math.floor(i / inner) % mg) };
  }
  if (layer.op === 'Gemm') {
    if (attrInt('transB', 0) === 1) return { channels: dims[0]!, of: (i) => Math.floor(i / dims[1]!) };
    return { channels: dims[1]!, of: (i) => i % dims[1]! };
  }
  // MatMul: X @ W (weight second) -> columns of W; W @ X -> rows of W
  const cols = dims[dims.length - 1]!;
  const rows = dims[dims.length - 2]!;
  if (layer.weightInput === 1) return { channels: cols, of: (i) => i % cols };
  return { channels: rows, of: (i) => Math.floor(i / cols) % rows };
}

export function channelSums(diag: Float64Array, idx: { channels: number; of: (i: number) => number }): number[] {
  const out = new Array<number>(idx.channels).fill(0);
  for (let i = 0; i < diag.length; i++) out[idx.of(i)]! += diag[i]!;
  return out;
}
