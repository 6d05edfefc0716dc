/** The Piscina pool that runs evaluation shards in worker threads (one ORT session per model per worker). */
import { Piscina } from 'piscina';

export function evalPool(threads: number): Piscina {
  const self = import.meta.url;
  const dev = self.endsWith('.ts');
  const entry = new URL(dev ? './eval-worker.ts' : './eval-worker.js', self).href;
  return new Piscina({
    filename: dev ? new URL('./ts-worker-bootstrap.mjs', self).href : entry,
    workerData: { fitWorkerEntry: entry },
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
    concurrentTasksPerWorker: 1,
  });
}
