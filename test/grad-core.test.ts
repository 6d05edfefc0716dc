/** Backward core: seeds, fan-in, missing rules, loss heads against closed forms. */
import t from 'tap';
import { checkGrads } from './helpers/grad.js';
import { EngineModel } from '../src/engine/model.js';
import { NoGradientError } from '../src/errors.js';
import type { Graph } from '../src/onnx/types.js';

t.test('Relu gradient', async (t) => {
  await checkGrads(t, [{ op: 'Relu', inputs: [{ dims: [3, 4, 5] }] }]);
});
