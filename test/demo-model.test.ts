/**
 * The committed demo model (assets/demo, written by scripts/train-demo.ts): it and its calibration
 * set load, it is actually trained (onnxruntime-node top-1 >= 85% on the calibration samples), and
 * the engine's logits match onnxruntime's.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseNpy } from '../src/data/npy.js';
import { loadEngineModel } from '../src/engine/load.js';
import { readModel } from '../src/onnx/read.js';
import { compareOutputs, ortSession, runOnnxruntime } from '../src/eval/agreement.js';

const dir = fileURLToPath(new URL('../assets/demo/', import.meta.url));
const NODES = ['conv1', 'bn1', 'relu1', 'pool1', 'conv2', 'bn2', 'relu2', 'pool2', 'flatten', 'fc1', 'relu3', 'fc2'];

function argmax(d: Float32Array, row: number, cols: number): number {
  let best = 0;
  for (let c = 1; c < cols; c++) if (d[row * cols + c]! > d[row * cols + best]!) best = c;
  return best;
}

// Parsed from a plain Uint8Array copy: readNpy hands parseNpy a Buffer, whose slice() is a view, not
// the fresh copy parseNpy expects (it then reads the data from the start of the underlying buffer).
const loadNpy = (name: string) => parseNpy(new Uint8Array(readFileSync(`${dir}${name}`)), name);

t.test('demo model and calibration set', async (t) => {
  const x = loadNpy('calib_x.npy');
  const y = loadNpy('calib_y.npy');
  t.equal(x.dtype, 'float32');
  t.equal(y.dtype, 'int64');
  const n = x.dims[0]!;
  t.same(x.dims, [n, 1, 28, 28], 'calib_x is [N, 1, 28, 28]');
  t.same(y.dims, [n], 'calib_y is [N]');
  t.ok(n >= 256, `a few hundred samples (${n})`);
  const xd = x.data as Float32Array;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of xd) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  t.ok(lo >= -1 && hi <= 1 && lo < -0.99 && hi > 0.99, `normalized to [-1, 1] (range ${lo}..${hi})`);
  const labels = Array.from(y.data as BigInt64Array, Number);
  t.ok(labels.every((l) => Number.isInteger(l) && l >= 0 && l <= 9), 'labels in 0..9');
  t.equal(new Set(labels).size, 10, 'all ten classes present');

  const model = readModel(`${dir}cnn.onnx`);
  const { engine, graph, layers } = loadEngineModel(model, { batch: n });
  t.same(graph.nodes.map((nd) => nd.name), NODES, 'node names');
  t.same(layers.map((l) => l.name), ['conv1', 'conv2', 'fc1', 'fc2'], 'quantizable layers');
  for (const bn of ['bn1', 'bn2']) {
    const mean = graph.initializers.get(`${bn}.mean`)!.data as Float32Array;
    const vari = graph.initializers.get(`${bn}.var`)!.data as Float32Array;
    t.ok(mean.some((v) => Math.abs(v) > 1e-3) && vari.some((v) => Math.abs(v - 1) > 1e-2), `${bn} carries non-trivial statistics`);
  }

  const inputs = { input: { dims: [n, 1, 28, 28], data: xd } };
  const session = await ortSession(model);
  const ort = (await runOnnxruntime(session, inputs)).logits!;
  await session.release();
  const eng = engine.run(inputs).logits!;
  t.same(eng.dims, [n, 10]);
  t.same(ort.dims, [n, 10]);
  let ortOk = 0;
  let engOk = 0;
  for (let i = 0; i < n; i++) {
    if (argmax(ort.data, i, 10) === labels[i]) ortOk++;
    if (argmax(eng.data as Float32Array, i, 10) === labels[i]) engOk++;
  }
  const acc = ortOk / n;
  t.ok(acc >= 0.85, `onnxruntime-node top-1 on the calibration samples: ${(acc * 100).toFixed(2)}% (>= 85%)`);
  t.equal(engOk, ortOk, `the engine gets the same number right (${engOk})`);
  const ag = compareOutputs('logits', eng.data as Float32Array, ort.data, eng.dims);
  t.ok(ag.maxRelDiff <= 1e-4, `engine vs onnxruntime logits: max rel diff ${ag.maxRelDiff.toExponential(2)} <= 1e-4`);
  engine.dispose();
});
