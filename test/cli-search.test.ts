/** onnx-fit search, end to end on the demo CNN. */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { SensitivityReport } from '../src/fisher/report.js';
import { searchMixedPrecisionSync } from '../src/search/mixed-precision.js';
import { layerMacs } from '../src/search/macs.js';
import { parseDrop, writeSearchJson } from '../src/cli/search.js';
import { bitList } from '../src/cli/options.js';
import { MODELS } from './helpers/models.js';
import { runCliAsync } from './helpers/cli.js';

const demoDir = fileURLToPath(new URL('../assets/demo/', import.meta.url));
const calibX = join(demoDir, 'calib_x.npy');
const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-search-'));

interface Out {
  config: { weights: Record<string, number>; activations: Record<string, number> };
  fit: number;
  bytes: number;
  averageBits: number;
  bops: number | null;
  budget: { kind: string; value: number; minimum: number };
  layers: string[];
  frontier: { fit: number; bytes: number; averageBits: number; bops: number | null; weightBits: number[]; activationBits: number[] }[];
}

const sensJson = join(dir, 'sens.json');
let report: SensitivityReport;

t.before(async () => {
  const r = await sensitivity(MODELS.demoCnn, {
    data: { input: join(demoDir, 'calib_x.npy'), labels: join(demoDir, 'calib_y.npy') },
    maxSamples: 64,
    batchSize: 32,
    tolerance: 0,
    workers: 1,
  });
  writeFileSync(sensJson, JSON.stringify(r.toJSON()));
  report = SensitivityReport.fromJSON(JSON.parse(readFileSync(sensJson, 'utf8')));
});

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

t.test('--avg-bits: table, JSON, same answer as the API', async (t) => {
  const out = join(dir, 'avg.json');
  const res = await runCliAsync('search', MODELS.demoCnn, '--sensitivity', sensJson, '--avg-bits', '3.5', '--json', out);
  t.equal(res.status, 0, res.stderr);
  const j = JSON.parse(readFileSync(out, 'utf8')) as Out;
  const api = searchMixedPrecisionSync(report, { budget: { averageBits: 3.5 } });
  t.same(j.config, api.config);
  t.same(j.layers, ['conv1', 'conv2', 'fc1', 'fc2']);
  t.ok(rel(j.fit, report.fit(j.config)) < 1e-12, 'fit is report.fit(config)');
  t.ok(j.averageBits <= 3.5 && j.averageBits > 3, `averageBits ${j.averageBits}`);
  const counts = report.layers.map((l) => l.weight.count);
  const bits = j.layers.reduce((s, name, i) => s + counts[i]! * j.config.weights[name]!, 0);
  t.equal(j.bytes, bits / 8);
  t.ok(rel(j.averageBits, bits / counts.reduce((a, b) => a + b, 0)) < 1e-12);
  t.equal(j.bops, null, 'no BOPs without --bops');
  t.same(j.budget, { kind: 'averageBits', value: 3.5, minimum: 2 });
  t.ok(Object.values(j.config.activations).every((b) => b === 8));
  // frontier: cheapest first, FIT falling, from all-2-bit to all-8-bit
  t.ok(j.frontier.length >= 10);
  t.equal(j.frontier[0]!.averageBits, 2);
  t.equal(j.frontier.at(-1)!.averageBits, 8);
  for (let i = 1; i < j.frontier.length; i++) t.ok(j.frontier[i]!.bytes > j.frontier[i - 1]!.bytes && j.frontier[i]!.fit < j.frontier[i - 1]!.fit);
  t.ok(j.frontier.some((p) => p.bytes === j.bytes && p.fit === j.fit), 'the chosen point is on the frontier');
  // table rows: layer, op, weights, trace, bits, FIT
  for (const l of api.layers) t.match(res.stdout, new RegExp(`^${l.name}\\s+${l.op}\\s+${l.weightCount}\\s+\\S+\\s+${l.weightBits}\\s+\\S+$`, 'm'));
  t.match(res.stdout, /least-FIT bit widths under a budget of 3\.5 average bits \(exact\)/);
  t.match(res.stdout, new RegExp(`average bits\\s+${j.averageBits.toFixed(3)}`));
  t.notOk(readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary file left');
});

t.test('--bytes and --bops with activation choices', async (t) => {
  const outB = join(dir, 'bytes.json');
  const outO = join(dir, 'bops.json');
  const [b, o] = await Promise.all([
    runCliAsync('search', MODELS.demoCnn, '--sensitivity', sensJson, '--bytes', '20000', '--weight-bits', '2,4,8', '--json', outB),
    runCliAsync('search', MODELS.demoCnn, '--sensitivity', sensJson, '--bops', '4000000', '--activation-bits', '4,6,8', '--json', outO),
  ]);
  t.equal(b.status, 0, b.stderr);
  t.equal(o.status, 0, o.stderr);
  const jb = JSON.parse(readFileSync(outB, 'utf8')) as Out;
  t.ok(jb.bytes <= 20000);
  t.ok(Object.values(jb.config.weights).every((w) => [2, 4, 8].includes(w)));
  t.same(jb.config, searchMixedPrecisionSync(report, { budget: { bytes: 20000 }, weightBits: [2, 4, 8] }).config);

  // the demo CNN: conv1 8x3x3 on 1x28x28 (same padding), pool, conv2 16x8x3x3 on 14x14, fc1 784->64, fc2 64->10
  const macs = layerMacs(MODELS.demoCnn);
  t.same(macs, { conv1: 8 * 28 * 28 * 9, conv2: 16 * 14 * 14 * 72, fc1: 64 * 784, fc2: 10 * 64 });
  const jo = JSON.parse(readFileSync(outO, 'utf8')) as Out;
  const bops = jo.layers.reduce((s, n) => s + macs[n]! * jo.config.weights[n]! * jo.config.activations[n]!, 0);
  t.equal(jo.bops, bops);
  t.ok(bops <= 4_000_000);
  t.same(jo.config, searchMixedPrecisionSync(report, { budget: { bops: 4_000_000 }, activationBits: [4, 6, 8], macs }).config);
  t.ok(new Set(Object.values(jo.config.activations)).size > 1 || Object.values(jo.config.activations)[0] !== 8, 'the activation width is searched too');
  t.match(o.stdout, /activation bits/);
  t.match(o.stdout, /BOPs\s+[\d,]+ per sample/);
});

t.test('errors exit 1 with one line', async (t) => {
  const other = join(dir, 'other.json');
  const json = JSON.parse(readFileSync(sensJson, 'utf8'));
  json.layers[0].weight.name = 'not_in_model';
  writeFileSync(other, JSON.stringify(json));
  const v2 = join(dir, 'v2.json');
  writeFileSync(v2, JSON.stringify({ ...json, version: 2 }));
  const cases: [string[], RegExp][] = [
    [['--sensitivity', sensJson], /Expected exactly one budget, --avg-bits B, --bytes N or --bops N, but received none/],
    [['--sensitivity', sensJson, '--avg-bits', '4', '--bytes', '100'], /but received --avg-bits and --bytes/],
    [['--avg-bits', '4'], /Expected --sensitivity FILE\.json/],
    [['--sensitivity', sensJson, '--avg-bits', '1.5'], /Budget averageBits = 1\.5 is below the minimum achievable 2 bits per weight.*\[ERR_INVALID_OPTION\]/],
    [['--sensitivity', sensJson, '--bops', '1000'], /Budget bops = 1000 is below the minimum achievable 5328896 bit-operations/],
    [['--sensitivity', sensJson, '--avg-bits', 'four'], /Expected a positive number for option --avg-bits but received 'four'/],
    [['--sensitivity', sensJson, '--avg-bits', '4', '--weight-bits', '2,x'], /Expected a comma-separated list of integer bit widths in \[2, 16\] for option --weight-bits but received '2,x'/],
    [['--sensitivity', other, '--avg-bits', '4'], /does not describe .*'not_in_model' \(layer 'conv1'\)/],
    [['--sensitivity', v2, '--avg-bits', '4'], /expected "version" to be 1 but received 2.*\[ERR_INVALID_INPUT\]/],
    [['--sensitivity', join(dir, 'missing.json'), '--avg-bits', '4'], /Cannot read the sensitivity JSON/],
    [['--sensitivity', sensJson, '--max-drop', '%', '--input', calibX], /Expected a drop like 1% or 0\.01 \(in \[0, 1\)\) for option --max-drop but received '%'.*\[ERR_INVALID_OPTION\]/],
    // --max-drop picks the size itself: no budget beside it
    [['--sensitivity', sensJson, '--max-drop', '1%', '--avg-bits', '4', '--input', calibX], /^onnx-fit: --max-drop is instead of a budget .*; drop --avg-bits \[ERR_INVALID_OPTION\]\n$/],
    [['--sensitivity', sensJson, '--max-drop', '1%', '--bytes', '20000', '--input', calibX], /^onnx-fit: --max-drop is instead of a budget .*; drop --bytes \[ERR_INVALID_OPTION\]\n$/],
    [['--sensitivity', sensJson, '--max-drop', '1%', '--bops', '4000000', '--input', calibX], /^onnx-fit: --max-drop orders the frontier by weight bytes; drop --bops \[ERR_INVALID_OPTION\]\n$/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCliAsync('search', MODELS.demoCnn, ...args)));
  results.forEach((r, i) => {
    t.equal(r.status, 1, cases[i]![0].join(' '));
    t.match(r.stderr, cases[i]![1]);
    t.equal(r.stderr.trim().split('\n').length, 1);
  });
});

t.test('bit list parser', async (t) => {
  t.same(bitList('--weight-bits')('2, 4,8'), [2, 4, 8]);
  t.throws(() => bitList('--weight-bits')('1,4'), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => bitList('--weight-bits')(''), { code: 'ERR_INVALID_OPTION' });
});

t.test('drop parser', async (t) => {
  t.equal(parseDrop('1%'), 0.01);
  t.equal(parseDrop(' 2.5 % '), 0.025);
  t.equal(parseDrop('0.01'), 0.01);
  t.equal(parseDrop('0'), 0);
  for (const v of ['', ' ', '%', ' % ', 'x%', '100%', '1', '-1%'])
    t.throws(() => parseDrop(v), { code: 'ERR_INVALID_OPTION', message: `for option --max-drop but received '${v}'` }, `'${v}'`);
});

t.test('the JSON writer keeps names intact and frontier points one per line', async (t) => {
  const path = join(dir, 'w.json');
  const value = { config: { weights: { 'a[1, 2]\n  "frontier": []': 4 } }, fit: 1, frontier: [{ fit: 2, weightBits: [2, 3] }, { fit: 1, weightBits: [4, 4] }] };
  writeSearchJson(path, value);
  const text = readFileSync(path, 'utf8');
  t.same(JSON.parse(text), value);
  t.match(text, /\n {4}\{"fit":2,"weightBits":\[2,3\]\},\n {4}\{"fit":1,"weightBits":\[4,4\]\}\n {2}\]\n\}\n$/);
  writeSearchJson(path, { fit: 1, frontier: [] });
  t.same(JSON.parse(readFileSync(path, 'utf8')), { fit: 1, frontier: [] });
});

t.test('--max-drop: bisection with real evaluations, every one reported', async (t) => {
  const json = join(dir, 'bounded.json');
  const r = await runCliAsync('search', join(demoDir, 'cnn.onnx'), '--sensitivity', sensJson, '--max-drop', '1%', '--input', join(demoDir, 'calib_x.npy'),
    '--labels', join(demoDir, 'calib_y.npy'), '--workers', '1', '--quiet', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /accuracy drop is at most 1\.00%/);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(out.maxDrop, 0.01);
  t.ok(out.evaluations.length >= 2 && out.evaluations.length <= Math.ceil(Math.log2(out.frontier.length)) + 2);
  const chosen = out.evaluations.find((e: { point: { bytes: number } }) => e.point.bytes === out.bytes);
  t.ok(chosen.withinBound && chosen.damage <= 0.01, `chosen drop ${chosen.damage}`);
  t.ok(out.averageBits < 8, 'smaller than the 8-bit model');
  t.ok(out.evaluations.every((e: { withinBound: boolean; damage: number }) => e.withinBound === e.damage <= 0.01));
  const bad = await runCliAsync('search', join(demoDir, 'cnn.onnx'), '--sensitivity', sensJson, '--max-drop', '150%', '--input', join(demoDir, 'calib_x.npy'));
  t.equal(bad.status, 1);
  t.match(bad.stderr, /--max-drop/);
});
