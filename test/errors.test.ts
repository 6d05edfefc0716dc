/** Bad input never crashes: each case is a documented error class with a code and a useful message. */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { loadEngineModel } from '../src/engine/load.js';
import { readModel } from '../src/onnx/read.js';
import { makeModel } from '../src/onnx/build.js';
import {
  AbortError,
  InvalidInputError,
  ModelLoadError,
  UnsupportedOpError,
} from '../src/errors.js';
import { inspect } from '../src/inspect.js';

const demo = fileURLToPath(new URL('../assets/demo/cnn.onnx', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-errors-'));

t.test('truncated model file', async (t) => {
  const bytes = readFileSync(demo);
  const path = join(dir, 'truncated.onnx');
  writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const err = t.throws(() => loadEngineModel(path)) as unknown;
  t.type(err, ModelLoadError);
  t.equal((err as ModelLoadError).code, 'ERR_MODEL_LOAD');
  t.match((err as Error).message, /truncated\.onnx/);
});

t.test('a file that is not ONNX', async (t) => {
  const path = join(dir, 'notes.onnx');
  writeFileSync(path, 'this is a text file, not a model\n'.repeat(20));
  const err = t.throws(() => readModel(path)) as unknown;
  t.type(err, ModelLoadError);
  t.match((err as Error).message, /notes\.onnx/);
});

t.test('missing file', async (t) => {
  const err = t.throws(() => readModel(join(dir, 'nope.onnx'))) as unknown;
  t.type(err, ModelLoadError);
  t.match((err as Error).message, /nope\.onnx/);
});

function unsupportedModel(): Uint8Array {
  return makeModel({
    opset: 13,
    inputs: [{ name: 'x', elemType: 'float32', dims: [1, 4] }],
    outputs: [{ name: 'y' }],
    nodes: [
      { op: 'Relu', name: 'r', inputs: ['x'], outputs: ['a'] },
      { op: 'Hardmax', name: 'h1', inputs: ['a'], outputs: ['b'] },
      { op: 'Hardmax', name: 'h2', inputs: ['b'], outputs: ['c'] },
      { op: 'Acosh', name: 'ac', inputs: ['c'], outputs: ['y'] },
    ],
  });
}

t.test('unsupported ops are all named in one error', async (t) => {
  const err = t.throws(() => loadEngineModel(unsupportedModel(), { name: 'odd.onnx' })) as unknown;
  t.type(err, UnsupportedOpError);
  const e = err as UnsupportedOpError;
  t.equal(e.code, 'ERR_UNSUPPORTED_OP');
  const byOp = Object.fromEntries(e.ops.map((o) => [o.opType, o]));
  t.same(Object.keys(byOp).sort(), ['Acosh', 'Hardmax']);
  t.equal(byOp.Hardmax!.count, 2);
  t.same(byOp.Hardmax!.nodes.sort(), ['h1', 'h2']);
  t.match(e.message, /Hardmax x2/);
  t.match(e.message, /Acosh x1/);
  const report = await inspect(unsupportedModel(), { name: 'odd.onnx' });
  t.equal(report.unsupported.length, 2, 'inspect reports them instead of failing');
});

t.test('inputs of the wrong shape, type or name', async (t) => {
  const { engine } = loadEngineModel(demo, { batch: 2 });
  const good = new Float32Array(2 * 28 * 28);
  const cases: [string, unknown, RegExp][] = [
    ['wrong dims', { input: { dims: [2, 1, 28, 27], data: good } }, /Expected dims \[2, 1, 28, 28\] for input 'input'/],
    ['wrong type', { input: { dims: [2, 1, 28, 28], data: new Int32Array(2 * 28 * 28) } }, /Float32Array or Float64Array for input 'input' but received Int32Array/],
    ['wrong length', { input: { dims: [2, 1, 28, 28], data: new Float32Array(5) } }, /5 elements/],
    ['wrong name', { image: { dims: [2, 1, 28, 28], data: good } }, /Unknown input\(s\) 'image'/],
    ['missing', {}, /Missing input 'input'/],
  ];
  for (const [label, inputs, re] of cases) {
    const err = t.throws(() => engine.run(inputs as never), label) as Error;
    t.type(err, InvalidInputError, label);
    t.match(err.message, re, label);
  }
  await t.rejects(engine.runAsync({ input: { dims: [1, 1, 28, 28], data: good } }), InvalidInputError);
  engine.dispose();
});

t.test('a dynamic dim without a shape asks for one', async (t) => {
  const bytes = makeModel({
    opset: 13,
    inputs: [{ name: 'x', elemType: 'float32', dims: ['N', 3, 'H', 'W'] }],
    outputs: [{ name: 'y' }],
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
  });
  const err = t.throws(() => loadEngineModel(bytes)) as Error;
  t.type(err, InvalidInputError);
  t.match(err.message, /--shape x=1x3xNxN/);
});

t.test('an aborted async run rejects with AbortError', async (t) => {
  const { engine } = loadEngineModel(demo, { batch: 1 });
  const ac = new AbortController();
  ac.abort();
  await t.rejects(engine.runAsync({ input: { dims: [1, 1, 28, 28], data: new Float32Array(784) } }, { signal: ac.signal }), AbortError);
  engine.dispose();
});

t.test('the CLI reports bad input as one line with a code and exit status 1', async (t) => {
  const path = join(dir, 'garbage.onnx');
  writeFileSync(path, new Uint8Array([1, 2, 3, 4, 5, 250, 251, 252]));
  const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'inspect', path], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /garbage\.onnx.*\[ERR_MODEL_LOAD\]/);
  t.notMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
});
