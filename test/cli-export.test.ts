/** onnx-fit export and onnx-fit evaluate. */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModel } from '../src/onnx/read.js';
import { readConfigFile } from '../src/cli/options.js';
import { InvalidOptionError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-export-'));
const CNN = 'assets/demo/cnn.onnx';
const X = 'assets/demo/calib_x.npy';
const Y = 'assets/demo/calib_y.npy';

const plain = join(dir, 'plain.json');
writeFileSync(plain, JSON.stringify({ weights: { conv1: 8, conv2: 4, fc1: 4, fc2: 8 }, activations: { conv2: 8, fc1: 8 } }));
// the JSON onnx-fit search writes wraps the configuration
const wrapped = join(dir, 'search.json');
writeFileSync(wrapped, JSON.stringify({ version: 1, config: { weights: { conv1: 8, conv2: 4, fc1: 4, fc2: 8 }, activations: { conv2: 8, fc1: 8 } }, fit: 0.1, frontier: [] }));

t.test('readConfigFile accepts both forms and names bad files', async (t) => {
  t.same(readConfigFile(plain), readConfigFile(wrapped));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ "weights": ');
  t.throws(() => readConfigFile(bad), InvalidOptionError);
  writeFileSync(bad, '{ "layers": [] }');
  t.throws(() => readConfigFile(bad), { message: /bad\.json: the configuration has neither "weights" nor "activations"/ });
  t.throws(() => readConfigFile(join(dir, 'missing.json')), { message: /Cannot read the configuration .*missing\.json/ });
});

t.test('export writes a QDQ model; activations need --input', async (t) => {
  const out = join(dir, 'cnn-qdq.onnx');
  const r = runCli('export', CNN, '--config', wrapped, '--out', out, '--input', X, '--per-channel', '--json', join(dir, 'summary.json'));
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Wrote .*cnn-qdq\.onnx \(qdq, opset 13, BatchNorm folded into conv1, conv2\)/);
  t.match(r.stdout, /conv2 +Conv +4 \(int8, axis 0\) +8 \[/);
  const ops = readModel(out).proto.graph!.node.map((n) => n.opType);
  t.equal(ops.filter((o) => o === 'DequantizeLinear').length, 6);
  t.equal(ops.filter((o) => o === 'QuantizeLinear').length, 2);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  t.equal(summary.layers.length, 4);

  const missing = runCli('export', CNN, '--config', plain, '--out', join(dir, 'x.onnx'));
  t.equal(missing.status, 1);
  t.match(missing.stderr, /quantizes activations: pass calibration data with --input/);
  t.notOk(existsSync(join(dir, 'x.onnx')));
  const badFormat = runCli('export', CNN, '--config', plain, '--out', join(dir, 'x.onnx'), '--format', 'int8');
  t.match(badFormat.stderr, /Expected 'qdq' or 'fake-quant' for option --format but received 'int8'/);
});

t.test('evaluate prints a table and writes JSON', async (t) => {
  const float = join(dir, 'float.json');
  writeFileSync(float, '{ "weights": {} }');
  const json = join(dir, 'eval.json');
  const r = runCli('evaluate', CNN, '--config', float, '--config', wrapped, '--input', X, '--labels', Y, '--workers', '2', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /512 samples, categorical output 'logits'/);
  t.match(r.stdout, /float accuracy 91\.99%/);
  t.match(r.stdout, /float\.json +91\.99% +100\.00% +0 +0/);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(out.results.length, 2);
  t.equal(out.results[0].accuracy, 471 / 512);
  t.ok(out.results[1].accuracy > 0.88);
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ weights: { conv7: 4 } }));
  const e = runCli('evaluate', CNN, '--config', unknown, '--input', X);
  t.equal(e.status, 1);
  t.match(e.stderr, /'conv7'.*\[ERR_INVALID_OPTION\]/s);
});
