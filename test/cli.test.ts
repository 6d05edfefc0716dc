/** The onnx-fit command: inspect (table + JSON) and demo. */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpy } from '../src/data/npy.js';
import { MODELS } from './helpers/models.js';
import { randomFloats } from './helpers/random.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-'));

t.test('inspect PP-OCR cls with --shape and --json', async (t) => {
  const json = join(dir, 'cls.json');
  const r = runCli('inspect', MODELS.ocrCls, '--shape', 'x=3x3x48x192', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Quantizable layers: 54/);
  t.match(r.stdout, /Engine vs onnxruntime-node/);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  t.same(Object.keys(report).sort(), ['agreement', 'inputs', 'layers', 'model', 'opset', 'outputs', 'producer', 'unsupported']);
  t.equal(report.layers.length, 54);
  const first = report.layers[0];
  t.same(Object.keys(first).sort(), ['count', 'name', 'op', 'weight']);
  t.ok(report.layers.every((l: { count: number }) => l.count > 0));
  t.same(report.inputs[0].prepared, [3, 3, 48, 192]);
  t.equal(report.agreement.length, 1);
  t.same(report.agreement[0].dims, [3, 2]);
  t.ok(report.agreement[0].maxRelDiff < 1e-4, `maxRelDiff ${report.agreement[0].maxRelDiff}`);
  t.same(report.unsupported, []);
});

t.test('inspect with an .npy input; the batch comes from the file', async (t) => {
  const x = join(dir, 'x.npy');
  writeNpy(x, { dims: [5, 1, 28, 28], dtype: 'float32', data: randomFloats(5 * 784, 3, 0, 1) });
  const json = join(dir, 'demo.json');
  const r = runCli('inspect', MODELS.demoCnn, '--input', x, '--json', json);
  t.equal(r.status, 0, r.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  t.same(report.inputs[0].prepared, [5, 1, 28, 28]);
  t.same(report.agreement[0].dims, [5, 10]);
  t.same(report.layers.map((l: { name: string }) => l.name), ['conv1', 'conv2', 'fc1', 'fc2']);
  t.same(report.layers.map((l: { count: number }) => l.count), [72, 1152, 50176, 640]);
});

t.test('inspect without --shape on a model with dynamic H/W explains what to pass', async (t) => {
  const r = runCli('inspect', MODELS.ocrDet);
  t.equal(r.status, 1);
  t.match(r.stderr, /--shape x=2x3xNxN/);
  t.match(r.stderr, /ERR_INVALID_INPUT/);
});

t.test('inspect rejects a malformed --shape and a bad --batch', async (t) => {
  let r = runCli('inspect', MODELS.demoCnn, '--shape', 'input=2by3');
  t.equal(r.status, 1);
  t.match(r.stderr, /Expected NAME=DxDxD for option --shape but received 'input=2by3'/);
  r = runCli('inspect', MODELS.demoCnn, '--batch', '0');
  t.equal(r.status, 1);
  t.match(r.stderr, /Expected a positive integer for option --batch but received '0'/);
});

t.test('an .npy that is not one reports the file', async (t) => {
  const bad = join(dir, 'bad.npy');
  writeFileSync(bad, 'nope');
  const r = runCli('inspect', MODELS.demoCnn, '--input', bad);
  t.equal(r.status, 1);
  t.match(r.stderr, /bad\.npy is not a \.npy file/);
});

t.test('demo runs on the bundled model: sensitivity, 4-bit search, accuracy, an export onnxruntime runs', async (t) => {
  const out = join(dir, 'demo-out');
  const r = runCli('demo', '--out-dir', out, '--quiet');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Quantizable layers: 4/);
  t.match(r.stdout, /logits/);
  t.match(r.stdout, /sorted by weight Fisher trace/);
  const avg = /average (\d+\.\d+) bits/.exec(r.stdout);
  t.ok(avg && Number(avg[1]) <= 4, `the configuration averages at most 4 bits (${avg?.[1]})`);
  const acc = (row: string) => Number(new RegExp(`^${row}\\s+[\\d.]+\\s+([\\d.]+)%`, 'm').exec(r.stdout)?.[1]);
  const float = acc('float32');
  const mixed = acc('FIT mixed precision');
  t.ok(float > 90 && float < 94, `float top-1 ${float}%`);
  t.ok(mixed > 85 && mixed <= float + 1, `mixed 4-bit top-1 ${mixed}%`);
  // the exported QDQ model runs in onnxruntime-node and holds integer weights
  const ort = await import('onnxruntime-node');
  const file = join(out, 'cnn.mixed4.qdq.onnx');
  const session = await ort.InferenceSession.create(file);
  const x = new Float32Array(2 * 28 * 28).fill(0.1);
  const y = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [2, 1, 28, 28]) });
  t.same(y[session.outputNames[0]!]!.dims, [2, 10]);
  t.match(readFileSync(file).toString('latin1'), /DequantizeLinear/);
});

t.test('readNpy of a file on disk returns the values written (not the header bytes)', async (t) => {
  const { readNpy } = await import('../src/data/npy.js');
  const p = join(dir, 'vals.npy');
  writeNpy(p, { dims: [2, 3], dtype: 'float32', data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
  const back = readNpy(p);
  t.same(back.dims, [2, 3]);
  t.same(Array.from(back.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  const q = join(dir, 'labels.npy');
  writeNpy(q, { dims: [3], dtype: 'int64', data: BigInt64Array.from([7n, 0n, 9n]) });
  t.same(Array.from(readNpy(q).data as BigInt64Array), [7n, 0n, 9n]);
});
