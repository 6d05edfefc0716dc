/** Calibration data sources: batching, conversion, labels, iterables, sharding and every error. */
import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError, InvalidOptionError } from '../src/errors.js';
import { writeNpy, type NpyArray } from '../src/data/npy.js';
import { prepareModel } from '../src/engine/load.js';
import { EngineModel } from '../src/engine/model.js';
import { MODELS } from './helpers/models.js';
import {
  openData, planBatches, shard, shardRanges, type Batch, type BatchItem, type DataModel, type DataSource,
} from '../src/data/source.js';

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-data-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function npy(name: string, arr: NpyArray): string {
  const p = join(dir, name);
  writeNpy(p, arr);
  return p;
}

/** value = sample * 100 + element, so every batch's contents can be checked */
function ramp(n: number, per: number): Float32Array {
  return Float32Array.from({ length: n * per }, (_, i) => Math.floor(i / per) * 100 + (i % per));
}

async function collect(src: DataSource): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of src.batches()) out.push(b);
  return out;
}

const model1: DataModel = { inputs: [{ name: 'x', dims: ['batch', 3, 2] }] };
const xPath = npy('x.npy', { dims: [10, 3, 2], dtype: 'float32', data: ramp(10, 6) });
const yPath = npy('y.npy', { dims: [10], dtype: 'int64', data: BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i % 4)) });

t.test('10 samples by 4 -> 4, 4, 2 with the right contents', async (t) => {
  const src = openData({ input: xPath, labels: yPath }, model1, { batchSize: 4 });
  t.equal(src.samples, 10);
  t.same(src.sampleDims, { x: [3, 2] });
  t.equal(src.hasLabels, true);
  t.equal(src.labelsKind, 'class');
  t.same(src.ranges, [{ start: 0, count: 4 }, { start: 4, count: 4 }, { start: 8, count: 2 }]);
  const bs = await collect(src);
  t.same(bs.map((b) => b.start), [0, 4, 8]);
  t.same(bs.map((b) => b.inputs.x!.dims), [[4, 3, 2], [4, 3, 2], [2, 3, 2]]);
  for (const b of bs) {
    t.ok(b.inputs.x!.data instanceof Float32Array);
    t.same(Array.from(b.inputs.x!.data), Array.from(ramp(10, 6).subarray(b.start * 6, (b.start + b.inputs.x!.dims[0]!) * 6)), `batch at ${b.start}`);
    t.ok(b.labels!.data instanceof BigInt64Array);
    t.same(b.labels!.dims, [b.inputs.x!.dims[0]]);
    t.same(Array.from(b.labels!.data as BigInt64Array), Array.from({ length: b.labels!.dims[0]! }, (_, i) => BigInt((b.start + i) % 4)));
  }
  t.same((await collect(src)).map((b) => b.start), [0, 4, 8], 'a second pass gives the same batches');
  t.same(planBatches(10, 4), src.ranges);
});

t.test('maxSamples', async (t) => {
  const src = openData({ input: xPath, labels: yPath }, model1, { batchSize: 4, maxSamples: 6 });
  t.equal(src.samples, 6);
  const bs = await collect(src);
  t.same(bs.map((b) => [b.start, b.inputs.x!.dims[0], b.labels!.dims[0]]), [[0, 4, 4], [4, 2, 2]]);
  t.equal(bs[1]!.inputs.x!.data[2 * 6 - 1], 505);
  const big = openData({ input: xPath }, model1, { batchSize: 4, maxSamples: 100 });
  t.equal(big.samples, 10, 'maxSamples above the data size takes everything');
  t.equal(big.hasLabels, false);
  t.equal((await collect(big))[0]!.labels, undefined);
});

t.test('typed arrays in memory: a float32 array is batched as views', async (t) => {
  const data = ramp(5, 6);
  const src = openData({ input: { dims: [5, 3, 2], data } }, model1, { batchSize: 2 });
  const bs = await collect(src);
  t.same(bs.map((b) => b.inputs.x!.dims[0]), [2, 2, 1]);
  t.equal(bs[1]!.inputs.x!.data.buffer, data.buffer, 'no copy');
  t.equal(bs[2]!.inputs.x!.data[0], 400);
});

t.test('several named inputs, dynamic dims', async (t) => {
  const model: DataModel = { inputs: [{ name: 'a', dims: ['n', 3] }, { name: 'b', dims: [null, 2, 'len'] }] };
  const a = npy('a.npy', { dims: [7, 3], dtype: 'float32', data: ramp(7, 3) });
  const b = { dims: [7, 2, 5], data: ramp(7, 10) };
  const src = openData({ input: { b, a } }, model, { batchSize: 3 });
  t.same(src.inputNames, ['a', 'b']);
  t.same(src.sampleDims, { a: [3], b: [2, 5] });
  const bs = await collect(src);
  t.same(bs.map((x) => Object.keys(x.inputs)), [['a', 'b'], ['a', 'b'], ['a', 'b']]);
  t.same(bs.map((x) => [x.inputs.a!.dims, x.inputs.b!.dims]), [[[3, 3], [3, 2, 5]], [[3, 3], [3, 2, 5]], [[1, 3], [1, 2, 5]]]);
  t.same(Array.from(bs[2]!.inputs.a!.data), [600, 601, 602]);
  t.equal(bs[1]!.inputs.b!.data[0], 300);
});

t.test('float64 and uint8 inputs become float32; uint8 keeps raw 0-255 values', async (t) => {
  const f64 = Float64Array.from({ length: 12 }, (_, i) => i / 3);
  const p64 = npy('f64.npy', { dims: [2, 3, 2], dtype: 'float64', data: f64 });
  const [b64] = await collect(openData({ input: p64 }, model1, { batchSize: 2 }));
  t.ok(b64!.inputs.x!.data instanceof Float32Array);
  t.same(Array.from(b64!.inputs.x!.data), Array.from(Float32Array.from(f64)));
  const u8 = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
  const pu8 = npy('u8.npy', { dims: [2, 3, 2], dtype: 'uint8', data: u8 });
  for (const input of [pu8, { dims: [2, 3, 2], data: u8 }]) {
    const [b] = await collect(openData({ input }, model1, { batchSize: 5 }));
    t.ok(b!.inputs.x!.data instanceof Float32Array);
    t.same(Array.from(b!.inputs.x!.data), Array.from(u8), 'no scaling');
  }
  const [bi] = await collect(openData({ input: npy('i32x.npy', { dims: [2, 3, 2], dtype: 'int32', data: Int32Array.from(u8) }) }, model1, { batchSize: 5 }));
  t.same(Array.from(bi!.inputs.x!.data), Array.from(u8), 'int32 inputs too');
});

t.test('labels: int32/int64 classes, float targets, labelsKind', async (t) => {
  const x = { dims: [4, 3, 2], data: ramp(4, 6) };
  const i32 = npy('y32.npy', { dims: [4], dtype: 'int32', data: Int32Array.from([3, 1, 0, 2]) });
  const i64col = npy('y64.npy', { dims: [4, 1], dtype: 'int64', data: BigInt64Array.from([3n, 1n, 0n, 2n]) });
  for (const labels of [i32, i64col, { dims: [4], data: Uint8Array.from([3, 1, 0, 2]) }]) {
    const src = openData({ input: x, labels }, model1, { batchSize: 3, numClasses: 4 });
    t.equal(src.labelsKind, 'class');
    const bs = await collect(src);
    t.same(bs.map((b) => b.labels!.dims), [[3], [1]], '[N] and [N, 1] both give [n]');
    t.ok(bs[0]!.labels!.data instanceof BigInt64Array);
    t.same([...bs[0]!.labels!.data, ...bs[1]!.labels!.data], [3n, 1n, 0n, 2n]);
  }
  const targets = npy('t.npy', { dims: [4, 2], dtype: 'float64', data: Float64Array.from([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]) });
  const ts = openData({ input: x, labels: targets }, model1, { batchSize: 3 });
  t.equal(ts.labelsKind, 'target');
  const tb = await collect(ts);
  t.ok(tb[0]!.labels!.data instanceof Float32Array);
  t.same(tb.map((b) => [b.labels!.dims, Array.from(b.labels!.data as Float32Array)]), [[[3, 2], [0.5, 1, 1.5, 2, 2.5, 3]], [[1, 2], [3.5, 4]]]);
  const asClass = openData({ input: x, labels: { dims: [4], data: Float32Array.from([1, 0, 1, 1]) } }, model1, { batchSize: 4, labelsKind: 'class' });
  t.same(Array.from((await collect(asClass))[0]!.labels!.data as BigInt64Array), [1n, 0n, 1n, 1n], 'integer-valued float labels as classes');
  const asTarget = openData({ input: x, labels: i32 }, model1, { batchSize: 4, labelsKind: 'target' });
  t.same(Array.from((await collect(asTarget))[0]!.labels!.data as Float32Array), [3, 1, 0, 2], 'integer labels as float targets');
});

function items(sizes: number[], opts: { labels?: boolean; per?: number } = {}): BatchItem[] {
  let s = 0;
  return sizes.map((n) => {
    const data = ramp(s + n, 6).subarray(s * 6);
    const it: BatchItem = { inputs: { x: { dims: [n, 3, 2], data: Float64Array.from(data) } } };
    if (opts.labels) it.labels = { dims: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(s + i)) };
    s += n;
    return it;
  });
}

t.test('async iterable: re-batched to batchSize', async (t) => {
  const list = items([3, 3, 3, 1], { labels: true });
  const iterable = { async *[Symbol.asyncIterator]() { for (const i of list) yield i; } };
  const src = openData(iterable, model1, { batchSize: 4 });
  t.equal(src.samples, undefined, 'samples unknown before consumption');
  t.equal(src.sampleDims, undefined);
  const bs = await collect(src);
  t.equal(src.samples, 10);
  t.same(src.sampleDims, { x: [3, 2] });
  t.equal(src.hasLabels, true);
  t.equal(src.labelsKind, 'class');
  t.same(bs.map((b) => [b.start, b.inputs.x!.dims[0], b.labels!.dims[0]]), [[0, 4, 4], [4, 4, 4], [8, 2, 2]]);
  for (const b of bs) {
    t.same(Array.from(b.inputs.x!.data), Array.from(ramp(10, 6).subarray(b.start * 6, (b.start + b.inputs.x!.dims[0]!) * 6)));
    t.same(Array.from(b.labels!.data as BigInt64Array), Array.from({ length: b.labels!.dims[0]! }, (_, i) => BigInt(b.start + i)));
  }
  t.same((await collect(src)).length, 3, 'a re-iterable object can be consumed again');

  const limited = openData(iterable, model1, { batchSize: 4, maxSamples: 5 });
  t.same((await collect(limited)).map((b) => b.inputs.x!.dims[0]), [4, 1]);
  t.equal(limited.samples, 5);

  const sync = openData(items([4, 4]), model1, { batchSize: 4 });
  t.same((await collect(sync)).map((b) => b.start), [0, 4], 'a plain array of batches works too');

  async function* gen() { yield* items([2, 2]); }
  const once = openData(gen(), model1, { batchSize: 3 });
  t.same((await collect(once)).map((b) => b.inputs.x!.dims[0]), [3, 1]);
  await t.rejects(collect(once), { name: 'InvalidInputError', message: /already consumed/ });
});

t.test('async iterable: a generator refilling one buffer is safe', async (t) => {
  const buf = new Float32Array(2 * 6);
  async function* gen() {
    for (let k = 0; k < 3; k++) {
      buf.fill(k);
      yield { inputs: { x: { dims: [2, 3, 2], data: buf } } };
    }
  }
  const bs = await collect(openData(gen(), model1, { batchSize: 3 }));
  t.same(bs.map((b) => Array.from(b.inputs.x!.data.filter((_, i) => i % 6 === 0))), [[0, 0, 1], [1, 2, 2]]);
});

/** the sample indices (value / 100 of the first element) of every batch */
const samplesOf = (bs: Batch[]): number[] => bs.flatMap((b) => Array.from({ length: b.inputs.x!.dims[0]! }, (_, i) => b.inputs.x!.data[i * 6]! / 100));

t.test('sharding covers every sample exactly once, in a deterministic order', async (t) => {
  for (const mode of ['strided', 'contiguous'] as const) {
    for (const workers of [1, 2, 3]) {
      for (const bsz of [1, 3, 4]) {
        const src = openData({ input: xPath, labels: yPath }, model1, { batchSize: bsz });
        const seen: number[] = [];
        for (let w = 0; w < workers; w++) {
          const part = shard(src, w, workers, mode);
          const bs = await collect(part);
          t.same(samplesOf(bs), bs.flatMap((b) => Array.from({ length: b.inputs.x!.dims[0]! }, (_, i) => b.start + i)), 'start is the global sample index');
          t.equal(part.samples, bs.reduce((a, b) => a + b.inputs.x!.dims[0]!, 0));
          t.same(samplesOf(await collect(shard(src, w, workers, mode))), samplesOf(bs), 'deterministic');
          t.ok(bs.every((b) => b.inputs.x!.dims[0]! <= bsz));
          seen.push(...samplesOf(bs));
        }
        t.same([...seen].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i), `${mode}, ${workers} workers, batch ${bsz}: all 10 samples once`);
      }
    }
  }
  t.same(shardRanges(10, 4, 1, 2, 'strided'), [{ start: 4, count: 4 }]);
  t.same(shardRanges(10, 4, 1, 3, 'contiguous'), [{ start: 3, count: 3 }]);
  t.same(shardRanges(2, 4, 2, 3, 'strided'), [], 'a worker with nothing to do gets no batches');
});

t.test('strided shards of an iterable', async (t) => {
  const list = items([3, 3, 3, 1]);
  const iterable = { [Symbol.iterator]: () => list[Symbol.iterator]() };
  for (const workers of [1, 2, 3]) {
    const seen: number[] = [];
    for (let w = 0; w < workers; w++) {
      const part = shard(openData(iterable, model1, { batchSize: 3 }), w, workers);
      const bs = await collect(part);
      t.same(bs.map((b) => b.start / 3 % workers), bs.map(() => w), 'worker w gets batches w, w + W, ...');
      t.equal(part.samples, samplesOf(bs).length);
      seen.push(...samplesOf(bs));
    }
    t.same(seen.sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i), `${workers} workers: all 10 samples once`);
  }
  t.throws(() => shard(openData(iterable, model1, { batchSize: 3 }), 0, 2, 'contiguous'), { name: 'InvalidOptionError', message: /'strided' to shard an iterable/ });
});

function throwsInput(t: Test, fn: () => unknown, message: RegExp, what: string): void {
  t.throws(fn, { name: 'InvalidInputError', code: 'ERR_INVALID_INPUT', message }, what);
}

t.test('errors', async (t) => {
  const model: DataModel = { inputs: [{ name: 'x', dims: ['batch', 1, 28, 28] }] };
  const bad = npy('bad.npy', { dims: [10, 1, 28, 27], dtype: 'float32', data: new Float32Array(10 * 28 * 27) });
  throwsInput(t, () => openData({ input: bad }, model, { batchSize: 4 }), /Expected dim 3 of input 'x' \(.*bad\.npy\) to be 28 \(model input 'x' is declared \[batch, 1, 28, 28\], samples first\) but received dims \[10, 1, 28, 27\]/, 'dims');
  throwsInput(t, () => openData({ input: { dims: [1, 28, 28], data: new Float32Array(784) } }, model, { batchSize: 4 }), /Expected input 'x' to have rank 4 .* add the sample axis \(a single sample has dims \[1, 1, 28, 28\]\)/, 'rank');
  t.doesNotThrow(() => openData({ input: { dims: [2, 7, 9], data: new Float32Array(126) } }, { inputs: [{ name: 'x', dims: [3, 'h', null] }] }, { batchSize: 4 }), 'batch and dynamic dims are free');
  throwsInput(t, () => openData({ input: { dims: [2, 6], data: new Float32Array(11) } }, { inputs: [{ name: 'x', dims: [] }] }, { batchSize: 1 }), /Input 'x' has 11 elements but its dims \[2, 6\] need 12/, 'length');
  throwsInput(t, () => openData({ input: join(dir, 'missing.npy') }, model, { batchSize: 1 }), /Cannot read input 'x' \(.*missing\.npy\)/, 'missing file');

  const two: DataModel = { inputs: [{ name: 'a', dims: ['n', 2] }, { name: 'b', dims: ['n', 2] }] };
  const a = { dims: [5, 2], data: new Float32Array(10) };
  throwsInput(t, () => openData({ input: { a, b: a, c: a } }, two, { batchSize: 1 }), /The data names input 'c', which the model does not have; its inputs are 'a', 'b'/, 'unknown input');
  throwsInput(t, () => openData({ input: { a } }, two, { batchSize: 1 }), /The data gives no values for model input 'b'; .*pass input: \{ "a": \.\.\., "b": \.\.\. \}/, 'missing input');
  throwsInput(t, () => openData({ input: a }, two, { batchSize: 1 }), /one array but the model has 2 inputs \('a', 'b'\)/, 'one array for two inputs');
  throwsInput(t, () => openData({ input: { a, b: { dims: [4, 2], data: new Float32Array(8) } } }, two, { batchSize: 1 }), /Input 'b' has 4 samples but input 'a' has 5; every input needs the same number of samples/, 'sample counts');

  const x = { dims: [4, 3, 2], data: ramp(4, 6) };
  throwsInput(t, () => openData({ input: x, labels: yPath }, model1, { batchSize: 1 }), /The labels array \(.*y\.npy\) has 10 samples \(dims \[10\]\) but the inputs have 4; give one label per sample/, 'label count');
  throwsInput(t, () => openData({ input: x, labels: { dims: [4], data: Float32Array.from([1, 2.5, 0, 1]) } }, model1, { batchSize: 1, labelsKind: 'class' }), /The labels array holds 2\.5 at index \[1\], which is not an integer class label; .*labelsKind: 'target'/, 'non-integer class');
  throwsInput(t, () => openData({ input: x, labels: { dims: [4], data: Int32Array.from([1, 2, 10, 1]) } }, model1, { batchSize: 1, numClasses: 10 }), /class label 10 at index \[2\], which is out of range \(expected 0\.\.9 for 10 classes\)/, 'out of range');
  throwsInput(t, () => openData({ input: x, labels: { dims: [4], data: Int32Array.from([1, -1, 0, 1]) } }, model1, { batchSize: 1 }), /class label -1 at index \[1\], which is out of range; class labels are 0-based/, 'negative');
  throwsInput(t, () => openData({ input: x, labels: { dims: [4], data: Float32Array.from([1, 0, NaN, 1]) } }, model1, { batchSize: 1 }), /The labels array holds NaN at index \[2\]/, 'NaN target');

  const nan = ramp(4, 6);
  nan[2 * 6 + 3] = NaN;
  throwsInput(t, () => openData({ input: { dims: [4, 3, 2], data: nan } }, model1, { batchSize: 4 }), /Input 'x' holds NaN at index \[2, 1, 1\] \(sample 2, flat element 15\); replace non-finite values/, 'NaN in memory, found when opened');
  const inf = Float64Array.from(ramp(4, 6));
  inf[7] = 1e300;
  throwsInput(t, () => openData({ input: { dims: [4, 3, 2], data: inf } }, model1, { batchSize: 4 }), /holds 1e\+300, which overflows float32, at index \[1, 0, 1\]/, 'float64 overflow');
  const infFile = ramp(10, 6);
  infFile[9 * 6] = -Infinity;
  const src = openData({ input: npy('inf.npy', { dims: [10, 3, 2], dtype: 'float32', data: infFile }) }, model1, { batchSize: 4 });
  await t.rejects(collect(src), { name: 'InvalidInputError', message: /Input 'x' \(.*inf\.npy\) holds -Infinity at index \[9, 0, 0\] \(sample 9, flat element 54\)/ }, 'Inf in a file, found when its batch is read');

  throwsInput(t, () => openData({ input: { dims: [0, 3, 2], data: new Float32Array(0) } }, model1, { batchSize: 4 }), /Input 'x' holds 0 samples .*calibration needs at least one/, 'empty');
  throwsInput(t, () => openData(x as never, model1, { batchSize: 4 }), /Expected data as \{ input, labels\? \} but received an array; wrap it/, 'bare array');

  for (const v of [0, -1, 2.5, '4', undefined])
    t.throws(() => openData({ input: x }, model1, { batchSize: v as number }), { name: 'InvalidOptionError', code: 'ERR_INVALID_OPTION', message: `Expected a positive integer for option batchSize but received ${typeof v === 'string' ? `'${v}'` : String(v)}` });
  t.throws(() => openData({ input: x }, model1, { batchSize: 2, maxSamples: 0 }), { name: 'InvalidOptionError', message: 'Expected a positive integer for option maxSamples but received 0' });
  t.throws(() => openData({ input: x }, model1, { batchSize: 2, labelsKind: 'soft' as never }), InvalidOptionError);
  t.throws(() => shard(openData({ input: x }, model1, { batchSize: 2 }), 2, 2), { name: 'InvalidOptionError', message: 'Expected an integer in [0, 2) for option worker but received 2' });
  t.throws(() => shard(openData({ input: x }, model1, { batchSize: 2 }), 0, 0), { message: 'Expected a positive integer for option workers but received 0' });
  t.throws(() => shard(shard(openData({ input: x }, model1, { batchSize: 2 }), 0, 2), 0, 2), { message: /unsharded data source/ });
});

t.test('iterable errors name the batch', async (t) => {
  const it = (list: unknown[]) => openData(list as BatchItem[], model1, { batchSize: 4 });
  const good = items([2, 2]);
  const odd = { inputs: { x: { dims: [2, 3, 3], data: new Float32Array(18) } } };
  await t.rejects(collect(it([...good, odd])), { name: 'InvalidInputError', message: /Expected dim 2 of input 'x' of batch #2 of the data iterable to be 2/ }, 'declared dims');
  const dyn: DataModel = { inputs: [{ name: 'x', dims: ['n', 'len'] }] };
  const seq = (n: number, len: number) => ({ inputs: { x: { dims: [n, len], data: new Float32Array(n * len) } } });
  await t.rejects(collect(openData([seq(2, 5), seq(2, 5), seq(1, 6)], dyn, { batchSize: 2 })), { name: 'InvalidInputError', message: /Input 'x' of batch #2 of the data iterable has dims \[1, 6\], per sample \[6\], but earlier batches had \[5\]/ }, 'inconsistent dynamic dims');
  await t.rejects(collect(it([good[0], { inputs: { y: good[1]!.inputs.x } }])), { message: /Batch #1 of the data iterable names input 'y'/ }, 'unknown name');
  await t.rejects(collect(it([items([2], { labels: true })[0], good[1]])), { message: /Batch #1 of the data iterable has no labels but earlier batches had them/ }, 'labels presence');
  await t.rejects(collect(it([{ ...good[0], labels: { dims: [3], data: new BigInt64Array(3) } }])), { message: /The labels array of batch #0 of the data iterable has 3 samples .* but the inputs have 2/ }, 'label count');
  const nan = items([2])[0]!;
  (nan.inputs.x!.data as Float64Array)[7] = NaN;
  await t.rejects(collect(it([good[0], nan])), { message: /Input 'x' of batch #1 of the data iterable holds NaN at index \[1, 0, 1\]/ }, 'NaN');
  await t.rejects(collect(it([42])), { message: /Expected batch #0 of the data iterable to be \{ inputs/ }, 'not an item');
  await t.rejects(collect(it([])), { name: 'InvalidInputError', message: /yielded no batches; calibration needs at least one sample/ }, 'empty');
  t.ok(new InvalidInputError('x') instanceof Error);
});

t.test('batches feed the engine: the demo CNN as the model description', async (t) => {
  const prepared = prepareModel(MODELS.demoCnn, { batch: 4 });
  const images = npy('images.npy', { dims: [6, 1, 28, 28], dtype: 'uint8', data: Uint8Array.from({ length: 6 * 784 }, (_, i) => (i * 7) % 256) });
  const labels = npy('labels.npy', { dims: [6], dtype: 'int32', data: Int32Array.from([0, 1, 2, 3, 4, 9]) });
  const src = openData({ input: images, labels }, prepared.graph, { batchSize: 4, numClasses: 10 });
  const [first] = await collect(src);
  const engine = new EngineModel(prepared.graph);
  const out = engine.gradients(first!.inputs, { loss: { tensor: 'logits', likelihood: 'categorical', target: first!.labels! }, want: ['conv1.weight'] });
  t.same(out.outputs.logits!.dims, [4, 10]);
  t.equal(out.loss.length, 4, 'one loss per sample');
  engine.dispose();
});
