/**
 * Trains the demo model (assets/demo/cnn.onnx) on Fashion-MNIST with onnx-fit's own engine:
 * forward + backward on the native engine, plain SGD with momentum in JS, no other ML framework.
 *
 *   node --import tsx scripts/train-demo.ts [--epochs 10] [--lr 0.05] [--seed 1] [--workers 2] [--out assets/demo]
 *
 * Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). Writes into --out:
 *   cnn.onnx     the trained model (input 'input' [batch,1,28,28], normalized pixels; output 'logits' [batch,10])
 *   calib_x.npy  float32 [512,1,28,28]: 512 test images drawn with a seeded permutation, already normalized
 *   calib_y.npy  int64 [512]: their labels
 *   README.md    what all of this is, with the accuracy measured in this run
 *
 * Architecture and names are those of scripts/make-demo-model.ts (Conv-BN-Relu-MaxPool x2, Gemm-Relu,
 * Gemm). The engine runs BatchNormalization in its inference form only, so during training the BN
 * layers are per-channel affine maps (mean 0, var 1, scale and bias trained as ordinary weights).
 * After training, mean/var are set to the statistics of the conv outputs over training images and
 * scale/bias are rescaled so that the network computes the same function: the exported BNs carry
 * real, non-trivial statistics and BatchNorm folding has something to do.
 *
 * Each step's batch of 64 is split into two fixed halves of 32 whose gradients run concurrently on
 * two EngineModels that borrow the same weight buffers (the engine is single-threaded per call); the
 * halves are summed in a fixed order, so --workers 1 (sequential) gives bit-identical results.
 */
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { readIdx } from '../src/data/idx.js';
import { writeNpy } from '../src/data/npy.js';
import { loadEngineModel, prepareModel } from '../src/engine/load.js';
import { EngineModel, type GradientRequest } from '../src/engine/model.js';
import { makeModel, type BuildModelSpec } from '../src/onnx/build.js';
import type { Graph } from '../src/onnx/types.js';

const DATA_DIR = '/usr/share/datasets/fashion-mnist';
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const OPTIONS = {
    epochs: { type: 'string', default: '10' },
    lr: { type: 'string', default: '0.05' },
    momentum: { type: 'string', default: '0.9' },
    'weight-decay': { type: 'string', default: '5e-4' },
    batch: { type: 'string', default: '64' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    'calib-samples': { type: 'string', default: '512' },
    'stats-samples': { type: 'string', default: '10000' },
    out: { type: 'string', default: new URL('../assets/demo', import.meta.url).pathname },
} as const;
const { values: args } = parseArgs({ options: OPTIONS });
const EPOCHS = Number(args.epochs);
const LR = Number(args.lr);
const MOMENTUM = Number(args.momentum);
const WEIGHT_DECAY = Number(args['weight-decay']);
const BATCH = Number(args.batch);
const SEED = Number(args.seed);
const WORKERS = Number(args.workers);
const CALIB_N = Number(args['calib-samples']);
const STATS_N = Number(args['stats-samples']);
const OUT = resolve(args.out!);
if (!(BATCH % 2 === 0 && BATCH >= 2)) throw new Error(`--batch must be even (two halves per step), got ${BATCH}`);
if (WORKERS !== 1 && WORKERS !== 2) throw new Error(`--workers must be 1 or 2, got ${WORKERS}`);
const HALF = BATCH / 2;
const EVAL_BATCH = 1000;

// ---- seeded randomness (mulberry32, as in scripts/make-demo-model.ts) ------------------------------
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function permutation(n: number, r: () => number): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

// ---- the demo architecture ---------------------------------------------------------------------
type Weights = Map<string, { dims: number[]; data: Float32Array }>;

function initialWeights(seed: number): Weights {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const he = (n: number, fanIn: number) => Float32Array.from({ length: n }, () => gauss() * Math.sqrt(2 / fanIn));
  const fill = (n: number, v: number) => new Float32Array(n).fill(v);
  const list: [string, number[], Float32Array][] = [
    ['conv1.weight', [8, 1, 3, 3], he(72, 9)],
    ['conv1.bias', [8], fill(8, 0)],
    ['bn1.scale', [8], fill(8, 1)],
    ['bn1.bias', [8], fill(8, 0)],
    ['bn1.mean', [8], fill(8, 0)],
    ['bn1.var', [8], fill(8, 1)],
    ['conv2.weight', [16, 8, 3, 3], he(16 * 72, 72)],
    ['conv2.bias', [16], fill(16, 0)],
    ['bn2.scale', [16], fill(16, 1)],
    ['bn2.bias', [16], fill(16, 0)],
    ['bn2.mean', [16], fill(16, 0)],
    ['bn2.var', [16], fill(16, 1)],
    ['fc1.weight', [64, 784], he(64 * 784, 784)],
    ['fc1.bias', [64], fill(64, 0)],
    ['fc2.weight', [10, 64], he(640, 64)],
    ['fc2.bias', [10], fill(10, 0)],
  ];
  return new Map(list.map(([name, dims, data]) => [name, { dims, data }]));
}

function demoSpec(weights: Weights): BuildModelSpec {
  return {
    opset: 13,
    producerName: 'onnx-fit scripts/train-demo.ts',
    inputs: [{ name: 'input', elemType: 'float32', dims: ['batch', 1, 28, 28] }],
    outputs: [{ name: 'logits', elemType: 'float32', dims: ['batch', 10] }],
    initializers: [...weights].map(([name, t]) => ({ name, dims: t.dims, type: 'float32', data: t.data })),
    nodes: [
      { op: 'Conv', name: 'conv1', inputs: ['input', 'conv1.weight', 'conv1.bias'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'BatchNormalization', name: 'bn1', inputs: ['c1', 'bn1.scale', 'bn1.bias', 'bn1.mean', 'bn1.var'], outputs: ['b1'] },
      { op: 'Relu', name: 'relu1', inputs: ['b1'], outputs: ['r1'] },
      { op: 'MaxPool', name: 'pool1', inputs: ['r1'], outputs: ['p1'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Conv', name: 'conv2', inputs: ['p1', 'conv2.weight', 'conv2.bias'], outputs: ['c2'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'BatchNormalization', name: 'bn2', inputs: ['c2', 'bn2.scale', 'bn2.bias', 'bn2.mean', 'bn2.var'], outputs: ['b2'] },
      { op: 'Relu', name: 'relu2', inputs: ['b2'], outputs: ['r2'] },
      { op: 'MaxPool', name: 'pool2', inputs: ['r2'], outputs: ['p2'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Flatten', name: 'flatten', inputs: ['p2'], outputs: ['f'], attrs: { axis: 1 } },
      { op: 'Gemm', name: 'fc1', inputs: ['f', 'fc1.weight', 'fc1.bias'], outputs: ['h'], attrs: { transB: 1 } },
      { op: 'Relu', name: 'relu3', inputs: ['h'], outputs: ['hr'] },
      { op: 'Gemm', name: 'fc2', inputs: ['hr', 'fc2.weight', 'fc2.bias'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
  };
}

/** Trained by SGD; BN mean/var stay 0/1 during training and are set afterwards. */
const TRAINABLE = [
  'conv1.weight', 'conv1.bias', 'bn1.scale', 'bn1.bias',
  'conv2.weight', 'conv2.bias', 'bn2.scale', 'bn2.bias',
  'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias',
];
/** Weight decay applies to conv and fc weights only (not to biases or BN scale/bias). */
const DECAYED = new Set(['conv1.weight', 'conv2.weight', 'fc1.weight', 'fc2.weight']);

// ---- data ----------------------------------------------------------------------------------------
/** Preprocessing: x = (pixel / 255 - 0.5) / 0.5, i.e. pixels mapped linearly to [-1, 1]. */
const NORM = Float32Array.from({ length: 256 }, (_, v) => (v / 255 - 0.5) / 0.5);

interface Split {
  n: number;
  images: Uint8Array; // [n, 784]
  labels: Uint8Array; // [n]
}
function loadSplit(prefix: 'train' | 't10k'): Split {
  const images = readIdx(join(DATA_DIR, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readIdx(join(DATA_DIR, `${prefix}-labels-idx1-ubyte.gz`));
  const n = labels.dims[0]!;
  if (images.dims.join() !== `${n},28,28`) throw new Error(`unexpected ${prefix} image dims [${images.dims.join(', ')}]`);
  return { n, images: images.data, labels: labels.data };
}
function fillBatch(split: Split, order: ArrayLike<number>, from: number, count: number, x: Float32Array, y?: BigInt64Array): void {
  for (let i = 0; i < count; i++) {
    const s = order[from + i]!;
    const src = split.images.subarray(s * 784, s * 784 + 784);
    for (let k = 0; k < 784; k++) x[i * 784 + k] = NORM[src[k]!]!;
    if (y) y[i] = BigInt(split.labels[s]!);
  }
}
const identity = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

// ---- engine helpers ------------------------------------------------------------------------------
/** A graph for another batch size whose initializers are the very buffers of `base` (shared weights). */
function sharedGraph(bytes: Uint8Array, batch: number, base: Graph): Graph {
  const g = prepareModel(bytes, { batch }).graph;
  for (const name of g.initializers.keys()) {
    const b = base.initializers.get(name);
    if (!b) throw new Error(`initializer ${name} missing from the training graph`);
    g.initializers.set(name, b);
  }
  return g;
}
function argmaxRows(logits: Float32Array, rows: number, cols: number, out: Int32Array, offset: number): void {
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[i * cols + c]! > logits[i * cols + best]!) best = c;
    out[offset + i] = best;
  }
}
/** Engine predictions (argmax of logits) for the first `count` samples of `order`; count % EVAL_BATCH === 0. */
function predict(engine: EngineModel, split: Split, order: ArrayLike<number>, count: number): { pred: Int32Array; logits: Float32Array } {
  const pred = new Int32Array(count);
  const logits = new Float32Array(count * 10);
  const x = new Float32Array(EVAL_BATCH * 784);
  for (let from = 0; from < count; from += EVAL_BATCH) {
    fillBatch(split, order, from, EVAL_BATCH, x);
    const out = engine.run({ input: { dims: [EVAL_BATCH, 1, 28, 28], data: x } }).logits!.data as Float32Array;
    logits.set(out, from * 10);
    argmaxRows(out, EVAL_BATCH, 10, pred, from);
  }
  return { pred, logits };
}
function accuracy(pred: Int32Array, split: Split, order: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === split.labels[order[i]!]) ok++;
  return ok / pred.length;
}
function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---- main ----------------------------------------------------------------------------------------
const t0 = performance.now();
const train = loadSplit('train');
const test = loadSplit('t10k');
console.log(`data: ${train.n} train / ${test.n} test images from ${DATA_DIR} (${sec(performance.now() - t0)})`);

const initBytes = makeModel(demoSpec(initialWeights(SEED)));
const { graph, engine: engA } = loadEngineModel(initBytes, { batch: HALF, name: 'demo CNN (training)' });
const engB = new EngineModel(graph); // borrows the same weight buffers
const params = TRAINABLE.map((name) => {
  const t = graph.initializers.get(name);
  if (!t || !(t.data instanceof Float32Array)) throw new Error(`no float32 initializer ${name}`);
  return { name, w: t.data, v: new Float32Array(t.data.length), g: new Float32Array(t.data.length), decay: DECAYED.has(name) };
});
console.log(`model: ${params.reduce((a, p) => a + p.w.length, 0)} trainable parameters; batch ${BATCH} as 2 x ${HALF}, ${WORKERS} worker(s)`);

// The engine borrows the initializer buffers: check that an in-place update is seen by both models.
{
  const x = new Float32Array(HALF * 784);
  fillBatch(train, identity(HALF), 0, HALF, x);
  const inp = { input: { dims: [HALF, 1, 28, 28], data: x } };
  const before = Float32Array.from(engA.run(inp).logits!.data as Float32Array);
  const bias = graph.initializers.get('fc2.bias')!.data as Float32Array;
  bias[3]! += 1;
  const a = engA.run(inp).logits!.data as Float32Array;
  const b = engB.run(inp).logits!.data as Float32Array;
  bias[3]! -= 1;
  const shift = (o: Float32Array) => o[3]! - before[3]!;
  if (Math.abs(shift(a) - 1) > 1e-5 || Math.abs(shift(b) - 1) > 1e-5 || a[0] !== before[0])
    throw new Error('the engine does not see in-place weight updates; rebuild the EngineModel after each step');
  console.log('in-place weight updates are visible to the engine (no per-step rebuild needed)');
}

const shuffle = rng(SEED + 1);
const xs = [new Float32Array(HALF * 784), new Float32Array(HALF * 784)];
const ys = [new BigInt64Array(HALF), new BigInt64Array(HALF)];
const reqs: GradientRequest[] = ys.map((y) => ({
  loss: { tensor: 'logits', likelihood: 'categorical', target: { dims: [HALF], data: y } },
  want: TRAINABLE,
}));
const stepsPerEpoch = Math.floor(train.n / BATCH); // the last partial batch of each shuffled epoch is dropped
const totalSteps = EPOCHS * stepsPerEpoch;
const lrAt = (step: number) => 0.5 * LR * (1 + Math.cos((Math.PI * step) / totalSteps)); // cosine decay to 0
const tTrain = performance.now();
const history: { epoch: number; loss: number; trainAcc: number; seconds: number }[] = [];
let step = 0;
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  const tE = performance.now();
  const order = permutation(train.n, shuffle);
  let lossSum = 0;
  let correct = 0;
  for (let s = 0; s < stepsPerEpoch; s++, step++) {
    for (let h = 0; h < 2; h++) fillBatch(train, order, s * BATCH + h * HALF, HALF, xs[h]!, ys[h]!);
    const inputs = xs.map((x) => ({ input: { dims: [HALF, 1, 28, 28], data: x } }));
    const results =
      WORKERS === 2
        ? await Promise.all([engA.gradientsAsync(inputs[0]!, reqs[0]!), engB.gradientsAsync(inputs[1]!, reqs[1]!)])
        : [engA.gradients(inputs[0]!, reqs[0]!), engA.gradients(inputs[1]!, reqs[1]!)];
    for (let h = 0; h < 2; h++) {
      const r = results[h]!;
      for (const l of r.loss) lossSum += l;
      const logits = r.outputs.logits!.data as Float32Array;
      for (let i = 0; i < HALF; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[i * 10 + c]! > logits[i * 10 + best]!) best = c;
        if (BigInt(best) === ys[h]![i]) correct++;
      }
    }
    if (!Number.isFinite(lossSum)) throw new Error(`the loss diverged at epoch ${epoch} step ${s}; lower --lr`);
    // SGD with momentum on the mean loss: g = (sum of per-sample gradients) / BATCH + wd * w
    const lr = lrAt(step);
    for (const p of params) {
      const g0 = results[0]!.grads[p.name]!.data as Float32Array;
      const g1 = results[1]!.grads[p.name]!.data as Float32Array;
      const { w, v } = p;
      const wd = p.decay ? WEIGHT_DECAY : 0;
      for (let k = 0; k < w.length; k++) {
        const g = (g0[k]! + g1[k]!) / BATCH + wd * w[k]!;
        v[k] = MOMENTUM * v[k]! + g;
        w[k]! -= lr * v[k]!;
      }
    }
  }
  const seen = stepsPerEpoch * BATCH;
  const rec = { epoch, loss: lossSum / seen, trainAcc: correct / seen, seconds: (performance.now() - tE) / 1000 };
  history.push(rec);
  console.log(
    `epoch ${epoch}/${EPOCHS}: train loss ${rec.loss.toFixed(4)}, train acc ${(rec.trainAcc * 100).toFixed(2)}% ` +
      `(running, during the epoch), lr ${lrAt(step - 1).toExponential(2)}, ${rec.seconds.toFixed(1)} s`,
  );
}
const trainSeconds = (performance.now() - tTrain) / 1000;
engB.dispose();
engA.dispose();
console.log(`training: ${trainSeconds.toFixed(1)} s`);

// ---- BN statistics: mean/var of the conv outputs on training images, function unchanged ------------
const tStats = performance.now();
{
  const evalGraph = sharedGraph(initBytes, EVAL_BATCH, graph);
  const probe = new EngineModel(evalGraph);
  const probeX = new Float32Array(EVAL_BATCH * 784);
  fillBatch(test, identity(test.n), 0, EVAL_BATCH, probeX);
  const probeInput = { input: { dims: [EVAL_BATCH, 1, 28, 28], data: probeX } };
  const logitsBefore = Float32Array.from(probe.run(probeInput).logits!.data as Float32Array);

  const statsGraph: Graph = {
    ...evalGraph,
    outputs: ['c1', 'c2'].map((name) => ({ name, elemType: 'float32', dims: evalGraph.shapes.get(name)! })),
  };
  const stats = new EngineModel(statsGraph);
  const statsOrder = permutation(train.n, rng(SEED + 2));
  const n = Math.floor(Math.min(STATS_N, train.n) / EVAL_BATCH) * EVAL_BATCH;
  const x = new Float32Array(EVAL_BATCH * 784);
  const acc = { c1: { sum: new Float64Array(8), sq: new Float64Array(8) }, c2: { sum: new Float64Array(16), sq: new Float64Array(16) } };
  for (let from = 0; from < n; from += EVAL_BATCH) {
    fillBatch(train, statsOrder, from, EVAL_BATCH, x);
    const out = stats.run({ input: { dims: [EVAL_BATCH, 1, 28, 28], data: x } });
    for (const key of ['c1', 'c2'] as const) {
      const t = out[key]!;
      const [N, C, H, W] = t.dims as [number, number, number, number];
      const d = t.data as Float32Array;
      for (let i = 0; i < N; i++)
        for (let c = 0; c < C; c++) {
          let s = 0;
          let q = 0;
          const base = (i * C + c) * H * W;
          for (let k = 0; k < H * W; k++) {
            const v = d[base + k]!;
            s += v;
            q += v * v;
          }
          acc[key].sum[c]! += s;
          acc[key].sq[c]! += q;
        }
    }
  }
  stats.dispose();
  // BN(x) = (x - mean) / sqrt(var + eps) * scale + bias. Training used mean 0, var 1:
  //   f(x) = x * a + bias, a = scale / sqrt(1 + eps).
  // With the measured mean m and variance s2, keep f: scale' = a * sqrt(s2 + eps), bias' = bias + a * m.
  const EPS = 1e-5; // BatchNormalization's default epsilon (the nodes do not set it)
  for (const [bn, key, hw] of [['bn1', 'c1', 28 * 28], ['bn2', 'c2', 14 * 14]] as const) {
    const scale = graph.initializers.get(`${bn}.scale`)!.data as Float32Array;
    const bias = graph.initializers.get(`${bn}.bias`)!.data as Float32Array;
    const mean = graph.initializers.get(`${bn}.mean`)!.data as Float32Array;
    const vari = graph.initializers.get(`${bn}.var`)!.data as Float32Array;
    const count = n * hw;
    for (let c = 0; c < scale.length; c++) {
      const m = acc[key].sum[c]! / count;
      const s2 = Math.max(acc[key].sq[c]! / count - m * m, 0);
      const a = scale[c]! / Math.sqrt(vari[c]! + EPS);
      mean[c] = m;
      vari[c] = s2;
      scale[c] = a * Math.sqrt(vari[c]! + EPS); // uses the float32-rounded variance
      bias[c] = bias[c]! + a * mean[c]!;
    }
  }
  const after = probe.run(probeInput).logits!.data as Float32Array;
  let maxDiff = 0;
  let scaleOut = 0;
  for (let i = 0; i < after.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(after[i]! - logitsBefore[i]!));
    scaleOut = Math.max(scaleOut, Math.abs(logitsBefore[i]!));
  }
  probe.dispose();
  const fmt = (name: string) => Array.from(graph.initializers.get(name)!.data as Float32Array, (v) => v.toFixed(2)).join(' ');
  console.log(`BN statistics from ${n} training images (${sec(performance.now() - tStats)}); logits change by ${(maxDiff / scaleOut).toExponential(1)} relative`);
  console.log(`  bn1.mean ${fmt('bn1.mean')}\n  bn1.var  ${fmt('bn1.var')}`);
  if (!(maxDiff / scaleOut < 1e-4)) throw new Error('setting the BN statistics changed the function; this is a bug in the script');
}

// ---- write the model and the calibration set -----------------------------------------------------
mkdirSync(OUT, { recursive: true });
const trained: Weights = new Map(
  [...initialWeights(SEED)].map(([name, t]) => [name, { dims: t.dims, data: graph.initializers.get(name)!.data as Float32Array }]),
);
const modelBytes = makeModel(demoSpec(trained));
const modelPath = join(OUT, 'cnn.onnx');
writeAtomic(modelPath, modelBytes);

const calibOrder = permutation(test.n, rng(SEED + 3)).subarray(0, CALIB_N);
const calibX = new Float32Array(CALIB_N * 784);
const calibY = new BigInt64Array(CALIB_N);
fillBatch(test, calibOrder, 0, CALIB_N, calibX, calibY);
writeNpy(join(OUT, 'calib_x.npy'), { dims: [CALIB_N, 1, 28, 28], dtype: 'float32', data: calibX });
writeNpy(join(OUT, 'calib_y.npy'), { dims: [CALIB_N], dtype: 'int64', data: calibY });
const calibCounts = new Array<number>(10).fill(0);
for (const y of calibY) calibCounts[Number(y)]!++;

// ---- evaluate the written model: engine on the whole test set, onnxruntime on 1000 images ----------
const { engine: evalEngine } = loadEngineModel(modelPath, { batch: EVAL_BATCH });
const testOrder = identity(test.n);
const { pred, logits: engineLogits } = predict(evalEngine, test, testOrder, test.n);
const engineAcc = accuracy(pred, test, testOrder);
const perClass = CLASSES.map((_, c) => {
  let n = 0;
  let ok = 0;
  for (let i = 0; i < test.n; i++)
    if (test.labels[i] === c) {
      n++;
      if (pred[i] === c) ok++;
    }
  return ok / n;
});
let calibCorrect = 0;
{
  const { engine: calibEngine } = loadEngineModel(modelPath, { batch: CALIB_N });
  const out = calibEngine.run({ input: { dims: [CALIB_N, 1, 28, 28], data: calibX } }).logits!.data as Float32Array;
  const p = new Int32Array(CALIB_N);
  argmaxRows(out, CALIB_N, 10, p, 0);
  for (let i = 0; i < CALIB_N; i++) if (BigInt(p[i]!) === calibY[i]) calibCorrect++;
  calibEngine.dispose();
}
evalEngine.dispose();

const ORT_N = 1000;
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const ortX = new Float32Array(ORT_N * 784);
fillBatch(test, testOrder, 0, ORT_N, ortX);
const ortOut = (await session.run({ input: new ort.Tensor('float32', ortX, [ORT_N, 1, 28, 28]) })).logits!.data as Float32Array;
await session.release();
const ortPred = new Int32Array(ORT_N);
argmaxRows(ortOut, ORT_N, 10, ortPred, 0);
const ortAcc = accuracy(ortPred, test, testOrder);
let agree = 0;
let maxAbs = 0;
let ortScale = 0;
for (let i = 0; i < ORT_N; i++) if (ortPred[i] === pred[i]) agree++;
for (let i = 0; i < ORT_N * 10; i++) {
  maxAbs = Math.max(maxAbs, Math.abs(ortOut[i]! - engineLogits[i]!));
  ortScale = Math.max(ortScale, Math.abs(ortOut[i]!));
}
const engineAcc1000 = accuracy(pred.subarray(0, ORT_N), test, testOrder);
const totalSeconds = (performance.now() - t0) / 1000;

console.log(`test accuracy (engine, all ${test.n} test images): ${(engineAcc * 100).toFixed(2)}%`);
console.log(
  `onnxruntime-node on the first ${ORT_N} test images: ${(ortAcc * 100).toFixed(2)}% (engine ${(engineAcc1000 * 100).toFixed(2)}%), ` +
    `top-1 agreement ${agree}/${ORT_N}, logits max rel diff ${(maxAbs / ortScale).toExponential(2)}`,
);
console.log(`calibration set: ${CALIB_N} test images, engine top-1 ${((calibCorrect / CALIB_N) * 100).toFixed(2)}%, per-class counts ${calibCounts.join(' ')}`);
if (agree !== ORT_N || !(maxAbs / ortScale < 1e-4)) throw new Error('the engine and onnxruntime-node disagree on the trained model');

// ---- README ----------------------------------------------------------------------------------------
const size = (f: string) => statSync(join(OUT, f)).size;
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
// the options that differ from the defaults (the output directory aside)
const changed = (Object.keys(OPTIONS) as (keyof typeof OPTIONS)[])
  .filter((k) => k !== 'out' && args[k] !== OPTIONS[k].default)
  .map((k) => ` --${k} ${args[k]}`);
const cmd = `node --import tsx scripts/train-demo.ts${changed.join('')}`;
const paramCounts = [...trained].map(([name, t]) => `\`${name}\` [${t.dims.join(', ')}]`).join(', ');
const readme = `# Demo model: a small CNN trained on Fashion-MNIST

Generated by \`scripts/train-demo.ts\` with onnx-fit's own engine (its forward and backward passes,
plain SGD with momentum written in the script; no other ML framework). Regenerate with

\`\`\`sh
${cmd}
\`\`\`

The run is seeded (initialization, shuffling, calibration draw); with the same engine build on the
same kind of CPU it reproduces these files bit for bit, with \`--workers 1\` or \`2\` alike.

| file | contents | size |
|---|---|---|
| \`cnn.onnx\` | the trained model, opset 13 | ${kib(size('cnn.onnx'))} |
| \`calib_x.npy\` | float32 [${CALIB_N}, 1, 28, 28], **already normalized** test images | ${kib(size('calib_x.npy'))} |
| \`calib_y.npy\` | int64 [${CALIB_N}], their labels (0..9) | ${kib(size('calib_y.npy'))} |

## Model

Input \`input\` float32 [batch, 1, 28, 28], output \`logits\` float32 [batch, 10] (no softmax).

| node | op | details |
|---|---|---|
| conv1 | Conv | 1 -> 8 channels, 3x3, pads 1 |
| bn1 | BatchNormalization | 8 channels |
| relu1 | Relu | |
| pool1 | MaxPool | 2x2, stride 2 -> [8, 14, 14] |
| conv2 | Conv | 8 -> 16 channels, 3x3, pads 1 |
| bn2 | BatchNormalization | 16 channels |
| relu2 | Relu | |
| pool2 | MaxPool | 2x2, stride 2 -> [16, 7, 7] |
| flatten | Flatten | axis 1 -> 784 |
| fc1 | Gemm | 784 -> 64, transB |
| relu3 | Relu | |
| fc2 | Gemm | 64 -> 10, transB |

Initializers: ${paramCounts}; ${params.reduce((a, p) => a + p.w.length, 0)} trainable parameters.
The quantizable layers are conv1, conv2, fc1 and fc2.

Classes (label: name): ${CLASSES.map((c, i) => `${i} ${c}`).join(', ')}.

## Preprocessing

\`x = (pixel / 255 - 0.5) / 0.5\`: the uint8 pixels of the IDX files mapped linearly to [-1, 1]
(background -1). No other transformation; images are 28x28, one channel, row-major.
\`calib_x.npy\` holds images already preprocessed this way, ready to feed to the model.

## Data

Debian's \`dataset-fashion-mnist\` package (\`/usr/share/datasets/fashion-mnist/*-ubyte.gz\`, read
with \`src/data/idx.ts\`): 60000 training and 10000 test images. Training used the training set only.
The calibration samples are ${CALIB_N} images of the **test** set, the first ${CALIB_N} of a seeded
permutation (seed ${SEED + 3}); per-class counts ${calibCounts.join(', ')}.

## Training recipe

- He-normal initialization (seed ${SEED}), conv and fc biases 0, BN scale 1 / bias 0.
- The engine runs BatchNormalization in its inference form, so during training each BN is a fixed
  per-channel affine map: mean 0 and var 1 held constant, scale and bias trained as ordinary weights.
- Loss: softmax cross-entropy on \`logits\`, averaged over the batch (the engine's gradient of the sum
  of per-sample losses, divided by the batch size).
- SGD, momentum ${MOMENTUM}, batch ${BATCH}, learning rate ${LR} with cosine decay to 0 over
  ${EPOCHS} epochs (${stepsPerEpoch} steps each; the partial last batch of each shuffled epoch is
  dropped), weight decay ${WEIGHT_DECAY} on the conv and fc weights only. No data augmentation.
- After training, each BN's mean and var are set to the per-channel mean and (population) variance of
  its input (the conv output) over ${Math.floor(Math.min(STATS_N, train.n) / EVAL_BATCH) * EVAL_BATCH} training images, and scale/bias are rescaled
  (\`scale' = scale / sqrt(1 + eps) * sqrt(var + eps)\`, \`bias' = bias + scale / sqrt(1 + eps) * mean\`,
  eps = 1e-5) so that the network computes the same function (logits change by float rounding only).
  The exported BN layers therefore carry real statistics and BatchNorm folding has work to do.

| epoch | train loss | train acc (running) | time |
|---|---|---|---|
${history.map((h) => `| ${h.epoch} | ${h.loss.toFixed(4)} | ${(h.trainAcc * 100).toFixed(2)}% | ${h.seconds.toFixed(1)} s |`).join('\n')}

Training took ${trainSeconds.toFixed(1)} s (the whole script ${totalSeconds.toFixed(1)} s) with
${WORKERS} engine worker(s) on this machine (${(await import('node:os')).cpus().length} CPUs).

## Measured accuracy

- Engine, all 10000 test images: **${(engineAcc * 100).toFixed(2)}%** top-1.
- onnxruntime-node on the first ${ORT_N} test images: ${(ortAcc * 100).toFixed(2)}% (the engine:
  ${(engineAcc1000 * 100).toFixed(2)}%); top-1 predictions agree on ${agree}/${ORT_N}, logits agree to
  ${(maxAbs / ortScale).toExponential(1)} relative (max |diff| / max |logit|).
- The ${CALIB_N} calibration samples: ${((calibCorrect / CALIB_N) * 100).toFixed(2)}% top-1.
- Per class (engine, test set): ${CLASSES.map((c, i) => `${c} ${(perClass[i]! * 100).toFixed(1)}%`).join(', ')}.

\`test/demo-model.test.ts\` checks that these files load, that onnxruntime-node's top-1 accuracy on the
calibration samples is at least 85%, and that the engine's logits match onnxruntime's to 1e-4.
`;
writeAtomic(join(OUT, 'README.md'), readme);
for (const f of ['cnn.onnx', 'calib_x.npy', 'calib_y.npy', 'README.md'])
  console.log(`wrote ${relative(process.cwd(), join(OUT, f)) || f} (${size(f)} bytes)`);
console.log(`total ${totalSeconds.toFixed(1)} s`);
