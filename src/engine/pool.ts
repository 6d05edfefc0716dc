/**
 * The Piscina pools that run Fisher passes in worker threads (one engine per worker).
 *
 * A pool outlives the run that started it for a few seconds (KEEP_ALIVE_MS), so that back-to-back
 * runs (a sweep of options, re-estimation along a FITCompress path, a test file) pay the worker
 * start-up once. Idle workers are unref'd by Piscina and never keep the process alive; an aborted
 * or failed run destroys its pool at once unless another run is using it.
 */
import { Piscina } from 'piscina';

interface Entry {
  pool: Piscina;
  users: number;
  timer?: NodeJS.Timeout;
}

const pools = new Map<number, Entry>();
/** ms an idle pool is kept for the next run */
const KEEP_ALIVE_MS = 5000;

/**
 * A Piscina pool of `threads` workers running the module `entry` (a URL of a .js file next to the
 * compiled code, or of its .ts source under tsx in development, through ts-worker-bootstrap.mjs).
 */
export function workerPool(entry: URL, threads: number): Piscina {
  const dev = entry.href.endsWith('.ts');
  return new Piscina({
    filename: dev ? new URL('./ts-worker-bootstrap.mjs', import.meta.url).href : entry.href,
    workerData: { fitWorkerEntry: entry.href },
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
    concurrentTasksPerWorker: 1,
  });
}

/** The URL of a worker module beside `base` (`name`.ts in development, `name`.js when compiled). */
export const workerEntry = (base: string, name: string): URL => new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);

function createPool(threads: number): Piscina {
  return workerPool(workerEntry(import.meta.url, 'fisher-worker'), threads);
}

/** A pool of `threads` workers, reused if one is alive. Pair with releasePool. */
export function acquirePool(threads: number): Piscina {
  let e = pools.get(threads);
  if (!e) {
    e = { pool: createPool(threads), users: 0 };
    pools.set(threads, e);
  }
  if (e.timer) clearTimeout(e.timer);
  e.timer = undefined;
  e.users++;
  return e.pool;
}

async function destroyEntry(threads: number, e: Entry): Promise<void> {
  if (pools.get(threads) === e) pools.delete(threads);
  if (e.timer) clearTimeout(e.timer);
  await e.pool.destroy();
}

/** Ends a run's use of its pool: kept for KEEP_ALIVE_MS, or destroyed now (abort, failure). */
export async function releasePool(pool: Piscina, opts: { destroy?: boolean } = {}): Promise<void> {
  const found = [...pools.entries()].find(([, e]) => e.pool === pool);
  if (!found) return pool.destroy();
  const [threads, e] = found;
  e.users--;
  if (e.users > 0) return;
  if (opts.destroy) return destroyEntry(threads, e);
  e.timer = setTimeout(() => void destroyEntry(threads, e), KEEP_ALIVE_MS);
  e.timer.unref();
}

/** Destroys every idle pool now (e.g. before exiting a long-lived process cleanly). */
export async function closeWorkers(): Promise<void> {
  await Promise.all([...pools.entries()].filter(([, e]) => e.users === 0).map(([t, e]) => destroyEntry(t, e)));
}
