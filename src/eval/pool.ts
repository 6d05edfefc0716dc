/** The Piscina pool that runs evaluation shards in worker threads (one ORT session per model per worker). */
import type { Piscina } from 'piscina';
import { workerEntry, workerPool } from '../engine/pool.js';

export function evalPool(threads: number): Piscina {
  return workerPool(workerEntry(import.meta.url, 'eval-worker'), threads);
}
