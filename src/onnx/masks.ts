/**
 * Pruning masks for export and evaluation: weight (initializer) name or layer name -> Uint8Array
 * of 1 (kept) / 0 (pruned), in the layout of the weight the sensitivity report and the FITCompress
 * planner use (after BatchNorm folding when it is folded; folding scales output channels and keeps
 * the layout). A masked weight is set to exactly 0 before quantization, so the quantizer's step is
 * computed over the surviving weights: Delta = max|w_kept| / (2^(b-1) - 1), the planner's
 * quantize-after-masking (native/fisher/compress.h), bit for bit. A layer with a mask and no bit
 * width keeps float weights, masked.
 */
import { InvalidOptionError } from '../errors.js';

/** weight (initializer) name or layer name -> 1 kept / 0 pruned, one entry per weight element */
export type WeightMasks = Record<string, Uint8Array>;

interface MaskableLayer {
  name: string;
  weight: string;
  data: ArrayLike<number>;
}

/** Validates masks against the model's quantizable layers; returns layer name -> mask. */
export function checkMasks(masks: unknown, layers: readonly MaskableLayer[], modelName: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (masks === undefined) return out;
  if (masks === null || typeof masks !== 'object' || Array.isArray(masks))
    throw new InvalidOptionError(
      `Expected an object of weight or layer name -> Uint8Array (1 kept, 0 pruned) for option masks but received ${masks === null ? 'null' : Array.isArray(masks) ? 'an array' : typeof masks}`,
    );
  const byName = new Map<string, MaskableLayer[]>();
  const add = (key: string, l: MaskableLayer) => byName.set(key, [...(byName.get(key) ?? []), l]);
  for (const l of layers) {
    add(l.weight, l);
    if (l.name !== l.weight) add(l.name, l);
  }
  const unknown: string[] = [];
  for (const [key, m] of Object.entries(masks as Record<string, unknown>)) {
    const targets = byName.get(key);
    if (!targets) {
      unknown.push(`'${key}'`);
      continue;
    }
    for (const l of targets) {
      const n = l.data.length;
      if (!(m instanceof Uint8Array) || m.length !== n)
        throw new InvalidOptionError(
          `Expected a Uint8Array of ${n} values (the elements of weight '${l.weight}') for option masks['${key}'] but received ${
            m instanceof Uint8Array ? `${m.length} values` : m === null ? 'null' : (m as object)?.constructor?.name ?? typeof m
          }`,
        );
      for (let j = 0; j < n; j++)
        if (m[j]! > 1) throw new InvalidOptionError(`Expected only 0 (pruned) and 1 (kept) for option masks['${key}'] but received ${m[j]} at element ${j}`);
      if (out.has(l.name) && out.get(l.name) !== m)
        throw new InvalidOptionError(`Expected one mask per layer for option masks but received two for layer '${l.name}' (by layer and by weight name)`);
      out.set(l.name, m);
    }
  }
  if (unknown.length) {
    const known = layers.slice(0, 8).map((l) => `'${l.weight}' ('${l.name}')`).join(', ');
    throw new InvalidOptionError(
      `Expected weight or layer names of quantizable layers of ${modelName} for option masks (${known}${layers.length > 8 ? ', ...' : ''}) but received ${unknown.join(', ')}`,
    );
  }
  return out;
}

/** w * mask: pruned elements exactly +0. */
export function maskedData(data: ArrayLike<number>, mask: Uint8Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let j = 0; j < out.length; j++) out[j] = mask[j] ? data[j]! : 0;
  return out;
}

/** Elements a mask prunes. */
export function prunedCount(mask: Uint8Array): number {
  let k = 0;
  for (let j = 0; j < mask.length; j++) if (!mask[j]) k++;
  return k;
}
