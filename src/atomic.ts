/** Atomic file writing: a temp file in the same directory, flushed, then renamed over the target. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidOptionError } from './errors.js';

/**
 * Writes `data` to `path` so that a reader sees the old file or the whole new one, never a part;
 * on failure nothing is left behind and an existing file is untouched. `option` names the option
 * the path came from, for the error message.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, option = 'out'): void {
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, abs);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InvalidOptionError(`Expected a writable file path for option ${option} but could not write ${abs}: ${(e as Error).message}`, { cause: e });
  }
}
