import { NODE_TEST_DIR, runNodeTest, supportedOps } from './test/helpers/backend.js';
import { join } from 'node:path';
const sup = supportedOps();
for (const n of ['test_softplus','test_softplus_example','test_hardsigmoid','test_selu','test_relu','test_globalaveragepool','test_resize_downsample_scales_linear_align_corners','test_cast_BFLOAT16_to_FLOAT']) { const o = runNodeTest(join(NODE_TEST_DIR, n), sup); console.log(n, JSON.stringify(o).slice(0,200)); }
