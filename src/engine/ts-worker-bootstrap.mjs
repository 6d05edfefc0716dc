// Development only: lets a Piscina worker run the TypeScript worker module through tsx (the
// published package runs the compiled worker modules, e.g. dist/engine/fisher-worker.js, directly).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const mod = await import(workerData.fitWorkerEntry);
export default mod.default;
