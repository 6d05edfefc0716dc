/**
 * The ONNX backend node tests (Debian's libonnx-testdata) for every op the engine supports.
 * A test is in scope when every op of its model is supported and its outputs are float; each such
 * test must pass (ONNX's default tolerance, rtol 1e-3 / atol 1e-7) or be listed in EXCLUDED with
 * the reason. Per-op pass counts go to the test log (and to $ONNX_FIT_BACKEND_REPORT as JSON).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listNodeTests, NODE_TEST_DIR, runNodeTest, supportedOps, type Outcome } from './helpers/backend.js';

/** Tests in scope that the engine rejects on purpose, with the reason (a clean error is asserted). */
const EXCLUDED: Record<string, string> = {
  test_batchnorm_epsilon_training_mode: 'training-mode BatchNormalization (batch statistics); the engine runs the inference form',
  test_batchnorm_example_training_mode: 'training-mode BatchNormalization (batch statistics); the engine runs the inference form',
  test_resize_downsample_scales_linear_align_corners:
    "this libonnx-testdata's expected output is wrong ([1, 3.14]); onnxruntime-node and the engine both give [1, 4] (ONNX fixed the reference later)",
  test_cast_BFLOAT16_to_FLOAT: 'bfloat16 model input: the engine takes float32/float64 inputs',
};
for (const t of [
  'downsample_scales_cubic', 'downsample_scales_cubic_A_n0p5_exclude_outside', 'downsample_scales_cubic_align_corners',
  'downsample_sizes_cubic', 'upsample_scales_cubic', 'upsample_scales_cubic_A_n0p5_exclude_outside',
  'upsample_scales_cubic_align_corners', 'upsample_scales_cubic_asymmetric', 'upsample_sizes_cubic',
])
  EXCLUDED[`test_resize_${t}`] = "Resize mode 'cubic' is not implemented (PP-OCR and the usual CNNs use nearest/linear)";

const tests = listNodeTests();
t.ok(tests.length > 500, `libonnx-testdata is installed at ${NODE_TEST_DIR} (${tests.length} node tests)`);

const supported = supportedOps();
const outcomes = new Map<string, Outcome>();
for (const name of tests) {
  const outcome = runNodeTest(join(NODE_TEST_DIR, name), supported);
  outcomes.set(name, outcome);
}

t.test('every in-scope node test passes or is a documented exclusion', async (t) => {
  for (const [name, o] of outcomes) {
    if (o.kind === 'skip') continue;
    if (EXCLUDED[name]) {
      t.not(o.kind, 'pass', `${name} is excluded (${EXCLUDED[name]}) and still rejected; drop it from EXCLUDED if it passes`);
      if (o.kind === 'error') t.match(o.code, /^ERR_/, `${name} fails cleanly with ${o.code}`);
      continue;
    }
    t.equal(o.kind, 'pass', `${name} [${o.ops.join(', ')}]`, o.kind === 'pass' ? {} : { detail: 'message' in o ? o.message : '' });
  }
});

// Per-op summary: how many node tests that use the op are in scope and pass.
const perOp = new Map<string, { pass: number; total: number }>();
const skipReasons = new Map<string, number>();
for (const [, o] of outcomes) {
  if (o.kind === 'skip') {
    const r = o.reason.startsWith('unsupported op') ? 'unsupported op' : o.reason;
    skipReasons.set(r, (skipReasons.get(r) ?? 0) + 1);
    continue;
  }
  for (const op of o.ops) {
    const e = perOp.get(op) ?? { pass: 0, total: 0 };
    e.total++;
    if (o.kind === 'pass') e.pass++;
    perOp.set(op, e);
  }
}
const lines = [...perOp.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([op, e]) => `${op} ${e.pass}/${e.total}`);
t.comment(`node tests per op (pass/in scope): ${lines.join(', ')}`);
t.comment(`out of scope: ${[...skipReasons.entries()].map(([r, n]) => `${r}: ${n}`).join(', ')}`);
t.ok(supported.size > 40, 'the engine registers the ops of the forward issue');
for (const op of supported) {
  if (!perOp.has(op)) t.comment(`no in-scope node test uses ${op}`);
}
if (process.env.ONNX_FIT_BACKEND_REPORT) {
  const report = {
    perOp: Object.fromEntries(perOp),
    outOfScope: Object.fromEntries(skipReasons),
    failures: [...outcomes].filter(([, o]) => o.kind === 'fail' || o.kind === 'error').map(([n, o]) => ({ test: n, ...o })),
  };
  writeFileSync(process.env.ONNX_FIT_BACKEND_REPORT, JSON.stringify(report, null, 2));
}
