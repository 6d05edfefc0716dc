/** Paths of the real pre-trained models shipped by devDependencies. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ocr = join(root, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const oww = join(root, 'node_modules', 'openwakeword-js', 'models');

export const MODELS = {
  ocrCls: join(ocr, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  ocrDet: join(ocr, 'ch_PP-OCRv4_det_infer.onnx'),
  ocrRec: join(ocr, 'ch_PP-OCRv4_rec_infer.onnx'),
  owwHello: join(oww, 'hello_deepa.onnx'),
  owwNamaste: join(oww, 'namaste_deepa.onnx'),
  demoCnn: join(root, 'assets', 'demo', 'cnn.onnx'),
};
