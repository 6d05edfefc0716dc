/** The kernel self-check (native/kernels/test/kernels_check.cpp): every SGEMM path and im2col/col2im against naive references. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const exe = join(mkdtempSync(join(tmpdir(), 'onnx-fit-kernels-')), 'kcheck');

t.test('kernels_check builds for plain x86-64 and passes', async (t) => {
  const cxx = process.env.CXX ?? 'g++';
  const sources = ['gemm.cpp', 'gemm_avx2.cpp', 'gemm_avx512.cpp', 'im2col.cpp'].map((f) => join(root, 'native/kernels/cpu', f));
  const build = spawnSync(cxx, ['-O2', '-std=c++17', '-march=x86-64', '-I', join(root, 'native'), ...sources, join(root, 'native/kernels/test/kernels_check.cpp'), '-o', exe, '-lpthread'], { encoding: 'utf8' });
  t.equal(build.status, 0, `compiles (${build.stderr.slice(0, 500)})`);
  const run = spawnSync(exe, ['--quick'], { encoding: 'utf8' });
  t.equal(run.status, 0, 'every check passes');
  const m = /(\d+) passed, (\d+) failed/.exec(run.stdout);
  t.comment(run.stdout.split('\n').filter((l) => /pass|fail|GFLOP/i.test(l)).slice(-6).join('\n'));
  t.ok(m, 'prints a pass/fail summary');
  t.equal(m?.[2], '0', 'no kernel check failed');
  t.ok(Number(m?.[1]) > 500, `${m?.[1]} kernel checks ran`);
});
