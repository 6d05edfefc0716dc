/** The onnx-fit sensitivity and score commands, and the progress bar. */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNpy } from '../src/data/npy.js';
import { makeModel } from '../src/onnx/build.js';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { ProgressBar, sensitivityState, type ProgressStream } from '../src/cli/progress.js';
import { formatSensitivity, loadReport } from '../src/cli/sensitivity.js';
import { dataSpec } from '../src/cli/options.js';
import { compact } from '../src/cli/format.js';
import { InvalidInputError, InvalidOptionError } from '../src/errors.js';
import type { SensitivityReport } from '../src/fisher/report.js';
import { rng } from './helpers/random.js';
import { MODELS } from './helpers/models.js';
import { runCli, runCliAsync } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-sens-'));

// x [N, 5] -> Gemm (W1 [4, 5], transB) -> Relu -> Gemm (W2 [3, 4], transB) -> Softmax
const N = 96;
const r = rng(11);
const W1 = Array.from({ length: 20 }, () => r() - 0.5);
const W2 = Array.from({ length: 12 }, () => 3 * (r() - 0.5));
const model = join(dir, 'mlp.onnx');
writeFileSync(
  model,
  makeModel({
    opset: 13,
    inputs: [{ name: 'x', elemType: 'float32', dims: ['N', 5] }],
    outputs: [{ name: 'p' }],
    initializers: [
      { name: 'W1', dims: [4, 5], type: 'float32', data: W1 },
      { name: 'W2', dims: [3, 4], type: 'float32', data: W2 },
    ],
    nodes: [
      { op: 'Gemm', name: 'fc1', inputs: ['x', 'W1'], outputs: ['h'], attrs: { transB: 1 } },
      { op: 'Relu', name: 'relu', inputs: ['h'], outputs: ['hr'] },
      { op: 'Gemm', name: 'fc2', inputs: ['hr', 'W2'], outputs: ['z'], attrs: { transB: 1 } },
      { op: 'Softmax', name: 'sm', inputs: ['z'], outputs: ['p'], attrs: { axis: 1 } },
    ],
  }),
);
const xPath = join(dir, 'x.npy');
const yPath = join(dir, 'y.npy');
writeNpy(xPath, { dims: [N, 5], dtype: 'float32', data: Float32Array.from({ length: N * 5 }, () => 2 * r() - 1) });
writeNpy(yPath, { dims: [N], dtype: 'int64', data: BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 3)) });

interface JsonLayer {
  name: string;
  op: string;
  weight: { name: string; count: number; min: number; max: number; fisherTrace: number; stdError: number | null };
  activation: { name: string; count: number; min: number; max: number; fisherTrace: number; stdError: number | null };
}

/** The layer names of the table's rows, in order. */
function tableLayers(stdout: string): string[] {
  const lines = stdout.split('\n');
  const rule = lines.findIndex((l) => /^-+\s+-+/.test(l));
  const out: string[] = [];
  for (const l of lines.slice(rule + 1)) {
    const m = /^(\d+)\s+(\S+)\s+(Gemm|Conv|MatMul|ConvTranspose)\s/.exec(l);
    if (!m) break;
    out.push(m[2]!);
  }
  return out;
}

const sensJson = join(dir, 's.json');
/** sensitivity() called directly on the data the CLI gets (on this thread: a pool here only costs start-up time). */
let directCached: Promise<SensitivityReport> | undefined;
const directReport = () => (directCached ??= sensitivity(model, { data: { input: xPath, labels: yPath }, batchSize: 16, tolerance: 0, workers: 1 }));

t.test('sensitivity --json writes version 1 with the traces sensitivity() computes; the table is sorted', async (t) => {
  const res = runCli('sensitivity', model, '--input', xPath, '--labels', yPath, '--batch', '16', '--tolerance', '0', '--json', sensJson);
  t.equal(res.status, 0, res.stderr);
  const json = JSON.parse(readFileSync(sensJson, 'utf8'));
  t.same(Object.keys(json), ['version', 'model', 'estimator', 'likelihood', 'samples', 'foldBatchNorm', 'layers']);
  t.equal(json.version, 1);
  t.equal(json.model, 'mlp.onnx');
  t.equal(json.estimator, 'empirical');
  t.equal(json.likelihood, 'categorical');
  t.equal(json.samples, N);
  t.equal(json.foldBatchNorm, true);
  t.same(json.layers.map((l: JsonLayer) => l.name), ['fc1', 'fc2']);
  for (const l of json.layers as JsonLayer[]) {
    t.same(Object.keys(l), ['name', 'op', 'weight', 'activation']);
    t.same(Object.keys(l.weight), ['name', 'count', 'min', 'max', 'fisherTrace', 'stdError']);
    t.same(Object.keys(l.activation), ['name', 'count', 'min', 'max', 'fisherTrace', 'stdError']);
  }
  t.same(json.layers.map((l: JsonLayer) => [l.weight.name, l.weight.count, l.activation.name, l.activation.count]), [
    ['W1', 20, 'x', 5],
    ['W2', 12, 'hr', 4],
  ]);

  const direct = await directReport();
  direct.layers.forEach((l, i) => {
    const j = json.layers[i] as JsonLayer;
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
    t.ok(close(j.weight.fisherTrace, l.weight.fisherTrace), `${l.name} weight trace ${j.weight.fisherTrace} vs ${l.weight.fisherTrace}`);
    t.ok(close(j.activation.fisherTrace, l.activation.fisherTrace), `${l.name} activation trace`);
    t.ok(close(j.weight.stdError!, l.weight.stdError!), `${l.name} weight std error`);
    t.equal(j.weight.min, l.weight.min);
    t.equal(j.activation.max, l.activation.max);
  });

  t.match(res.stdout, /^Model mlp\.onnx: estimator empirical, likelihood categorical, 96 samples, foldBatchNorm true/);
  t.match(res.stdout, /rank\s+layer\s+op\s+weights\s+weight trace ± s\.e\.\s+activation trace ± s\.e\.\s+weight range\s+activation range/);
  const order = [...(json.layers as JsonLayer[])].sort((a, b) => b.weight.fisherTrace - a.weight.fisherTrace).map((l) => l.name);
  t.same(tableLayers(res.stdout), order, 'rows by descending weight trace');
  const first = (json.layers as JsonLayer[]).find((l) => l.name === order[0])!;
  t.ok(res.stdout.includes(`${compact(first.weight.fisherTrace)} ± ${compact(first.weight.stdError)}`), 'trace ± std error in compact form');
  t.ok(res.stdout.includes(`[${compact(first.weight.min)}, ${compact(first.weight.max)}]`), 'weight range');
  // on a pipe: no \r redraws, only plain progress lines (none at all when the run takes under 2 s)
  t.notMatch(res.stderr, /\r/);
  t.ok(res.stderr.split('\n').every((l) => l === '' || /^sensitivity: \d+\/96 samples, /.test(l)), res.stderr);
});

t.test('--estimator sampled works without labels; --input NAME=FILE and --input-name name the input', async (t) => {
  const out = join(dir, 'sampled.json');
  let res = runCli('sensitivity', model, '--input', xPath, '--estimator', 'sampled', '--seed', '3', '--json', out, '--quiet');
  t.equal(res.status, 0, res.stderr);
  const a = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(a.estimator, 'sampled');
  t.ok(a.layers.every((l: JsonLayer) => l.weight.fisherTrace > 0));
  res = runCli('sensitivity', model, '--input-name', `x=${xPath}`, '--seed', '3', '--json', out, '--quiet');
  t.equal(res.status, 0, res.stderr);
  const b = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(b.estimator, 'sampled', 'sampled is the default without labels');
  t.same(b.layers, a.layers, 'same seed, same traces');
  res = runCli('sensitivity', model, '--input', `x=${xPath}`, '--seed', '3', '--json', out, '--no-fold-bn', '--quiet');
  t.equal(res.status, 0, res.stderr);
  const c = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(c.foldBatchNorm, false);
  t.same(c.layers, a.layers);
});

t.test('--workers and --max-samples are passed through', async (t) => {
  const out = join(dir, 'w.json');
  const res = runCli('sensitivity', model, '--input', xPath, '--labels', yPath, '--workers', '2', '--batch', '8', '--max-samples', '40', '--tolerance', '0', '--json', out);
  t.equal(res.status, 0, res.stderr);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(j.samples, 40);
  const direct = await sensitivity(model, { data: { input: xPath, labels: yPath }, batchSize: 8, maxSamples: 40, tolerance: 0, workers: 1 });
  t.ok(Math.abs(j.layers[0].weight.fisherTrace - direct.layers[0]!.weight.fisherTrace) < 1e-9 * direct.layers[0]!.weight.fisherTrace);
});

t.test('bad options: one line on stderr, exit 1', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--input', xPath, '--estimator', 'empirical'], /The 'empirical' estimator needs labels: pass --labels FILE\.npy, or use --estimator sampled/],
    [['--input', xPath, '--estimator', 'batch'], /The 'batch' estimator needs labels/],
    [['--input', xPath, '--batch', 'x'], /Expected a positive integer for option --batch but received 'x'/],
    [['--input', xPath, '--batch', '0'], /Expected a positive integer for option --batch but received '0'/],
    [['--input', xPath, '--max-samples', '2.5'], /Expected a positive integer for option --max-samples but received '2\.5'/],
    [['--input', xPath, '--tolerance', '-1'], /Expected a non-negative number for option --tolerance but received '-1'/],
    [['--input', xPath, '--workers', 'many'], /Expected a positive integer for option --workers but received 'many'/],
    [['--input', xPath, '--estimator', 'fisher'], /Expected 'empirical', 'sampled' or 'batch' for option --estimator but received 'fisher'/],
    [['--input', xPath, '--likelihood', 'poisson'], /Expected 'auto', 'categorical', 'bernoulli' or 'gaussian' for option --likelihood/],
    [['--input', xPath, '--shape', 'x=5by4'], /Expected NAME=DxDxD for option --shape but received 'x=5by4'/],
    [[], /Expected calibration data: pass --input FILE\.npy/],
    [['--input', xPath, '--input', xPath], /name each one: --input-name NAME=FILE\.npy/],
    [['--input-name', 'x'], /Expected NAME=FILE\.npy for option --input-name but received 'x'/],
    [['--input-name', `y=${xPath}`], /input 'y', which the model does not have/],
    [['--input', join(dir, 'missing.npy')], /missing\.npy/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCliAsync('sensitivity', model, ...args)));
  for (const [i, [args, re]] of cases.entries()) {
    const res = results[i]!;
    t.equal(res.status, 1, args.join(' '));
    t.match(res.stderr, re, args.join(' '));
    t.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr}`);
    t.match(res.stderr, /^onnx-fit: .* \[ERR_[A-Z_]+\]\n$/);
    t.equal(res.stdout, '');
  }
});

t.test('score prints the FIT that report.fit() gives, and --json writes it with the configuration', async (t) => {
  t.ok(existsSync(sensJson), 'needs the JSON of the first test');
  const config = { weights: { fc1: 4, fc2: 8 }, activations: { fc2: 6 } };
  const cfg = join(dir, 'c.json');
  writeFileSync(cfg, JSON.stringify(config));
  const out = join(dir, 'fit.json');
  const res = runCli('score', model, '--sensitivity', sensJson, '--config', cfg, '--json', out);
  t.equal(res.status, 0, res.stderr);
  const direct = await directReport();
  const expected = direct.fit(config);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  t.same(Object.keys(j), ['fit', 'weights', 'activations']);
  t.ok(Math.abs(j.fit - expected) <= 1e-12 * expected, `fit ${j.fit} vs ${expected}`);
  t.same(j.weights, config.weights);
  t.same(j.activations, config.activations);
  t.match(res.stdout, new RegExp(`FIT = ${compact(expected).replace('.', '\\.')}\\n$`));
  t.match(res.stdout, /layer\s+weight bits\s+weight FIT\s+activation bits\s+activation FIT\s+FIT/);
  // per-layer contributions add up to the total
  const fc1 = direct.fit({ weights: { fc1: 4 } });
  t.ok(res.stdout.includes(compact(fc1)));
  // a score JSON is itself a configuration
  const again = runCli('score', model, '--sensitivity', sensJson, '--config', out);
  t.equal(again.status, 0, again.stderr);
  t.match(again.stdout, new RegExp(`FIT = ${compact(expected).replace('.', '\\.')}`));
  // so is the JSON of onnx-fit search, which holds it as "config"
  const wrapped = join(dir, 'search-c.json');
  writeFileSync(wrapped, JSON.stringify({ config, fit: expected, frontier: [] }));
  const fromSearch = runCli('score', model, '--sensitivity', sensJson, '--config', wrapped);
  t.equal(fromSearch.status, 0, fromSearch.stderr);
  t.match(fromSearch.stdout, new RegExp(`FIT = ${compact(expected).replace('.', '\\.')}`));
});

t.test('score with a bad file or configuration: exit 1 and a message naming the file and field', async (t) => {
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const good = write('good-c.json', JSON.stringify({ weights: { fc1: 4 } }));
  const sens = JSON.parse(readFileSync(sensJson, 'utf8'));
  const noTrace = structuredClone(sens);
  delete noTrace.layers[1].activation.fisherTrace;
  const v2 = { ...sens, version: 2 };
  const cases: [string, string, RegExp][] = [
    [write('notjson.json', '{ nope'), good, /The sensitivity JSON .*notjson\.json is not valid JSON/],
    [join(dir, 'absent.json'), good, /Cannot read the sensitivity JSON .*absent\.json/],
    [write('v2.json', JSON.stringify(v2)), good, /v2\.json: expected "version" to be 1 but received 2/],
    [write('notrace.json', JSON.stringify(noTrace)), good, /notrace\.json: expected layers\[1\]\.activation\.fisherTrace to be a number but received nothing/],
    [write('nolayers.json', JSON.stringify({ version: 1 })), good, /nolayers\.json: expected "layers" to be an array/],
    [sensJson, write('unknown.json', JSON.stringify({ weights: { fc9: 4 } })), /unknown\.json: The configuration's weights name layer 'fc9', which the report does not have \(layers: fc1, fc2\)/],
    [sensJson, write('bits.json', JSON.stringify({ activations: { fc1: 1 } })), /bits\.json: Expected an integer bit width in \[2, 16\] for the activation of layer 'fc1' but received 1/],
    [sensJson, write('arr.json', JSON.stringify({ weights: [4] })), /arr\.json: expected "weights" to be an object of layer name -> bits/],
    [sensJson, write('badcfg.json', 'weights: 4'), /The configuration .*badcfg\.json is not valid JSON/],
  ];
  const results = await Promise.all(cases.map(([s, c]) => runCliAsync('score', model, '--sensitivity', s, '--config', c)));
  for (const [i, [s, c, re]] of cases.entries()) {
    const res = results[i]!;
    t.equal(res.status, 1, `${s} ${c}`);
    t.match(res.stderr, re);
    t.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    t.match(res.stderr, /\[ERR_INVALID_(INPUT|OPTION)\]\n$/);
  }
  let res = runCli('score', model, '--config', good);
  t.equal(res.status, 1);
  t.match(res.stderr, /Expected --sensitivity FILE\.json/);
  res = runCli('score', MODELS.demoCnn, '--sensitivity', sensJson, '--config', good);
  t.equal(res.status, 1);
  t.match(res.stderr, /s\.json does not describe .*cnn\.onnx: the weights 'W1' \(layer 'fc1'\), 'W2' \(layer 'fc2'\) are not in the model/);
});

t.test('score reads the numbers writeJsonAtomic writes for non-finite values and null std errors', async (t) => {
  const sens = JSON.parse(readFileSync(sensJson, 'utf8'));
  sens.layers[0].weight.stdError = null;
  sens.layers[1].activation.max = 'Infinity';
  const file = join(dir, 'x.json');
  writeFileSync(file, JSON.stringify(sens));
  const report = await loadReport(file, model);
  t.equal(report.layers[0]!.weight.stdError, null);
  t.equal(report.layers[1]!.activation.max, Number.POSITIVE_INFINITY);
  const dup = join(dir, 'dup.json');
  writeFileSync(dup, JSON.stringify({ ...sens, layers: [sens.layers[0], sens.layers[0]] }));
  await t.rejects(loadReport(dup, model), InvalidInputError);
  t.equal(report.fit({ weights: { fc1: 8 } }) > 0, true);
  t.match(formatSensitivity(report.toJSON()), /fc1 .* ± n\/a/);
});

t.test('dataSpec and compact', async (t) => {
  t.same(dataSpec(['a.npy'], [], 'y.npy'), { input: 'a.npy', labels: 'y.npy' });
  t.same(dataSpec([], ['a=a.npy', 'b=b.npy']), { input: { a: 'a.npy', b: 'b.npy' } });
  t.same(dataSpec(['a=a.npy'], ['b=b.npy']), { input: { a: 'a.npy', b: 'b.npy' } });
  t.throws(() => dataSpec(['a.npy'], ['b=b.npy']), InvalidOptionError);
  t.throws(() => dataSpec([], ['a=x.npy', 'a=y.npy']), /Input 'a' is given twice/);
  t.equal(compact(0.000123456), '1.23e-4');
  t.equal(compact(456.7), '4.57e2');
  t.equal(compact(-7.1), '-7.10e0');
  t.equal(compact(0), '0');
  t.equal(compact(null), 'n/a');
  t.equal(compact(Number.POSITIVE_INFINITY), 'inf');
});

const demoDir = join(fileURLToPath(new URL('..', import.meta.url)), 'assets', 'demo');
const demoX = join(demoDir, 'calib_x.npy');
const demoY = join(demoDir, 'calib_y.npy');

t.test('the demo CNN with its calibration data', { skip: existsSync(demoX) ? false : 'assets/demo/calib_x.npy is missing' }, async (t) => {
  const [x, y] = [demoX, demoY];
  const out = join(dir, 'cnn.json');
  const res = runCli('sensitivity', MODELS.demoCnn, '--input', x, ...(existsSync(y) ? ['--labels', y] : []), '--max-samples', '128', '--json', out);
  t.equal(res.status, 0, res.stderr);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(j.version, 1);
  t.equal(j.samples <= 128 && j.samples > 0, true);
  t.same(j.layers.map((l: JsonLayer) => l.name), ['conv1', 'conv2', 'fc1', 'fc2']);
  t.same(j.layers.map((l: JsonLayer) => l.weight.count), [72, 1152, 50176, 640]);
  t.ok(j.layers.every((l: JsonLayer) => l.weight.fisherTrace > 0 && l.activation.fisherTrace > 0));
  const order = [...(j.layers as JsonLayer[])].sort((a, b) => b.weight.fisherTrace - a.weight.fisherTrace).map((l) => l.name);
  t.same(tableLayers(res.stdout), order);
  const cfg = join(dir, 'cnn-c.json');
  writeFileSync(cfg, JSON.stringify({ weights: { conv1: 8, conv2: 4, fc1: 4, fc2: 8 }, activations: { conv2: 8, fc1: 8 } }));
  const s = runCli('score', MODELS.demoCnn, '--sensitivity', out, '--config', cfg);
  t.equal(s.status, 0, s.stderr);
  t.match(s.stdout, /FIT = \d\.\d\de-?\d+\n$/);
});

// ---------------------------------------------------------------------------------------------
// progress bar

function fakeStream(isTTY: boolean, columns = 100): ProgressStream & { out: string } {
  const s = { out: '', isTTY, columns, write: (c: string) => ((s.out += c), true) };
  return s;
}

t.test('progress on a TTY: one line redrawn with \\r, throttled, ends with a newline', async (t) => {
  let now = 0;
  const stream = fakeStream(true, 120);
  const bar = new ProgressBar({ stream, label: 'sensitivity', now: () => now });
  bar.update(sensitivityState({ samples: 32, total: 128, batches: 1, maxRelStdError: Infinity }));
  now = 50;
  bar.update(sensitivityState({ samples: 64, total: 128, batches: 2, maxRelStdError: 0.2 })); // throttled
  now = 200;
  bar.update(sensitivityState({ samples: 96, total: 128, batches: 3, maxRelStdError: 0.031 }));
  now = 210;
  bar.update(sensitivityState({ samples: 128, total: 128, batches: 4, maxRelStdError: 0.021 }));
  bar.finish('done');
  bar.finish('again');
  const frames = stream.out.split('\r').slice(1);
  t.equal(stream.out.startsWith('\r'), true);
  t.equal(stream.out.endsWith('\n'), true);
  t.equal(stream.out.split('\n').length, 2, 'a single line');
  t.equal(frames.length, 3, 'the 50 ms update was not drawn; finish draws the last state');
  t.match(frames[0]!, /^sensitivity \[#{5}-{15}\]  32\/128 samples  1 batch, max rel\. s\.e\. n\/a \(target 5%\)  0s/);
  t.match(frames[1]!, /^sensitivity \[#{15}-{5}\]  96\/128 samples  3 batches, max rel\. s\.e\. 3\.1% \(target 5%\)/);
  t.match(frames[2]!, /^sensitivity \[#{20}\]  128\/128 samples  4 batches, max rel\. s\.e\. 2\.1% \(target 5%\)  0s  done/);
  t.ok(frames.every((f) => f.replace('\n', '').length <= 119), 'fits the terminal width');
});

t.test('progress on a TTY pads over a longer previous line and truncates to the width', async (t) => {
  let now = 0;
  const stream = fakeStream(true, 40);
  const bar = new ProgressBar({ stream, label: 'x', now: () => now, redrawMs: 0 });
  bar.update({ done: 1, unit: 'samples', detail: 'a long detail that does not fit in forty columns' });
  const first = stream.out.split('\r')[1]!;
  t.equal(first.length, 39);
  t.ok(first.endsWith('…'));
  now = 1000;
  bar.update({ done: 2, unit: 'samples' });
  const second = stream.out.split('\r')[2]!;
  t.equal(second.length, 39, 'padded with spaces over the previous frame');
  t.match(second, /^x  2 samples  1s\s+$/);
  bar.finish();
  t.ok(stream.out.endsWith('\n'));
});

t.test('progress on a pipe: plain lines at most every 2 s, nothing for short runs, quiet draws nothing', async (t) => {
  let now = 0;
  const stream = fakeStream(false);
  const bar = new ProgressBar({ stream, label: 'sensitivity', now: () => now });
  for (let i = 1; i <= 10; i++) {
    now = i * 700;
    bar.update(sensitivityState({ samples: i * 10, total: 100, batches: i, maxRelStdError: 0.5 / i }, 0));
  }
  bar.finish('done');
  const lines = stream.out.trimEnd().split('\n');
  t.notMatch(stream.out, /\r/);
  t.same(
    lines.map((l) => l.split(',')[0]),
    ['sensitivity: 30/100 samples', 'sensitivity: 60/100 samples', 'sensitivity: 90/100 samples', 'sensitivity: 100/100 samples'],
  );
  t.match(lines[0]!, /^sensitivity: 30\/100 samples, 3 batches, max rel\. s\.e\. 17%, 2s$/, 'tolerance 0: no target');
  t.match(lines[3]!, /, done$/);
  t.ok(stream.out.endsWith('\n'));

  const short = fakeStream(false);
  const b2 = new ProgressBar({ stream: short, label: 's', now: () => now });
  b2.update({ done: 1, total: 2, unit: 'samples' });
  b2.finish('done');
  t.equal(short.out, '', 'a run shorter than 2 s prints nothing');

  const quiet = fakeStream(true);
  const b3 = new ProgressBar({ stream: quiet, label: 's', quiet: true });
  b3.update({ done: 1, total: 2, unit: 'samples' });
  b3.finish();
  t.equal(quiet.out, '');
});
