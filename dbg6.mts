import { listNodeTests, NODE_TEST_DIR, runNodeTest, supportedOps } from './test/helpers/backend.js';
import { join } from 'node:path';
const sup = supportedOps();
for (const n of listNodeTests()) { try { runNodeTest(join(NODE_TEST_DIR, n), sup); } catch (e) { console.log(n, (e as Error).message.slice(0, 150)); } }
