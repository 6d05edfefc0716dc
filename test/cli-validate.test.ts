/** onnx-fit validate, layers and report, end to end on the demo CNN. */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { MODELS } from './helpers/models.js';
import { runCli } from './helpers/cli.js';

const demo = fileURLToPath(new URL('../assets/demo/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-validate-'));
const data = ['--input', join(demo, 'calib_x.npy'), '--labels', join(demo, 'calib_y.npy'), '--max-samples', '128', '--workers', '1', '--quiet'];
const sens = join(dir, 's.json');

t.before(async () => {
  const r = await sensitivity(MODELS.demoCnn, { data: { input: join(demo, 'calib_x.npy'), labels: join(demo, 'calib_y.npy') }, maxSamples: 128, tolerance: 0, workers: 1 });
  writeFileSync(sens, JSON.stringify(r.toJSON()));
});

t.test('validate: table, JSON and the report drawn from it', async (t) => {
  const json = join(dir, 'v.json');
  const r = runCli('validate', MODELS.demoCnn, ...data, '--sensitivity', sens, '--configs', '8', '--seed', '2', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /8 random configurations on 128 samples; metric: accuracy/);
  t.match(r.stdout, /FIT vs damage: Spearman -?\d\.\d{3}, Kendall -?\d\.\d{3}/);
  const v = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(v.configs.length, 8);
  t.ok(v.configs.every((c: { fit: number; value: number }) => c.fit > 0 && c.value > 0 && c.value <= 1));
  t.ok(v.spearman > 0, `FIT ranks the damage (Spearman ${v.spearman})`);
  const html = join(dir, 'r.html');
  const rr = runCli('report', '--sensitivity', sens, '--validation', json, '--out', html);
  t.equal(rr.status, 0, rr.stderr);
  const page = readFileSync(html, 'utf8');
  t.match(page, /<svg id="validation-chart"/);
  t.equal(page.match(/class="point"/g)?.length, 8, 'one point per configuration');
});

t.test('layers: one layer at a time beside its FIT', async (t) => {
  const json = join(dir, 'l.json');
  const r = runCli('layers', MODELS.demoCnn, ...data, '--sensitivity', sens, '--bits', '3', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /quantized alone to 3 bits, on 128 samples; damage = KL/);
  const l = JSON.parse(readFileSync(json, 'utf8'));
  t.same(l.layers.map((x: { name: string }) => x.name).sort(), ['conv1', 'conv2', 'fc1', 'fc2']);
  t.ok(l.layers.every((x: { damage: number }) => x.damage > 0));
});

t.test('errors: a report folded differently, bad options', async (t) => {
  let r = runCli('validate', MODELS.demoCnn, ...data, '--sensitivity', sens, '--no-fold-bn');
  t.equal(r.status, 1);
  t.match(r.stderr, /computed with foldBatchNorm true but validate runs with false; drop --no-fold-bn/);
  r = runCli('layers', MODELS.demoCnn, ...data, '--sensitivity', sens, '--target', 'bias');
  t.equal(r.status, 1);
  t.match(r.stderr, /Expected 'weights', 'activations' or 'both' for option --target but received 'bias'/);
  r = runCli('validate', MODELS.demoCnn, ...data, '--sensitivity', sens, '--weight-bits', '3,x');
  t.equal(r.status, 1);
  t.match(r.stderr, /--weight-bits/);
  r = runCli('validate', MODELS.demoCnn, '--input', join(dir, 'missing.npy'), '--sensitivity', sens, '--quiet');
  t.equal(r.status, 1);
  t.match(r.stderr, /missing\.npy/);
});
