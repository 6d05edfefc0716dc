/** The Piscina pool that runs Fisher passes in worker threads (one engine per worker). */
import { Piscina } from 'piscina';

export function fisherPool(threads: number): Piscina {
  const self = import.meta.url;
  const dev = self.endsWith('.ts');
  const entry = new URL(dev ? './fisher-worker.ts' : './fisher-worker.js', self).href;
  return new Piscina({
    filename: dev ? new URL('./ts-worker-bootstrap.mjs', self).href : entry,
    workerData: { fitWorkerEntry: entry },
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
    concurrentTasksPerWorker: 1,
  });
}
