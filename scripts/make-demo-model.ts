/**
 * Writes assets/demo/cnn.onnx: the demo's small Fashion-MNIST CNN
 * (Conv-BN-Relu-MaxPool x2, Gemm-Relu, Gemm), He-initialized with a fixed seed.
 * Run: node --import tsx scripts/make-demo-model.ts
 */
import { writeFileSync, renameSync } from 'node:fs';
import { makeModel } from '../src/onnx/build.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const r = rng(2024);
const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const he = (n: number, fanIn: number) => Array.from({ length: n }, () => gauss() * Math.sqrt(2 / fanIn));
const fill = (n: number, v: number) => new Array<number>(n).fill(v);

const inits = [
  { name: 'conv1.weight', dims: [8, 1, 3, 3], type: 'float32', data: he(72, 9) },
  { name: 'conv1.bias', dims: [8], type: 'float32', data: fill(8, 0) },
  { name: 'bn1.scale', dims: [8], type: 'float32', data: fill(8, 1) },
  { name: 'bn1.bias', dims: [8], type: 'float32', data: fill(8, 0) },
  { name: 'bn1.mean', dims: [8], type: 'float32', data: fill(8, 0) },
  { name: 'bn1.var', dims: [8], type: 'float32', data: fill(8, 1) },
  { name: 'conv2.weight', dims: [16, 8, 3, 3], type: 'float32', data: he(16 * 72, 72) },
  { name: 'conv2.bias', dims: [16], type: 'float32', data: fill(16, 0) },
  { name: 'bn2.scale', dims: [16], type: 'float32', data: fill(16, 1) },
  { name: 'bn2.bias', dims: [16], type: 'float32', data: fill(16, 0) },
  { name: 'bn2.mean', dims: [16], type: 'float32', data: fill(16, 0) },
  { name: 'bn2.var', dims: [16], type: 'float32', data: fill(16, 1) },
  { name: 'fc1.weight', dims: [64, 784], type: 'float32', data: he(64 * 784, 784) },
  { name: 'fc1.bias', dims: [64], type: 'float32', data: fill(64, 0) },
  { name: 'fc2.weight', dims: [10, 64], type: 'float32', data: he(640, 64) },
  { name: 'fc2.bias', dims: [10], type: 'float32', data: fill(10, 0) },
];

const bytes = makeModel({
  opset: 13,
  producerName: 'onnx-fit scripts/make-demo-model.ts',
  inputs: [{ name: 'input', elemType: 'float32', dims: ['batch', 1, 28, 28] }],
  outputs: [{ name: 'logits', elemType: 'float32', dims: ['batch', 10] }],
  initializers: inits,
  nodes: [
    { op: 'Conv', name: 'conv1', inputs: ['input', 'conv1.weight', 'conv1.bias'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
    { op: 'BatchNormalization', name: 'bn1', inputs: ['c1', 'bn1.scale', 'bn1.bias', 'bn1.mean', 'bn1.var'], outputs: ['b1'] },
    { op: 'Relu', name: 'relu1', inputs: ['b1'], outputs: ['r1'] },
    { op: 'MaxPool', name: 'pool1', inputs: ['r1'], outputs: ['p1'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    { op: 'Conv', name: 'conv2', inputs: ['p1', 'conv2.weight', 'conv2.bias'], outputs: ['c2'], attrs: { pads: [1, 1, 1, 1] } },
    { op: 'BatchNormalization', name: 'bn2', inputs: ['c2', 'bn2.scale', 'bn2.bias', 'bn2.mean', 'bn2.var'], outputs: ['b2'] },
    { op: 'Relu', name: 'relu2', inputs: ['b2'], outputs: ['r2'] },
    { op: 'MaxPool', name: 'pool2', inputs: ['r2'], outputs: ['p2'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    { op: 'Flatten', name: 'flatten', inputs: ['p2'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: 'fc1', inputs: ['f', 'fc1.weight', 'fc1.bias'], outputs: ['h'], attrs: { transB: 1 } },
    { op: 'Relu', name: 'relu3', inputs: ['h'], outputs: ['hr'] },
    { op: 'Gemm', name: 'fc2', inputs: ['hr', 'fc2.weight', 'fc2.bias'], outputs: ['logits'], attrs: { transB: 1 } },
  ],
});
const out = new URL('../assets/demo/cnn.onnx', import.meta.url);
writeFileSync(out.pathname + '.tmp', bytes);
renameSync(out.pathname + '.tmp', out.pathname);
console.log(`wrote ${out.pathname} (${bytes.length} bytes)`);
