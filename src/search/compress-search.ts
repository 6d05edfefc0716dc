/**
 * The FITCompress searches over CompressSpace: A* (binary heap, deterministic tie-breaking,
 * bounded by maxExpansions) and greedy (always the cheapest next move).
 *
 * A*: f = g + w * h with g the summed step costs sqrt(FIT of each move) and
 * h = sqrt(max(0, c - target)^2 * sum_j F_jj w_j^2) (the paper's heuristic; equal to
 * |c - target| * ||w||_F on every non-goal state, 0 on goals). It is NOT admissible in general: a
 * quantization move lowers c a lot for little FIT, so h can overestimate the remaining cost and A*
 * then returns a good path quickly rather than the cheapest one. With w = 0 it is a uniform-cost
 * search and the path is the cheapest. Closed states are not reopened. Ties: lower f, then lower h,
 * then the earlier generated state (successors are generated layers first, then the prune move).
 * Open states keep only their parent and move; their steps are materialized when expanded.
 */
import { AbortError, InvalidOptionError } from '../errors.js';
import type { CompressProgress } from './compress-options.js';
import { keyOf, type CompressSpace, type SearchState } from './compress-state.js';

export interface SearchNode {
  level: number;
  /** sum_l nnz_l bits_l */
  num: number;
  /** schedule index per layer; null until materialize() (shared with the parent after a prune) */
  steps: Uint8Array | null;
  /** path cost from the start */
  g: number;
  parent: SearchNode | null;
  /** the move that led here: layer >= 0 quantized it, -1 pruned, -2 for the start */
  layer: number;
  /** its cost */
  cost: number;
  seq: number;
  hi: number;
  lo: number;
  f: number;
  h: number;
}

export interface SearchOutcome {
  goal: SearchNode;
  expansions: number;
  /** A* ran out of maxExpansions and the path was completed greedily */
  fallback: boolean;
}

export interface SearchControl {
  target: number;
  heuristicWeight: number;
  maxExpansions: number;
  onLimit: 'greedy' | 'error';
  signal?: AbortSignal;
  onProgress?: (p: CompressProgress) => void;
  started: number;
}

/** The steps of a node (its parent's are materialized first when needed). */
export function materialize(node: SearchNode): Uint8Array {
  if (node.steps) return node.steps;
  const chain: SearchNode[] = [];
  let n: SearchNode = node;
  while (!n.steps) {
    chain.push(n);
    n = n.parent!;
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    const c = chain[i]!;
    const ps = c.parent!.steps!;
    if (c.layer < 0) c.steps = ps;
    else {
      const s = ps.slice();
      s[c.layer]! += 1;
      c.steps = s;
    }
  }
  return node.steps!;
}

export const stateOf = (node: SearchNode): SearchState => ({ steps: materialize(node), level: node.level, num: node.num });

const before = (a: SearchNode, b: SearchNode): boolean =>
  a.f < b.f || (a.f === b.f && (a.h < b.h || (a.h === b.h && a.seq < b.seq)));

/** A binary min-heap ordered by (f, h, seq): the order never depends on insertion history. */
export class NodeHeap {
  private readonly a: SearchNode[] = [];
  get size(): number {
    return this.a.length;
  }
  push(item: SearchNode): void {
    const a = this.a;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, a[parent]!)) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = item;
  }
  pop(): SearchNode | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const m = r < a.length && before(a[r]!, a[l]!) ? r : l;
        if (!before(a[m]!, last)) break;
        a[i] = a[m]!;
        i = m;
      }
      a[i] = last;
    }
    return top;
  }
}

const YIELD_EVERY = 1024;
/** A* also stops (like at maxExpansions) once it knows this many states (~250 bytes each). */
export const MAX_STATES = 2_000_000;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function checkAbort(ctl: SearchControl): void {
  if (ctl.signal?.aborted) throw new AbortError('planCompression() was aborted');
}

/** The root of a search: the start of the schedules, or a given state (re-estimation). */
function startNode(space: CompressSpace, from?: { steps: Uint8Array; level: number }): SearchNode {
  const steps = from ? from.steps.slice() : space.start().steps;
  const level = from?.level ?? 0;
  const { hi, lo } = space.hash(steps, level);
  return { level, num: space.numOf(steps, level), steps, g: 0, parent: null, layer: -2, cost: 0, seq: 0, hi, lo, f: 0, h: 0 };
}

function child(space: CompressSpace, node: SearchNode, layer: number, cost: number, num: number, seq: number): SearchNode {
  const d = space.delta(node.steps!, node.level, layer);
  return {
    level: layer < 0 ? node.level + 1 : node.level, num, steps: null, g: node.g + cost, parent: node, layer, cost, seq,
    hi: node.hi ^ d.hi, lo: node.lo ^ d.lo, f: 0, h: 0,
  };
}

/** Follows the cheapest move from `from` until the compression is at most the target. */
export function greedyFrom(space: CompressSpace, from: SearchNode, target: number, seq = { n: from.seq + 1 }): { goal: SearchNode; moves: number } {
  let node = from;
  let moves = 0;
  while (node.num / space.denom > target) {
    const succ = space.successors(stateOf(node));
    if (!succ.length) break; // the last schedule point; planCompression checks reachability first
    let best = succ[0]!;
    for (const m of succ) if (m.cost < best.cost || (m.cost === best.cost && m.num < best.num)) best = m;
    node = child(space, node, best.layer, best.cost, best.num, seq.n++);
    materialize(node);
    moves++;
  }
  return { goal: node, moves };
}

export async function greedySearch(space: CompressSpace, ctl: SearchControl, from?: { steps: Uint8Array; level: number }): Promise<SearchOutcome> {
  checkAbort(ctl);
  const { goal, moves } = greedyFrom(space, startNode(space, from), ctl.target);
  ctl.onProgress?.({ expansions: moves, open: 0, bestCompression: goal.num / space.denom, ms: performance.now() - ctl.started });
  return { goal, expansions: moves, fallback: false };
}

export async function astarSearch(
  space: CompressSpace,
  ctl: SearchControl,
  importanceTotal: number,
  from?: { steps: Uint8Array; level: number },
): Promise<SearchOutcome> {
  const norm = Math.sqrt(importanceTotal) * ctl.heuristicWeight;
  const h = (num: number) => {
    const gap = num / space.denom - ctl.target;
    return gap > 0 ? gap * norm : 0;
  };
  const seq = { n: 1 };
  const start = startNode(space, from);
  start.h = start.f = h(start.num);
  const heap = new NodeHeap();
  /** best known g per key; -1 once expanded (closed) */
  const best = new Map<number, number>([[keyOf(start.hi, start.lo), 0]]);
  heap.push(start);
  let expansions = 0;
  let bestNum = start.num;
  const progress = () => ctl.onProgress?.({ expansions, open: heap.size, bestCompression: bestNum / space.denom, ms: performance.now() - ctl.started });
  for (;;) {
    const node = heap.pop();
    if (!node) throw new InvalidOptionError(`No state reaches compression ${ctl.target}`); // unreachable: checked before
    const key = keyOf(node.hi, node.lo);
    const known = best.get(key)!;
    if (known < 0 || node.g > known) continue; // closed, or a stale entry
    if (node.num / space.denom <= ctl.target) {
      progress();
      return { goal: node, expansions, fallback: false };
    }
    if (expansions >= ctl.maxExpansions || best.size >= MAX_STATES) {
      heap.push(node);
      return fallback(space, ctl, start, heap, best, expansions, seq);
    }
    best.set(key, -1);
    expansions++;
    const state = stateOf(node);
    for (const m of space.successors(state)) {
      const c = child(space, node, m.layer, m.cost, m.num, 0);
      const k = keyOf(c.hi, c.lo);
      const kb = best.get(k);
      if (kb !== undefined && (kb < 0 || kb <= c.g)) continue;
      best.set(k, c.g);
      c.seq = seq.n++;
      c.h = h(c.num);
      c.f = c.g + c.h;
      heap.push(c);
      if (c.num < bestNum) bestNum = c.num;
    }
    if (expansions % YIELD_EVERY === 0) {
      progress();
      await tick();
      checkAbort(ctl);
    }
  }
}

function fallback(
  space: CompressSpace,
  ctl: SearchControl,
  start: SearchNode,
  heap: NodeHeap,
  best: Map<number, number>,
  expansions: number,
  seq: { n: number },
): SearchOutcome {
  if (ctl.onLimit === 'error')
    throw new InvalidOptionError(
      `A* expanded ${expansions} states (maxExpansions = ${ctl.maxExpansions}, at most ${MAX_STATES} known states) without reaching compression ${ctl.target}; ` +
        `raise maxExpansions, use algorithm 'greedy', or onLimit 'greedy' to complete the path greedily`,
    );
  // the most promising live open state
  let frontier: SearchNode | undefined;
  for (let n = heap.pop(); n; n = heap.pop()) {
    const known = best.get(keyOf(n.hi, n.lo))!;
    if (known >= 0 && n.g <= known) {
      frontier = n;
      break;
    }
  }
  const fromStart = greedyFrom(space, start, ctl.target, seq);
  let goal = fromStart.goal;
  let moves = fromStart.moves;
  if (frontier) {
    const fromFrontier = greedyFrom(space, frontier, ctl.target, seq);
    if (fromFrontier.goal.g <= goal.g) {
      goal = fromFrontier.goal;
      moves = fromFrontier.moves;
    }
  }
  return { goal, expansions: expansions + moves, fallback: true };
}
