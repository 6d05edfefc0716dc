import { loadEngineModel } from './src/engine/load.js';
const { engine } = loadEngineModel('assets/demo/cnn.onnx', { batch: 32 });
const data = new Float32Array(32*784).map(() => Math.random());
for (let i = 0; i < 4; i++) engine.run({ input: { dims: [32,1,28,28], data } });
