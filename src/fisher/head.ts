/** Which tensor the loss head reads and which likelihood it uses (DESIGN.md "Numerical contract"). */
import { InvalidOptionError } from '../errors.js';
import type { Likelihood } from '../engine/model.js';
import type { Graph } from '../onnx/types.js';

export type LikelihoodOption = 'auto' | Likelihood;

export interface LossHead {
  likelihood: Likelihood;
  /** the tensor the loss reads: logits (the input of a final Softmax/Sigmoid) or the output */
  tensor: string;
  /** the graph output the head belongs to */
  output: string;
}

export function detectHead(graph: Graph, option: LikelihoodOption = 'auto', labelsKind?: 'class' | 'target'): LossHead {
  if (!['auto', 'categorical', 'bernoulli', 'gaussian'].includes(option))
    throw new InvalidOptionError(`Expected 'auto', 'categorical', 'bernoulli' or 'gaussian' for option likelihood but received '${String(option)}'`);
  const output = graph.outputs[0]!.name;
  const last = graph.nodes.find((n) => n.outputs.includes(output));
  const op = last?.op;
  const input = last?.inputs[0];
  if (option === 'auto') {
    if ((op === 'Softmax' || op === 'LogSoftmax') && input) return { likelihood: 'categorical', tensor: input, output };
    if (op === 'Sigmoid' && input) return { likelihood: 'bernoulli', tensor: input, output };
    const dims = graph.shapes.get(output);
    if (labelsKind === 'class' && dims && dims.length >= 2) return { likelihood: 'categorical', tensor: output, output };
    return { likelihood: 'gaussian', tensor: output, output };
  }
  if (option === 'categorical') {
    if ((op === 'Softmax' || op === 'LogSoftmax') && input) return { likelihood: option, tensor: input, output };
    return { likelihood: option, tensor: output, output };
  }
  if (option === 'bernoulli') {
    if (op === 'Sigmoid' && input) return { likelihood: option, tensor: input, output };
    return { likelihood: option, tensor: output, output };
  }
  return { likelihood: 'gaussian', tensor: output, output };
}
