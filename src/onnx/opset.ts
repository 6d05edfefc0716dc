/** Opset raises for export (QDQ needs opset >= 10/11; int4 weights need 21): what is safe, and the rewrites. */
import { dataToTensorProto, toNum, type ModelProto, type TensorProto } from './proto.js';

const isDefault = (d: string | undefined) => !d || d === 'ai.onnx';

/** Ops whose definition changed incompatibly between opset 7 and 10 (or were deprecated at 10). */
export const UNSAFE_FOR_11 = new Set(['TopK', 'Upsample', 'Pad', 'Resize', 'Scatter']);

/**
 * Slice-1 (starts/ends/axes attributes) rewritten as Slice-10 (int64 inputs) and Clip-6 (min/max
 * attributes) as Clip-11 (float inputs), for an opset raise to 11.
 */
export function upgradeAttrsToInputs(m: ModelProto): void {
  const g = m.graph!;
  const taken = new Set([...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output)]);
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  g.node.forEach((n, k) => {
    if (!isDefault(n.domain) || (n.opType !== 'Slice' && n.opType !== 'Clip')) return;
    const attr = (key: string) => n.attribute.find((a) => a.name === key);
    if (n.opType === 'Clip') {
      const inputs = [n.input[0]!];
      for (const key of ['min', 'max']) {
        const a = attr(key);
        if (!a) {
          inputs.push('');
          continue;
        }
        const name = fresh(`${n.name || `Clip_${k}`}_${key}`);
        g.initializer.push(dataToTensorProto(name, { dims: [], elemType: 'float32', data: [a.f] }) as unknown as TensorProto);
        inputs.push(name);
      }
      while (inputs.at(-1) === '') inputs.pop();
      n.input = inputs;
      n.attribute = n.attribute.filter((a) => a.name !== 'min' && a.name !== 'max');
      return;
    }
    const ints = (key: string) => attr(key)?.ints.map((v) => BigInt(toNum(v)));
    const starts = ints('starts');
    const ends = ints('ends');
    if (!starts || !ends) return;
    const axes = ints('axes');
    const base = n.name || `Slice_${k}`;
    const inputs = [n.input[0]!];
    for (const [key, vals] of [['starts', starts], ['ends', ends], ['axes', axes]] as const) {
      if (!vals) continue;
      const name = fresh(`${base}_${key}`);
      g.initializer.push(dataToTensorProto(name, { dims: [vals.length], elemType: 'int64', data: vals }) as unknown as TensorProto);
      inputs.push(name);
    }
    n.input = inputs;
    n.attribute = n.attribute.filter((a) => !['starts', 'ends', 'axes'].includes(a.name));
  });
}

/** Ops whose meaning changed between opset 13 and 21 (an opset raise would change the model). */
const UNSAFE_FOR_21 = new Set([
  'ReduceMax', 'ReduceMin', 'ReduceMean', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp',
  'ReduceSumSquare', 'GroupNormalization', 'Resize', 'Pad', 'Split', 'ScatterElements', 'ScatterND', 'Col2Im', 'DFT',
  'Scan', 'Loop', 'If', 'Upsample', 'Cast', 'CastLike', 'AveragePool',
]);

export function canRaiseTo21(m: ModelProto, opset: number): boolean {
  if (opset < 13) return false;
  return m.graph!.node.every((n) => !isDefault(n.domain) || !UNSAFE_FOR_21.has(n.opType));
}
