/** IDX reader: Debian's Fashion-MNIST files, synthetic small files (gzipped and plain), errors. */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseIdx, readIdx } from '../src/data/idx.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';

function idxBytes(dims: number[], data: ArrayLike<number>, magicType = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, (magicType << 8) | dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'onnx-fit-idx-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('Fashion-MNIST from dataset-fashion-mnist', { skip: existsSync(FMNIST) ? false : `${FMNIST} is not installed (apt install dataset-fashion-mnist)` }, async (t) => {
  const sets = [
    { split: 'train', n: 60000 },
    { split: 't10k', n: 10000 },
  ];
  for (const { split, n } of sets) {
    const images = readIdx(join(FMNIST, `${split}-images-idx3-ubyte.gz`));
    const labels = readIdx(join(FMNIST, `${split}-labels-idx1-ubyte.gz`));
    t.same(images.dims, [n, 28, 28], `${split} images dims`);
    t.equal(images.data.length, n * 784);
    t.same(labels.dims, [n], `${split} labels dims`);
    const counts = new Array<number>(10).fill(0);
    let bad = 0;
    for (const l of labels.data) {
      if (l > 9) bad++;
      else counts[l]!++;
    }
    t.equal(bad, 0, `${split} labels are in 0..9`);
    if (split === 'train') t.same(counts, new Array(10).fill(6000), 'train has 6000 images per class');
    else t.same(counts, new Array(10).fill(1000), 'test has 1000 images per class');
    let max = 0;
    let nonzero = 0;
    for (let i = 0; i < 784 * 100; i++) {
      max = Math.max(max, images.data[i]!);
      if (images.data[i]) nonzero++;
    }
    t.equal(max, 255, 'pixels reach 255');
    t.ok(nonzero > 784 * 100 * 0.2 && nonzero < 784 * 100 * 0.9, 'images are neither blank nor saturated');
  }
});

t.test('synthetic IDX files, plain and gzipped', async (t) => {
  const labels = [3, 1, 4, 1, 5, 9, 2, 6];
  const images = Array.from({ length: 3 * 2 * 4 }, (_, i) => (i * 37) % 256);
  const cases = [
    { file: 'labels-idx1-ubyte', dims: [8], data: labels, gz: false },
    { file: 'labels-idx1-ubyte.gz', dims: [8], data: labels, gz: true },
    { file: 'images-idx3-ubyte', dims: [3, 2, 4], data: images, gz: false },
    { file: 'images-idx3-ubyte.gz', dims: [3, 2, 4], data: images, gz: true },
    // gzip is detected from the content, not the name
    { file: 'images-gz-without-suffix', dims: [3, 2, 4], data: images, gz: true },
    { file: 'empty-idx1', dims: [0], data: [], gz: false },
  ];
  for (const c of cases) {
    const raw = idxBytes(c.dims, c.data);
    const p = join(dir, c.file);
    writeFileSync(p, c.gz ? gzipSync(raw) : raw);
    const got = readIdx(p);
    t.same(got.dims, c.dims, `${c.file}: dims`);
    t.ok(got.data instanceof Uint8Array, `${c.file}: Uint8Array`);
    t.same(Array.from(got.data), c.data, `${c.file}: data`);
  }
  const parsed = parseIdx(idxBytes([2, 2], [7, 8, 9, 10]));
  t.same(parsed, { dims: [2, 2], data: new Uint8Array([7, 8, 9, 10]) }, 'parseIdx on bytes, any rank');
});

t.test('errors', async (t) => {
  const expectInvalid = (fn: () => unknown, re: RegExp, what: string) =>
    t.throws(fn, { name: 'InvalidInputError', code: 'ERR_INVALID_INPUT', message: re }, what);

  const write = (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  expectInvalid(() => readIdx(join(dir, 'missing.gz')), /Cannot read IDX file .*missing\.gz/, 'missing file');
  expectInvalid(() => readIdx(write('png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]))), /not an IDX file: magic number 0x89504e47/, 'bad magic');
  expectInvalid(() => readIdx(write('rank0', new Uint8Array([0, 0, 8, 0]))), /not an IDX file/, 'rank 0');
  expectInvalid(() => readIdx(write('float', idxBytes([1], [0, 0, 0, 0], 0x0d))), /float32 elements.*unsigned-byte/, 'non-uint8 element type');
  expectInvalid(() => readIdx(write('short', new Uint8Array([0, 0]))), /truncated: 2 byte/, 'shorter than the magic');
  expectInvalid(() => readIdx(write('header', idxBytes([5, 28, 28], []).subarray(0, 10))), /truncated: .*3 dim\(s\)/, 'truncated header');
  const full = idxBytes([4, 2, 2], Array.from({ length: 16 }, (_, i) => i));
  expectInvalid(() => readIdx(write('data', full.subarray(0, full.length - 3))), /truncated: dims \[4, 2, 2\] need 16 bytes of data but 13/, 'truncated data');
  const gz = gzipSync(full);
  expectInvalid(() => readIdx(write('data.gz', gz.subarray(0, gz.length - 8))), /gzip file that does not decompress/, 'truncated gzip stream');
  expectInvalid(() => readIdx(write('trailing', new Uint8Array([...idxBytes([2], [1, 2]), 99]))), /1 trailing byte/, 'trailing bytes');
  expectInvalid(() => parseIdx(new Uint8Array([0, 0, 8, 1]), 'buf'), /buf is truncated/, 'parseIdx names its source');
});
