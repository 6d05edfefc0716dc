/**
 * Evaluation metrics of a quantized model against its float model (and labels, when given), per
 * sample, accumulated per shard and merged on the main thread.
 *
 * Heads (the model's first output):
 * - categorical: per-sample vector of logits (or probabilities after a final Softmax, or log
 *   probabilities after LogSoftmax). accuracy = argmax == class label; agreement = argmax equal to
 *   the float model's; kl = mean over samples of KL(p_float || p_quant) of the softmax outputs.
 * - bernoulli: each output element is a probability (after a final Sigmoid) or a logit. accuracy =
 *   (p > 0.5) == label per element; agreement of those decisions; kl of the Bernoulli distributions.
 * - gaussian: mse against float targets; agreement = argmax agreement when a sample has > 1 value.
 * outputMse (always): mean squared difference between quantized and float outputs.
 */
import { InvalidInputError, InvalidOptionError } from '../errors.js';
import type { ModelProto } from '../onnx/proto.js';

export type HeadKind = 'categorical' | 'bernoulli' | 'gaussian';
export type LikelihoodOption = 'auto' | HeadKind;

export interface Head {
  output: string;
  kind: HeadKind;
  /** what the output holds */
  form: 'logits' | 'probs' | 'logprobs';
  /** output values per sample */
  size: number;
}

/** Picks the head from the graph, the labels and the per-sample output size. */
export function detectHead(proto: ModelProto, size: number, option: LikelihoodOption = 'auto', labelsKind?: 'class' | 'target'): Head {
  if (!['auto', 'categorical', 'bernoulli', 'gaussian'].includes(option))
    throw new InvalidOptionError(`Expected 'auto', 'categorical', 'bernoulli' or 'gaussian' for option likelihood but received '${String(option)}'`);
  const g = proto.graph!;
  const output = g.output[0]!.name;
  const op = g.node.find((n) => n.output.includes(output) && (!n.domain || n.domain === 'ai.onnx'))?.opType;
  const form: Head['form'] = op === 'Softmax' || op === 'Sigmoid' ? 'probs' : op === 'LogSoftmax' ? 'logprobs' : 'logits';
  let kind: HeadKind;
  if (option !== 'auto') kind = option;
  else if (op === 'Softmax' || op === 'LogSoftmax') kind = 'categorical';
  else if (op === 'Sigmoid') kind = 'bernoulli';
  else if (labelsKind === 'target') kind = 'gaussian';
  else if (labelsKind === 'class') kind = size > 1 ? 'categorical' : 'bernoulli';
  else kind = size > 1 ? 'categorical' : 'gaussian';
  return { output, kind, form: kind === 'bernoulli' && form === 'logprobs' ? 'logits' : form, size };
}

export interface MetricAcc {
  samples: number;
  labeled: number;
  correct: number;
  floatCorrect: number;
  /** decisions compared (samples, or elements for bernoulli) */
  decisions: number;
  agree: number;
  kl: number;
  sqErr: number;
  floatSqErr: number;
  outSqErr: number;
  elements: number;
}

export const emptyAcc = (): MetricAcc => ({
  samples: 0, labeled: 0, correct: 0, floatCorrect: 0, decisions: 0, agree: 0, kl: 0, sqErr: 0, floatSqErr: 0, outSqErr: 0, elements: 0,
});

export function mergeAcc(a: MetricAcc, b: MetricAcc): MetricAcc {
  const out = emptyAcc();
  for (const k of Object.keys(out) as (keyof MetricAcc)[]) out[k] = a[k] + b[k];
  return out;
}

function argmax(v: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[off + i]! > v[off + best]!) best = i;
  return best;
}

function logProbs(v: Float32Array, off: number, n: number, form: Head['form'], out: Float64Array): void {
  if (form === 'logprobs') {
    for (let i = 0; i < n; i++) out[i] = v[off + i]!;
    return;
  }
  if (form === 'probs') {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.max(v[off + i]!, 0);
    for (let i = 0; i < n; i++) out[i] = Math.log(Math.max(v[off + i]!, 1e-30) / (s > 0 ? s : 1));
    return;
  }
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, v[off + i]!);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(v[off + i]! - m);
  const lse = m + Math.log(s);
  for (let i = 0; i < n; i++) out[i] = v[off + i]! - lse;
}

const prob = (v: number, form: Head['form']) => (form === 'probs' ? Math.min(1, Math.max(0, v)) : 1 / (1 + Math.exp(-v)));

function bernoulliKl(p: number, q: number): number {
  const e = 1e-12;
  const pc = Math.min(1 - e, Math.max(e, p));
  const qc = Math.min(1 - e, Math.max(e, q));
  return pc * Math.log(pc / qc) + (1 - pc) * Math.log((1 - pc) / (1 - qc));
}

/**
 * Adds `count` samples: float and quantized outputs (rows of head.size values) and optional labels
 * (class indices, or targets with the output's size).
 */
export function accumulate(
  acc: MetricAcc, head: Head, count: number, float: Float32Array, quant: Float32Array, labels?: BigInt64Array | Float32Array,
): void {
  const n = head.size;
  if (float.length !== count * n || quant.length !== count * n)
    throw new InvalidInputError(`Expected ${n} output values per sample from '${head.output}' but received ${quant.length / count}; the model's output size depends on the batch`);
  const lf = new Float64Array(n);
  const lq = new Float64Array(n);
  const perLabel = labels ? labels.length / count : 0;
  for (let s = 0; s < count; s++) {
    const off = s * n;
    for (let i = 0; i < n; i++) acc.outSqErr += (quant[off + i]! - float[off + i]!) ** 2;
    acc.elements += n;
    if (head.kind === 'categorical') {
      const af = argmax(float, off, n);
      const aq = argmax(quant, off, n);
      acc.decisions++;
      if (af === aq) acc.agree++;
      logProbs(float, off, n, head.form, lf);
      logProbs(quant, off, n, head.form, lq);
      let kl = 0;
      for (let i = 0; i < n; i++) {
        const p = Math.exp(lf[i]!);
        if (p > 0) kl += p * (lf[i]! - lq[i]!);
      }
      acc.kl += Math.max(0, kl);
      if (labels) {
        if (perLabel !== 1) throw new InvalidInputError(`Expected one class label per sample for the categorical output '${head.output}' but received ${perLabel}`);
        const y = Number(labels[s]!);
        acc.labeled++;
        if (aq === y) acc.correct++;
        if (af === y) acc.floatCorrect++;
      }
    } else if (head.kind === 'bernoulli') {
      let kl = 0;
      for (let i = 0; i < n; i++) {
        const pf = prob(float[off + i]!, head.form);
        const pq = prob(quant[off + i]!, head.form);
        acc.decisions++;
        if (pf > 0.5 === pq > 0.5) acc.agree++;
        kl += bernoulliKl(pf, pq);
        if (labels) {
          if (perLabel !== n) throw new InvalidInputError(`Expected ${n} labels per sample for the output '${head.output}' but received ${perLabel}`);
          const y = Number(labels[s * n + i]!) > 0.5;
          acc.labeled++;
          if (pq > 0.5 === y) acc.correct++;
          if (pf > 0.5 === y) acc.floatCorrect++;
        }
      }
      acc.kl += kl;
    } else {
      if (n > 1) {
        acc.decisions++;
        if (argmax(float, off, n) === argmax(quant, off, n)) acc.agree++;
      }
      if (labels) {
        if (perLabel !== n) throw new InvalidInputError(`Expected ${n} targets per sample for the output '${head.output}' but received ${perLabel}`);
        for (let i = 0; i < n; i++) {
          const t = Number(labels[s * n + i]!);
          acc.sqErr += (quant[off + i]! - t) ** 2;
          acc.floatSqErr += (float[off + i]! - t) ** 2;
        }
        acc.labeled += n;
      }
    }
    acc.samples++;
  }
}

export interface EvaluationMetrics {
  samples: number;
  likelihood: HeadKind;
  output: string;
  /** top-1 accuracy of the quantized model (categorical / bernoulli heads with class labels) */
  accuracy: number | null;
  floatAccuracy: number | null;
  /** mean squared error against the targets (gaussian heads with target labels) */
  mse: number | null;
  floatMse: number | null;
  /** fraction of decisions (argmax, or p > 0.5) equal to the float model's */
  agreement: number | null;
  /** mean KL(float || quantized) per sample (categorical, bernoulli) */
  kl: number | null;
  /** mean squared difference between quantized and float outputs, per element */
  outputMse: number;
}

export function finish(acc: MetricAcc, head: Head): EvaluationMetrics {
  const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
  const classes = head.kind !== 'gaussian';
  return {
    samples: acc.samples,
    likelihood: head.kind,
    output: head.output,
    accuracy: classes ? ratio(acc.correct, acc.labeled) : null,
    floatAccuracy: classes ? ratio(acc.floatCorrect, acc.labeled) : null,
    mse: classes ? null : ratio(acc.sqErr, acc.labeled),
    floatMse: classes ? null : ratio(acc.floatSqErr, acc.labeled),
    agreement: ratio(acc.agree, acc.decisions),
    kl: classes ? ratio(acc.kl, acc.samples) : null,
    outputMse: ratio(acc.outSqErr, acc.elements) ?? 0,
  };
}
