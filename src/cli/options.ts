/**
 * Option parsers and file helpers shared by the commands. Parsers throw InvalidOptionError ("Expected
 * X for option Y but received Z"), so main() prints one line and exits 1.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic.js';
import { InvalidInputError, InvalidOptionError } from '../errors.js';

/** Repeatable option: collects every value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const numberOption = (what: string, ok: (n: number) => boolean) => (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !ok(n)) throw new InvalidOptionError(`Expected ${what} for option ${name} but received '${v}'`);
  return n;
};

export const positiveInt = numberOption('a positive integer', (n) => Number.isInteger(n) && n >= 1);
export const nonNegativeInt = numberOption('a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
export const positiveNumber = numberOption('a positive number', (n) => Number.isFinite(n) && n > 0);
export const nonNegativeNumber = numberOption('a non-negative number', (n) => Number.isFinite(n) && n >= 0);

export const oneOf = <T extends string>(name: string, values: readonly T[]) => (v: string): T => {
  if (!(values as readonly string[]).includes(v)) {
    const list = values.map((x) => `'${x}'`);
    throw new InvalidOptionError(`Expected ${list.slice(0, -1).join(', ')} or ${list[list.length - 1]} for option ${name} but received '${v}'`);
  }
  return v as T;
};

/** --weight-bits 2,3,4 */
export const bitList = (name: string) => (v: string): number[] => {
  const parts = v.split(',').map((s) => s.trim());
  const bits = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || bits.some((b) => b < 2 || b > 16))
    throw new InvalidOptionError(`Expected a comma-separated list of integer bit widths in [2, 16] for option ${name} but received '${v}'`);
  return bits;
};

/** --shape name=1x3x48x192 */
export function parseShapes(specs: string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const s of specs) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(s);
    if (!m) throw new InvalidOptionError(`Expected NAME=DxDxD for option --shape but received '${s}'`);
    out[m[1]!] = m[2]!.split('x').map(Number);
  }
  return out;
}

/** A JSON file, with an InvalidInputError naming the file when it cannot be read or parsed. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new InvalidInputError(`Cannot read the ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidInputError(`The ${what} ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** JSON (non-finite numbers as the strings "Infinity", "-Infinity", "NaN"), written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n', '--json');
}
