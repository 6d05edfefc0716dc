import t from 'tap';
import { checkOps } from './helpers/ops.js';

t.test('harness: a few ops against onnxruntime-node', async (t) => {
  await checkOps(t, [
    { op: 'Relu', inputs: [{ dims: [2, 3, 4] }] },
    { op: 'Add', inputs: [{ dims: [2, 3, 4] }, { dims: [3, 1], const: true }] },
    { op: 'Conv', attrs: { pads: [1, 1, 1, 1] }, inputs: [{ dims: [2, 3, 8, 8] }, { dims: [4, 3, 3, 3], const: true }, { dims: [4], const: true }] },
    { op: 'MatMul', inputs: [{ dims: [2, 5, 7] }, { dims: [7, 3], const: true }] },
  ]);
});
