/**
 * Exact multiple-choice knapsack (minimisation form): pick one choice per group so that the total
 * cost stays within a capacity and the total value (FIT) is least.
 *
 * Method (exact, see README "search"):
 * 1. Per group, drop dominated choices (keep the Pareto list: cost up, value strictly down) and take
 *    the lower convex hull of what is left.
 * 2. LP relaxation / Lagrangian dual: merge every group's hull segments by slope (value saved per
 *    unit of cost) and walk them greedily from the all-cheapest configuration. The segment that no
 *    longer fits gives the multiplier lambda* and the lower bound LB = G(lambda*) - lambda* cap, with
 *    G(lambda) = sum_g min_j (value_gj + lambda cost_gj). The greedy integer prefix, improved by
 *    single-group upgrades into the budget left over, is the first incumbent UB.
 * 3. Reduced-cost fixing: for any feasible x, value(x) >= LB + sum_g r_g,x_g with
 *    r_gj = value_gj + lambda* cost_gj - min_k (value_gk + lambda* cost_gk) >= 0, so a solution better
 *    than UB uses only choices with r_gj <= UB - LB. Groups left with one such choice are fixed.
 * 4. The remaining groups are solved by a dynamic programme over Pareto states (cost, value):
 *    after each group the states are sorted and dominated ones dropped; a state is cut when its cost
 *    plus the cheapest completion exceeds the capacity, or when its value plus the LP bound of the
 *    groups still to come (with the budget left) exceeds UB. The greedy completion of every state
 *    improves UB as it goes, and the DP stops as soon as UB meets LB. Nothing that could beat UB is
 *    ever cut, so the best final state (or UB when every state was cut) is the optimum; float
 *    slack (1e-10 relative) only ever keeps more states.
 * Work: typically a few hundred states for hundreds of layers (most layers are fixed in step 3).
 * The worst case is pseudo-polynomial: when all layers trade value for cost at the same rate the
 * problem is subset-sum-like and the Pareto states can number up to the distinct reachable costs.
 * The frontier (convexFrontier) is the hull walk of step 2 taken to the end: every configuration
 * on it minimises value + lambda cost for some lambda, hence is optimal for its own cost.
 */

export interface Choice {
  cost: number;
  value: number;
}

export interface KnapsackSolution {
  /** the chosen choice index per group */
  picks: number[];
  cost: number;
  value: number;
  /** DP states kept over all groups (a measure of the work) */
  states: number;
  /** groups the DP branched on after reduced-cost fixing */
  branching: number;
}

export interface FrontierPick {
  picks: number[];
  cost: number;
  value: number;
}

interface Group {
  /** original choice indices, Pareto order (cost increasing, value strictly decreasing) */
  idx: number[];
  cost: number[];
  value: number[];
  /** positions (into idx) of the lower convex hull, first = cheapest, last = least value */
  hull: number[];
}

/** Dominated choices out: cost ascending, value strictly descending. */
export function paretoOrder(choices: readonly Choice[]): number[] {
  const order = choices.map((_, i) => i).sort((a, b) => choices[a]!.cost - choices[b]!.cost || choices[a]!.value - choices[b]!.value || a - b);
  const out: number[] = [];
  let best = Infinity;
  for (const i of order) {
    if (choices[i]!.value < best) {
      out.push(i);
      best = choices[i]!.value;
    }
  }
  return out;
}

/** Lower convex hull of points sorted by cost ascending, value descending (positions). */
function lowerHull(cost: number[], value: number[]): number[] {
  const h: number[] = [];
  for (let p = 0; p < cost.length; p++) {
    while (h.length >= 2) {
      const a = h[h.length - 2]!;
      const b = h[h.length - 1]!;
      // drop b unless slope(a,b) > slope(b,p) (value saved per cost)
      if ((value[a]! - value[b]!) * (cost[p]! - cost[b]!) <= (value[b]! - value[p]!) * (cost[b]! - cost[a]!)) h.pop();
      else break;
    }
    h.push(p);
  }
  return h;
}

function makeGroup(choices: readonly Choice[], keep?: (i: number) => boolean): Group {
  const idx = paretoOrder(choices).filter((i) => !keep || keep(i));
  const cost = idx.map((i) => choices[i]!.cost);
  const value = idx.map((i) => choices[i]!.value);
  return { idx, cost, value, hull: lowerHull(cost, value) };
}

/** Hull segments of several groups, sorted by slope (steepest first); ties by group, then position. */
interface Segments {
  group: Int32Array;
  dCost: Float64Array;
  dValue: Float64Array;
}

function sortedSegments(groups: Group[]): Segments {
  let n = 0;
  for (const g of groups) n += g.hull.length - 1;
  const g = new Int32Array(n);
  const k = new Int32Array(n);
  const dc = new Float64Array(n);
  const dv = new Float64Array(n);
  const slope = new Float64Array(n);
  let i = 0;
  groups.forEach((gr, gi) => {
    for (let s = 1; s < gr.hull.length; s++, i++) {
      const a = gr.hull[s - 1]!;
      const b = gr.hull[s]!;
      g[i] = gi;
      k[i] = s;
      dc[i] = gr.cost[b]! - gr.cost[a]!;
      dv[i] = gr.value[a]! - gr.value[b]!;
      slope[i] = dv[i]! / dc[i]!;
    }
  });
  const order = new Uint32Array(n);
  for (let j = 0; j < n; j++) order[j] = j;
  order.sort((a, b) => slope[b]! - slope[a]! || g[a]! - g[b]! || k[a]! - k[b]!);
  const out = { group: new Int32Array(n), dCost: new Float64Array(n), dValue: new Float64Array(n) };
  for (let j = 0; j < n; j++) {
    const o = order[j]!;
    out.group[j] = g[o]!;
    out.dCost[j] = dc[o]!;
    out.dValue[j] = dv[o]!;
  }
  return out;
}

/** The hull walk as a start configuration and single-group moves (see convexFrontier). */
export interface FrontierWalk {
  start: FrontierPick;
  /** each step moves one group to a new choice; cost and value are the totals after it */
  steps: { group: number; pick: number; cost: number; value: number }[];
}

export function convexFrontierWalk(choices: readonly (readonly Choice[])[]): FrontierWalk {
  const groups = choices.map((c) => makeGroup(c));
  const seg = sortedSegments(groups);
  const at = groups.map(() => 0);
  let cost = groups.reduce((a, g) => a + g.cost[0]!, 0);
  let value = groups.reduce((a, g) => a + g.value[0]!, 0);
  const start = { picks: groups.map((g) => g.idx[0]!), cost, value };
  const steps: FrontierWalk['steps'] = [];
  for (let s = 0; s < seg.group.length; s++) {
    const gi = seg.group[s]!;
    const g = groups[gi]!;
    const pos = g.hull[++at[gi]!]!;
    cost += seg.dCost[s]!;
    value -= seg.dValue[s]!;
    steps.push({ group: gi, pick: g.idx[pos]!, cost, value });
  }
  return { start, steps };
}

/**
 * The supported Pareto points: every configuration the greedy hull walk passes through, from the
 * all-cheapest to the all-best. Each one is the exact optimum for a capacity equal to its cost.
 */
export function convexFrontier(choices: readonly (readonly Choice[])[]): FrontierPick[] {
  const { start, steps } = convexFrontierWalk(choices);
  const out: FrontierPick[] = [start];
  let picks = start.picks;
  for (const s of steps) {
    picks = picks.slice();
    picks[s.group] = s.pick;
    out.push({ picks, cost: s.cost, value: s.value });
  }
  return out;
}

/** Cumulative sums of sorted segments, for the LP bound of a set of groups. */
interface Lp {
  minCost: number;
  baseValue: number;
  cumCost: Float64Array;
  cumDrop: Float64Array;
  /** segments in use (cumCost[0..size]) */
  size: number;
}

function lpOf(groups: Group[], seg: Segments, member: (g: number) => boolean): Lp {
  let minCost = 0;
  let baseValue = 0;
  groups.forEach((g, i) => {
    if (member(i)) {
      minCost += g.cost[0]!;
      baseValue += g.value[0]!;
    }
  });
  let n = 0;
  for (let s = 0; s < seg.group.length; s++) if (member(seg.group[s]!)) n++;
  const cumCost = new Float64Array(n + 1);
  const cumDrop = new Float64Array(n + 1);
  for (let s = 0, i = 0; s < seg.group.length; s++) {
    if (!member(seg.group[s]!)) continue;
    cumCost[i + 1] = cumCost[i]! + seg.dCost[s]!;
    cumDrop[i + 1] = cumDrop[i]! + seg.dValue[s]!;
    i++;
  }
  return { minCost, baseValue, cumCost, cumDrop, size: n };
}

/** Number of whole segments that fit in `extra` (largest i with cumCost[i] <= extra). */
function segmentsFitting(lp: Lp, extra: number): number {
  let lo = 0;
  let hi = lp.size;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lp.cumCost[mid]! <= extra) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The greedy integer configuration of a set of groups: the first `n` sorted segments taken. */
function greedyPicks(groups: Group[], seg: Segments, member: (g: number) => boolean, n: number, picks: number[]): void {
  const at = new Map<number, number>();
  let taken = 0;
  for (let s = 0; s < seg.group.length && taken < n; s++) {
    const g = seg.group[s]!;
    if (!member(g)) continue;
    at.set(g, (at.get(g) ?? 0) + 1);
    taken++;
  }
  groups.forEach((gr, g) => {
    if (member(g)) picks[g] = gr.hull[at.get(g) ?? 0]!;
  });
}

/** Pareto positions per group -> value and cost. */
function total(groups: Group[], pos: number[]): { cost: number; value: number } {
  let cost = 0;
  let value = 0;
  groups.forEach((g, i) => {
    cost += g.cost[pos[i]!]!;
    value += g.value[pos[i]!]!;
  });
  return { cost, value };
}

/**
 * The exact optimum: least total value with total cost <= capacity.
 * Returns null when even the cheapest configuration exceeds the capacity.
 */
export function solveKnapsack(choices: readonly (readonly Choice[])[], capacity: number): KnapsackSolution | null {
  const groups = choices.map((c) => makeGroup(c));
  const finish = (pos: number[], states: number, branching: number): KnapsackSolution => {
    const t = total(groups, pos);
    return { picks: groups.map((g, i) => g.idx[pos[i]!]!), cost: t.cost, value: t.value, states, branching };
  };
  const cheapest = groups.map(() => 0);
  if (total(groups, cheapest).cost > capacity) return null;
  const best = groups.map((g) => g.idx.length - 1);
  if (total(groups, best).cost <= capacity) return finish(best, 0, 0);

  // 2. LP relaxation: lambda*, LB, and a greedy incumbent
  const seg = sortedSegments(groups);
  const all = () => true;
  const lp0 = lpOf(groups, seg, all);
  const whole = segmentsFitting(lp0, capacity - lp0.minCost);
  const lambda = whole < seg.group.length ? seg.dValue[whole]! / seg.dCost[whole]! : 0;
  let gl = 0;
  const minReduced = groups.map((g) => {
    let m = Infinity;
    for (let j = 0; j < g.idx.length; j++) m = Math.min(m, g.value[j]! + lambda * g.cost[j]!);
    gl += m;
    return m;
  });
  const lowerBound = gl - lambda * capacity;
  let incumbent = cheapest.slice();
  greedyPicks(groups, seg, all, whole, incumbent);
  incumbent = improve(groups, incumbent, capacity);
  let ub = total(groups, incumbent).value;
  // float slack: relative to the incumbent and to the magnitudes that were summed (only ever keeps more)
  const scale = groups.reduce((a, g) => a + g.value[0]!, 0) + lambda * Math.abs(capacity);
  const tol = (x: number) => 1e-10 * Math.abs(x) + 1e-12 * scale + 1e-300;

  // 3. reduced-cost fixing
  const gap = ub - lowerBound;
  const keep = groups.map((g, gi) => {
    const out: number[] = [];
    for (let j = 0; j < g.idx.length; j++) if (g.value[j]! + lambda * g.cost[j]! - minReduced[gi]! <= gap + tol(ub)) out.push(j);
    return out;
  });
  let fixedCost = 0;
  let fixedValue = 0;
  const branch: number[] = [];
  keep.forEach((k, gi) => {
    if (k.length === 1) {
      fixedCost += groups[gi]!.cost[k[0]!]!;
      fixedValue += groups[gi]!.value[k[0]!]!;
    } else if (k.length > 1) branch.push(gi);
  });
  // (a group with no kept choice cannot happen: its minimiser has r = 0)

  // 4. DP over the branching groups (restricted to kept choices); larger cost ranges first
  branch.sort((a, b) => {
    const ra = groups[a]!.cost[keep[a]!.at(-1)!]! - groups[a]!.cost[keep[a]![0]!]!;
    const rb = groups[b]!.cost[keep[b]!.at(-1)!]! - groups[b]!.cost[keep[b]![0]!]!;
    return rb - ra || a - b;
  });
  const sub = branch.map((gi) => makeGroup(keep[gi]!.map((j) => ({ cost: groups[gi]!.cost[j]!, value: groups[gi]!.value[j]! }))));
  const B = sub.length;
  const cap = capacity - fixedCost;
  const subSeg = sortedSegments(sub);
  // LP data of the sub-groups still to come (k..B-1), shrunk in place level by level
  const lp = lpOf(sub, subSeg, () => true);
  const live = { group: subSeg.group.slice(), dCost: subSeg.dCost.slice(), dValue: subSeg.dValue.slice(), n: subSeg.group.length };
  const drop = (k: number) => {
    lp.minCost -= sub[k]!.cost[0]!;
    lp.baseValue -= sub[k]!.value[0]!;
    let j = 0;
    for (let i = 0; i < live.n; i++) {
      if (live.group[i] === k) continue;
      live.group[j] = live.group[i]!;
      live.dCost[j] = live.dCost[i]!;
      live.dValue[j] = live.dValue[i]!;
      lp.cumCost[j + 1] = lp.cumCost[j]! + live.dCost[j]!;
      lp.cumDrop[j + 1] = lp.cumDrop[j]! + live.dValue[j]!;
      j++;
    }
    live.n = j;
    lp.size = j;
  };

  // no state at all when the fixed part leaves no room (then nothing beats the incumbent)
  let costs = cap >= lp.minCost ? new Float64Array([0]) : new Float64Array(0);
  let values = cap >= lp.minCost ? new Float64Array([fixedValue]) : new Float64Array(0);
  const parents: Int32Array[] = [];
  const opts: Int32Array[] = [];
  let states = 1;
  /** the best greedy completion: after level `level` state `state`, sub-groups level.. greedy */
  let record: { level: number; state: number; n: number } | undefined;

  for (let k = 0; k < B && costs.length > 0 && ub - lowerBound > tol(ub); k++) {
    const g = sub[k]!;
    const m = g.idx.length;
    drop(k);
    const n = costs.length;
    const nc = new Float64Array(n * m);
    const nv = new Float64Array(n * m);
    const np = new Int32Array(n * m);
    const no = new Int32Array(n * m);
    let cnt = 0;
    for (let s = 0; s < n; s++) {
      for (let o = 0; o < m; o++) {
        const c = costs[s]! + g.cost[o]!;
        const extra = cap - c - lp.minCost;
        if (extra < 0) break; // costs grow with o
        const v = values[s]! + g.value[o]!;
        const i = segmentsFitting(lp, extra);
        const base = v + lp.baseValue - lp.cumDrop[i]!;
        const frac = i < lp.size ? ((lp.cumDrop[i + 1]! - lp.cumDrop[i]!) / (lp.cumCost[i + 1]! - lp.cumCost[i]!)) * (extra - lp.cumCost[i]!) : 0;
        if (base - frac > ub + tol(ub)) continue;
        nc[cnt] = c;
        nv[cnt] = v;
        np[cnt] = s;
        no[cnt] = o;
        if (base < ub) {
          ub = base;
          record = { level: k + 1, state: cnt, n: i };
        }
        cnt++;
      }
    }
    // sort by (cost, value) and keep the Pareto states
    const order = new Uint32Array(cnt);
    for (let i = 0; i < cnt; i++) order[i] = i;
    order.sort((a, b) => nc[a]! - nc[b]! || nv[a]! - nv[b]!);
    const kc: number[] = [];
    const kv: number[] = [];
    const kp: number[] = [];
    const ko: number[] = [];
    let bestV = Infinity;
    const remap = record?.level === k + 1 ? new Int32Array(cnt).fill(-1) : undefined;
    for (const i of order) {
      if (nv[i]! < bestV) {
        bestV = nv[i]!;
        if (remap) remap[i] = kc.length;
        kc.push(nc[i]!);
        kv.push(nv[i]!);
        kp.push(np[i]!);
        ko.push(no[i]!);
      } else if (remap) {
        // a dominated state: the last kept one costs no more and is no worse, so the record's
        // greedy completion (the same segments) stays feasible and no worse from there
        remap[i] = kc.length - 1;
      }
    }
    if (remap && record) record.state = remap[record.state]!;
    costs = Float64Array.from(kc);
    values = Float64Array.from(kv);
    parents.push(Int32Array.from(kp));
    opts.push(Int32Array.from(ko));
    states += kc.length;
    // an incumbent at the LP bound is optimal (up to float slack): stop
    if (kc.length === 0 || ub - lowerBound <= tol(ub)) break;
  }

  const pos = groups.map((_, gi) => keep[gi]![0] ?? 0);
  const walk = (level: number, state: number) => {
    for (let k = level - 1; k >= 0; k--) {
      const gi = branch[k]!;
      pos[gi] = keep[gi]![sub[k]!.idx[opts[k]![state]!]!]!;
      state = parents[k]![state]!;
    }
  };
  let bestState = -1;
  if (parents.length === B && costs.length > 0) {
    bestState = 0;
    for (let s = 1; s < values.length; s++) if (values[s]! < values[bestState]!) bestState = s;
  }
  const incumbentValue = total(groups, incumbent).value;
  const finalValue = bestState >= 0 ? values[bestState]! : Infinity;
  if (finalValue <= ub + tol(ub) && finalValue <= incumbentValue) {
    walk(B, bestState);
    return finish(pos, states, B);
  }
  if (record && ub < incumbentValue) {
    walk(record.level, record.state);
    const picks: number[] = new Array(B).fill(0);
    greedyPicks(sub, subSeg, (g) => g >= record!.level, record.n, picks);
    for (let k = record.level; k < B; k++) pos[branch[k]!] = keep[branch[k]!]![sub[k]!.idx[picks[k]!]!]!;
    return finish(pos, states, B);
  }
  return finish(incumbent, states, B);
}

/** Upgrades single groups into the budget left over while that lowers the value. */
function improve(groups: Group[], pos: number[], capacity: number): number[] {
  const out = pos.slice();
  let left = capacity - total(groups, out).cost;
  for (let iter = 0; iter < groups.length; iter++) {
    let bg = -1;
    let bj = -1;
    let gain = 0;
    groups.forEach((g, gi) => {
      const cur = out[gi]!;
      for (let j = cur + 1; j < g.idx.length; j++) {
        if (g.cost[j]! - g.cost[cur]! > left) break;
        const d = g.value[cur]! - g.value[j]!;
        if (d > gain) {
          gain = d;
          bg = gi;
          bj = j;
        }
      }
    });
    if (bg < 0) break;
    left -= groups[bg]!.cost[bj]! - groups[bg]!.cost[out[bg]!]!;
    out[bg] = bj;
  }
  return out;
}
