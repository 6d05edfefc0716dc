/**
 * Benchmarks, as ratios against onnxruntime-node measured in the same run on the same model,
 * batch and thread count (one thread). Run: npm run bench
 */
import * as ort from 'onnxruntime-node';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEngineModel, prepareModel } from '../src/engine/load.js';
import { foldBatchNorm } from '../src/onnx/fold-bn.js';
import { loadAddon } from '../src/engine/addon.js';
import { EngineModel } from '../src/engine/model.js';
import { makeModel } from '../src/onnx/build.js';
import type { Graph } from '../src/onnx/types.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

function randomData(n: number, seed = 1): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

async function median(fn: () => unknown | Promise<unknown>, minRuns = 5, minMs = 1500): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * Median times of several functions run in turn, round after round, so that all of them see the
 * same machine: on a shared VM the speed drifts by up to 1.5x within seconds, and medians taken one
 * function after the other then compare different machines.
 */
async function interleavedMedians(fns: (() => unknown | Promise<unknown>)[], minRounds = 15, minMs = 3000): Promise<number[]> {
  for (const fn of fns) {
    await fn();
    await fn();
  }
  const times: number[][] = fns.map(() => []);
  const start = performance.now();
  while (times[0]!.length < minRounds || performance.now() - start < minMs) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]!();
      times[i]!.push(performance.now() - t0);
    }
    if (times[0]!.length >= 400) break;
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!);
}

async function ortSession(model: string | Uint8Array) {
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' as const };
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

async function forwardRatio(name: string, path: string, dims: number[]) {
  const { engine } = loadEngineModel(path, { inputShapes: { [inputName(path)]: dims } });
  const data = randomData(dims.reduce((a, b) => a * b, 1));
  const session = await ortSession(path);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, dims) };
  const [ortMs, engMs] = await interleavedMedians([() => session.run(feeds), () => engine.run({ [engine.inputNames[0]!]: { dims, data } })]);
  await session.release();
  engine.dispose();
  console.log(`forward  ${name.padEnd(22)} batch ${dims[0]}  engine ${engMs.toFixed(1)} ms  onnxruntime ${ortMs.toFixed(1)} ms  ratio ${(engMs / ortMs).toFixed(2)}x  (goal <= 2x)`);
}

async function backwardRatios(name: string, path: string, dims: number[], foldBn: boolean) {
  const prepared = prepareModel(path, { inputShapes: { [inputName(path)]: dims } });
  const graph = foldBn ? foldBatchNorm(prepared.graph).graph : prepared.graph;
  const layers = prepared.layers;
  const engine = new EngineModel(graph);
  const data = randomData(dims.reduce((a, b) => a * b, 1));
  const session = await ortSession(path);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, dims) };
  const last = graph.nodes.find((n) => n.outputs.includes(graph.outputs[0]!.name))!;
  const logits = last.op === 'Softmax' ? last.inputs[0]! : graph.outputs[0]!.name;
  const inputs = { [engine.inputNames[0]!]: { dims, data } };
  const layerReqs = layers.map((l) => ({ node: l.name, dataInput: l.op === 'MatMul' ? 1 - l.weightInput : 0, weightInput: l.weightInput }));
  const base = { loss: { tensor: logits, likelihood: 'categorical' as const, sampleSeed: 1 }, layers: layerReqs };
  const [ortMs, fbMs, psMs] = await interleavedMedians([
    () => session.run(feeds),
    () => engine.gradients(inputs, { ...base, want: layers.map((l) => l.weight) }),
    () => engine.gradients(inputs, { ...base, want: layers.map((l) => l.weight), perSampleSquares: true }),
  ]);
  await session.release();
  engine.dispose();
  console.log(
    `backward ${(name + (foldBn ? ' (BN folded)' : '')).padEnd(34)} batch ${dims[0]}  fwd+bwd ${fbMs.toFixed(1)} ms = ${(fbMs / ortMs).toFixed(2)}x onnxruntime forward (goal <= 3.5x);` +
      `  with per-sample squares ${psMs.toFixed(1)} ms = ${(psMs / fbMs).toFixed(2)}x plain backward (goal <= 1.3x)`,
  );
}

async function fisherThroughput(name: string, path: string, dims: number[], samples: number) {
  // The compiled package (dist/), as users run it: workers load plain JS (under tsx they would
  // compile TypeScript at start-up). `npm run bench` builds it first.
  const dist = (await import(join(root, 'dist', 'index.js'))) as typeof import('../src/index.js');
  const [b, ...rest] = dims;
  const n = samples;
  const data = randomData(n * rest.reduce((a, c) => a * c, 1), 4);
  const session = await ortSession(path);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data.subarray(0, b! * rest.reduce((a, c) => a * c, 1)), dims) };
  // onnxruntime is timed again around every measured run (the VM's speed drifts); the ratio uses
  // the mean of those medians.
  const ortTimes: number[] = [];
  const ortNow = async () => ortTimes.push(await median(() => session.run(feeds), 20, 300));
  const line: string[] = [];
  let one = 0;
  for (const workers of [1, 2]) {
    const run = async () => {
      const t0 = performance.now();
      await dist.sensitivity(path, {
        data: { input: { dims: [n, ...rest], data } },
        inputShapes: { [inputName(path)]: dims },
        batchSize: b,
        tolerance: 0,
        workers,
      });
      return (performance.now() - t0) / 1000;
    };
    const cold = await run();
    ortTimes.length = 0;
    await ortNow();
    const warm1 = await run();
    await ortNow();
    const warm = Math.min(warm1, await run());
    await ortNow();
    const ortMs = ortTimes.reduce((a, b) => a + b, 0) / ortTimes.length;
    await dist.closeWorkers();
    const rate = n / warm;
    if (workers === 1) one = rate;
    const perBatchMs = (warm * 1000) / (n / b!) * workers;
    line.push(
      `${workers} worker(s) ${rate.toFixed(1)} samples/s (first run ${(n / cold).toFixed(1)} incl. start-up; ` +
        `${(perBatchMs / ortMs).toFixed(2)}x onnxruntime forward per batch per worker` +
        (workers === 1 ? ')' : `; ${(rate / one).toFixed(2)}x of 1 worker)`),
    );
  }
  await session.release();
  console.log(`fisher   ${name.padEnd(22)} batch ${b}, ${n} samples, sampled estimator: ${line.join('; ')}`);
}

function inputName(path: string): string {
  return path.includes('cnn.onnx') ? 'input' : 'x';
}

async function gemmRatio(n: number) {
  const weight = randomData(n * n, 2);
  const bytes = makeModel({
    opset: 13,
    nodes: [{ op: 'MatMul', inputs: ['a', 'w'], outputs: ['y'] }],
    inputs: [{ name: 'a', elemType: 'float32', dims: [n, n] }],
    outputs: [{ name: 'y' }],
    initializers: [{ name: 'w', dims: [n, n], type: 'float32', data: weight }],
  });
  const graph: Graph = {
    opset: 13,
    nodes: [{ op: 'MatMul', name: 'mm', domain: '', inputs: ['a', 'w'], outputs: ['y'], attrs: {} }],
    initializers: new Map([['w', { dims: [n, n], type: 'float32' as const, data: weight }]]),
    inputs: [{ name: 'a', elemType: 'float32', dims: [n, n] }],
    outputs: [{ name: 'y', elemType: 'float32', dims: [n, n] }],
    shapes: new Map([['a', [n, n]]]),
  };
  const a = randomData(n * n, 3);
  const engine = new EngineModel(graph);
  const session = await ortSession(bytes);
  const feeds = { a: new ort.Tensor('float32', a, [n, n]) };
  const flop = 2 * n * n * n;
  const [ortMs, engMs] = await interleavedMedians([() => session.run(feeds), () => engine.run({ a: { dims: [n, n], data: a } })]);
  await session.release();
  engine.dispose();
  const g = (ms: number) => flop / ms / 1e6;
  console.log(`sgemm    ${String(n).padStart(4)}^3  engine ${g(engMs).toFixed(1)} GFLOP/s  onnxruntime ${g(ortMs).toFixed(1)} GFLOP/s  ratio ${(g(engMs) / g(ortMs)).toFixed(2)}x  (goal >= 0.7x)`);
}

const which = new Set(process.argv.slice(2));
const want = (k: string) => which.size === 0 || which.has(k);
console.log(`onnx-fit bench: one thread, gemm path ${loadAddon().cpuFeatures().gemmPath}`);
if (want('gemm')) for (const n of [256, 512, 1024]) await gemmRatio(n);
const ocrCls = join(root, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
if (want('backward')) {
  for (const fold of [false, true]) {
    await backwardRatios('PP-OCR mobile v2 cls', ocrCls, [32, 3, 48, 192], fold);
    await backwardRatios('demo CNN', join(root, 'assets', 'demo', 'cnn.onnx'), [32, 1, 28, 28], fold);
  }
}
if (want('fisher')) {
  await fisherThroughput('PP-OCR mobile v2 cls', ocrCls, [32, 3, 48, 192], 256);
  await fisherThroughput('demo CNN', join(root, 'assets', 'demo', 'cnn.onnx'), [32, 1, 28, 28], 2048);
}
if (want('memory')) {
  const { benchMemory } = await import('./memory.js');
  await benchMemory('PP-OCR mobile v2 cls', ocrCls, 'x', [32, 3, 48, 192], 128);
  await benchMemory('demo CNN', join(root, 'assets', 'demo', 'cnn.onnx'), 'input', [32, 1, 28, 28], 1024);
}
if (want('forward')) {
  await forwardRatio('PP-OCR mobile v2 cls', ocrCls, [32, 3, 48, 192]);
  await forwardRatio('demo CNN', join(root, 'assets', 'demo', 'cnn.onnx'), [32, 1, 28, 28]);
}
if (want('search')) {
  const { benchSearch } = await import('./search.js');
  await benchSearch();
}
if (want('compress')) {
  const { benchCompress } = await import('./compress.js');
  await benchCompress();
}
if (want('curve')) {
  const { benchCompressCurve } = await import('./compress-curve.js');
  await benchCompressCurve();
}
