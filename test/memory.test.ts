/**
 * The engine's memory accounting (addon.memoryStats) and what it shows of the Fisher pass: blocks are counted while held and
 * given back after a run; a Fisher pass over PP-OCR cls never holds all of one batch's activations at once (forward frees what
 * backward does not read, fused chains never materialize, backward frees what it consumed), and leaves nothing in use.
 * The 1.5x-of-floor goal itself is measured by `npm run bench memory`.
 */
import t from 'tap';
import { loadAddon } from '../src/engine/addon.js';
import { EngineModel } from '../src/engine/model.js';
import { sensitivity } from '../src/index.js';
import type { Graph } from '../src/onnx/types.js';
import { fisherFloor } from './helpers/memory.js';
import { MODELS } from './helpers/models.js';
import { randomFloats } from './helpers/random.js';

const addon = loadAddon();

t.test('a run holds its output block while it runs and gives it back', async (t) => {
  const n = 100_000;
  const graph: Graph = {
    opset: 13,
    nodes: [{ op: 'Relu', name: 'r', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }],
    initializers: new Map(),
    inputs: [{ name: 'x', elemType: 'float32', dims: [n] }],
    outputs: [{ name: 'y', elemType: 'float32', dims: [n] }],
    shapes: new Map([['x', [n]]]),
  };
  const engine = new EngineModel(graph);
  const before = addon.memoryStats(true);
  t.equal(before.peak, before.inUse, 'resetPeak restarts the peak from the bytes in use');
  const y = engine.run({ x: { dims: [n], data: randomFloats(n, 1, -1, 1) } });
  const after = addon.memoryStats();
  const grew = after.peak - before.inUse;
  t.ok(grew >= 4 * n && grew <= 4 * n * 1.19 + 4096, `peak grew by ${grew} bytes for a ${4 * n}-byte output (size classes add <= 19%)`);
  t.equal(after.inUse, before.inUse, 'the output block is back once the result is in JavaScript');
  t.equal(y.y!.data.length, n);
  engine.dispose();
});

t.test('a Fisher pass over PP-OCR cls holds less than one batch of activations and leaves nothing in use', async (t) => {
  const dims = [16, 3, 48, 192];
  const { activations } = fisherFloor(MODELS.ocrCls, 'x', dims);
  const n = 32;
  const before = addon.memoryStats(true);
  await sensitivity(MODELS.ocrCls, { data: { input: { dims: [n, 3, 48, 192], data: randomFloats(n * 3 * 48 * 192, 4, -1, 1) } }, inputShapes: { x: dims }, batchSize: dims[0], tolerance: 0, workers: 1 });
  const after = addon.memoryStats();
  const peak = after.peak - before.inUse;
  t.ok(peak > 0.1 * activations && peak < activations, `engine peak ${(peak / 2 ** 20).toFixed(1)} MiB vs ${(activations / 2 ** 20).toFixed(1)} MiB of activations per batch`);
  t.equal(after.inUse, before.inUse, 'no engine memory in use after the pass');
});
