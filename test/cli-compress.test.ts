/** onnx-fit compress end to end on the demo CNN: tables, --out, --json, --targets/--curves, report, errors. */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sensitivity } from '../src/fisher/sensitivity.js';
import { readModel } from '../src/onnx/read.js';
import { tensorProtoToData } from '../src/onnx/proto.js';
import { MODELS } from './helpers/models.js';
import { runCli } from './helpers/cli.js';

const demo = fileURLToPath(new URL('../assets/demo/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-cli-compress-'));
const data = ['--input', join(demo, 'calib_x.npy'), '--labels', join(demo, 'calib_y.npy'), '--max-samples', '96', '--workers', '1', '--quiet'];

t.test('one target: plan table, final layers, measurements, --out and --json', async (t) => {
  const out = join(dir, 'small.onnx');
  const json = join(dir, 'plan.json');
  const r = runCli('compress', MODELS.demoCnn, ...data, '--target', '0.1', '--out', out, '--format', 'qdq', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /FITCompress to compression 0\.1 \(A\*, \d+ steps/);
  t.match(r.stdout, /step\s+move\s+cost\s+compression\s+FIT/);
  t.match(r.stdout, /layer\s+op\s+weights\s+bits\s+pruned/);
  t.match(r.stdout, /Measured with onnxruntime-node on 96 samples \(accuracy against the labels\)/);
  for (const row of ['float32', 'FITCompress', 'uniform quantization \\+ magnitude pruning \\(\\d-bit', 'FIT mixed precision \\(', 'magnitude pruning \\(float32'])
    t.match(r.stdout, new RegExp(`\\n${row}`), row);
  const j = JSON.parse(readFileSync(json, 'utf8'));
  t.ok(j.compression <= 0.1);
  t.equal(j.metric, 'accuracy');
  t.equal(j.measured.samples, 96);
  t.equal(j.baselines.length, 3);
  t.ok(j.baselines.every((b: { compression: number }) => b.compression <= 0.1));
  t.ok(j.plan.length > 0 && j.final.compression === j.compression);
  // the written model: the planned zeros per layer
  const m = readModel(out);
  const inits = new Map(m.proto.graph!.initializer.map((x) => [x.name, x]));
  for (const [layer, sparsity] of Object.entries(j.final.sparsity as Record<string, number>)) {
    const weight = `${layer}.weight`;
    const tp = inits.get(`${weight}_quantized`) ?? inits.get(weight)!;
    const vals = Array.from(tensorProtoToData(tp).data as ArrayLike<number | bigint>, Number);
    const zeros = vals.filter((v) => v === 0).length;
    t.ok(zeros >= Math.round(sparsity * vals.length), `${layer}: ${zeros} zeros for sparsity ${sparsity}`);
  }
});

t.test('--targets: curve table, one file per target, curves JSON drawn by report', async (t) => {
  const curves = join(dir, 'curves.json');
  const out = join(dir, 'multi.onnx');
  const json = join(dir, 'multi.json');
  const r = runCli('compress', MODELS.demoCnn, ...data, '--targets', '0.25,0.05', '--algorithm', 'greedy', '--curves', curves, '--out', out, '--format', 'fake-quant', '--json', json);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /FITCompress at 2 targets \(greedy\)/);
  t.match(r.stdout, /target\s+FITCompress\s+uniform quantization \+ magnitude pruning\s+FIT mixed precision\s+magnitude pruning/);
  t.match(r.stdout, /\n0\.05\s+\d+\.\d+% @ 0\.0\d+\s+\d+\.\d+% @ 0\.0\d+\s+unreachable\s+\d+\.\d+% @ 0\.0500/);
  t.ok(existsSync(join(dir, 'multi-t0.25.onnx')) && existsSync(join(dir, 'multi-t0.05.onnx')), 'one model per target');
  const c = JSON.parse(readFileSync(curves, 'utf8'));
  t.equal(c.metric, 'accuracy');
  t.same(c.curves.map((x: { name: string }) => x.name), ['FITCompress', 'uniform quantization + magnitude pruning', 'FIT mixed precision', 'magnitude pruning']);
  t.equal(c.curves[0].points.length, 2);
  const sens = join(dir, 's.json');
  const rep = await sensitivity(MODELS.demoCnn, { data: { input: join(demo, 'calib_x.npy'), labels: join(demo, 'calib_y.npy') }, maxSamples: 96, workers: 1 });
  writeFileSync(sens, JSON.stringify(rep.toJSON()));
  const html = join(dir, 'r.html');
  const rr = runCli('report', '--sensitivity', sens, '--curves', curves, '--out', html);
  t.equal(rr.status, 0, rr.stderr);
  const page = readFileSync(html, 'utf8');
  t.match(page, /<svg id="curves-chart"/);
  t.match(page, /FITCompress/);
  // the --json document of --targets draws the same curves
  const j = JSON.parse(readFileSync(json, 'utf8'));
  t.same(j.curves, c.curves);
  t.equal(j.results.length, 2);
  const rj = runCli('report', '--sensitivity', sens, '--curves', json, '--out', join(dir, 'r2.html'));
  t.equal(rj.status, 0, rj.stderr);
});

t.test('errors: one line, exit code 1', async (t) => {
  const unreachable = runCli('compress', MODELS.demoCnn, ...data, '--target', '0.00001');
  t.equal(unreachable.status, 1);
  t.match(unreachable.stderr, /^onnx-fit: Expected a target compression of at least [\d.e-]+ .* for option target but received 0\.00001; .*\[ERR_INVALID_OPTION\]\n$/);
  t.equal(unreachable.stderr.trim().split('\n').length, 1);
  const both = runCli('compress', MODELS.demoCnn, ...data, '--target', '0.1', '--targets', '0.1,0.05');
  t.equal(both.status, 1);
  t.match(both.stderr, /Expected exactly one of --target T or --targets T1,T2,\.\.\. but received both/);
  const bad = runCli('compress', MODELS.demoCnn, ...data, '--target', '2');
  t.equal(bad.status, 1);
  t.match(bad.stderr, /Expected a compression in \(0, 1\] \(e\.g\. 0\.1\) for option --target but received '2'/);
  const badList = runCli('compress', MODELS.demoCnn, ...data, '--targets', '0.1,x');
  t.equal(badList.status, 1);
  t.match(badList.stderr, /for option --targets but received '0\.1,x'/);
});
