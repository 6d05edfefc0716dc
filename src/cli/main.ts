/** Entry used in development (`node --import tsx src/cli/main.ts ...`); bin/onnx-fit.js uses dist. */
import { main } from './index.js';

await main(process.argv);
