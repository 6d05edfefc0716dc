/**
 * Real pre-trained models from npm packages, forward on the engine against onnxruntime-node:
 * relative error (max |diff| / max |ort output|) must stay <= 1e-4.
 */
import t from 'tap';
import { declaredInputs, loadEngineModel } from '../src/engine/load.js';
import { readModel, type OnnxModel } from '../src/onnx/read.js';
import { agreement } from '../src/eval/agreement.js';
import { randomFloats, syntheticPage } from './helpers/random.js';
import { MODELS } from './helpers/models.js';


// OCR models get a synthetic page (dark strokes on white, PP-OCR's normalization): on uniform noise
// the det model's map is ~1e-7 everywhere (logits < -14), where onnxruntime's approximate logistic,
// not the engine, decides the relative error.
type Case = { name: string; path: string; shape: number[]; low: number; high: number; page?: boolean };
const cases: Case[] = [
  { name: 'PP-OCR mobile v2 cls', path: MODELS.ocrCls, shape: [2, 3, 48, 192], low: -1, high: 1, page: true },
  { name: 'PP-OCR v4 det', path: MODELS.ocrDet, shape: [1, 3, 96, 128], low: -1, high: 1, page: true },
  { name: 'PP-OCR v4 rec', path: MODELS.ocrRec, shape: [2, 3, 48, 160], low: -1, high: 1, page: true },
  { name: 'openwakeword hello_deepa', path: MODELS.owwHello, shape: [1, 25, 96], low: -2, high: 2 },
  { name: 'openwakeword namaste_deepa', path: MODELS.owwNamaste, shape: [1, 24, 96], low: -2, high: 2 },
];

const modelCache = new Map<string, OnnxModel>();
function loadedModel(path: string): OnnxModel {
  let m = modelCache.get(path);
  if (!m) modelCache.set(path, (m = readModel(path)));
  return m;
}
function graph0Input(path: string): string {
  return declaredInputs(loadedModel(path))[0]!.name;
}

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { engine, layers, graph } = loadEngineModel(loadedModel(c.path), { inputShapes: { [graph0Input(c.path)]: c.shape } });
    t.ok(layers.length > 0, `has quantizable layers (${layers.length})`);
    t.notOk(graph.nodes.some((n) => n.op === 'Constant' || n.op === 'Shape'), 'Constant and Shape nodes are folded away');
    for (const seed of [1, 2]) {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const inputs = { [engine.inputNames[0]!]: { dims: c.shape, data: c.page ? syntheticPage(c.shape[0]!, c.shape[2]!, c.shape[3]!, seed) : randomFloats(n, seed, c.low, c.high) } };
      const res = await agreement(loadedModel(c.path), engine, inputs);
      for (const a of res) {
        t.ok(a.maxRelDiff <= 1e-4, `${a.output} seed ${seed}: max rel diff ${a.maxRelDiff.toExponential(2)} <= 1e-4 (max abs ${a.maxAbsDiff.toExponential(2)})`);
      }
    }
    engine.dispose();
  });
}

