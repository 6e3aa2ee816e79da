// Placement: which targets exist and how they form chains (brief §2.1–§2.2). Every node holds the
// same number of targets, each chain's targets sit on distinct nodes, and how often two nodes share
// a chain is as even as we can make it, so that when a node fails its recovery reads spread over
// all the others instead of a few fixed partners. Pure and deterministic: the same input always
// gives the same output, so an operator can regenerate and diff.
import { ThreeFsError } from '../common/errors.js';

export interface PlacementInput {
  /** Node ids of the storage nodes (distinct). */
  nodeIds: readonly number[];
  disksPerNode: number;
  targetsPerDisk: number;
  replication: number;
  chainTableId?: number;
}

export interface PlacedTarget {
  targetId: number;
  nodeId: number;
  diskIndex: number;
  chainId: number;
}

export interface PlacedChain {
  chainId: number;
  /** Head first. */
  targetIds: number[];
}

export interface Placement {
  targets: PlacedTarget[];
  chains: PlacedChain[];
  chainTable: { chainTableId: number; chainIds: number[] };
  stats: PlacementStats;
}

export interface PlacementStats {
  /** Largest number of chains any two nodes share. */
  maxPairCooccurrence: number;
  /** ceil(r·d·(k−1)/(v−1)): no placement can do better. */
  lowerBound: number;
  /** Most and fewest chains any node heads. */
  maxHeads: number;
  minHeads: number;
}

// Id conventions of 3FS's generator (brief §2.1), so ids read the same to anyone who knows 3FS:
// target = (nodeId·1000 + disk+1)·100 + slot+1, chain = (disk+1)·100000 + index.
export function targetIdOf(nodeId: number, diskIndex: number, slot: number): number {
  return (nodeId * 1000 + diskIndex + 1) * 100 + slot + 1;
}

export function chainIdOf(diskIndex: number, chainIndex: number): number {
  return (diskIndex + 1) * 100_000 + chainIndex;
}

export function placementLowerBound(v: number, d: number, r: number, k: number): number {
  return v <= 1 ? 0 : Math.ceil((r * d * (k - 1)) / (v - 1));
}

function validate(input: PlacementInput): void {
  const { nodeIds, disksPerNode: d, targetsPerDisk: r, replication: k } = input;
  const bad = (why: string) => {
    throw new ThreeFsError('INVALID_ARGUMENT', `placement: ${why}`);
  };
  const positive = (name: string, value: number, max: number) => {
    if (!Number.isInteger(value) || value < 1 || value > max)
      bad(`${name} must be an integer in 1..${max}, got ${value}`);
  };
  positive('disks per node', d, 64);
  positive('targets per disk', r, 999);
  positive('replication', k, 16);
  if (nodeIds.length < k) bad(`replication ${k} needs at least ${k} nodes, got ${nodeIds.length}`);
  if (nodeIds.length > 5000) bad(`at most 5000 nodes, got ${nodeIds.length}`);
  if (new Set(nodeIds).size !== nodeIds.length) bad('node ids must be distinct');
  for (const id of nodeIds)
    if (!Number.isInteger(id) || id < 1 || id > 999_999) bad(`node id ${id} out of 1..999999`);
  if ((nodeIds.length * r) % k !== 0) {
    bad(`nodes × targets per disk (${nodeIds.length}×${r}) must be a multiple of replication ${k}`);
  }
  if ((nodeIds.length * r) / k >= 100_000) bad('too many chains per disk index (limit 99999)');
}

/** Pairwise co-occurrence counts between node positions, kept as a flat v×v matrix. */
class PairCounts {
  readonly counts: Uint32Array;
  constructor(readonly v: number) {
    this.counts = new Uint32Array(v * v);
  }
  get(a: number, b: number): number {
    return this.counts[a * this.v + b] as number;
  }
  add(members: readonly number[], delta: 1 | -1): void {
    for (const a of members) {
      for (const b of members) {
        if (a !== b) this.counts[a * this.v + b] = (this.counts[a * this.v + b] as number) + delta;
      }
    }
  }
  max(): number {
    let max = 0;
    for (const c of this.counts) if (c > max) max = c;
    return max;
  }
}

/**
 * Builds the chains of one disk index greedily: each chain takes the nodes that must go in now
 * (they have as many slots left as there are chains left), then adds the node that least raises
 * its worst pair count with the chain so far. Keeping every node's remaining slots at most the
 * number of chains left guarantees the construction never dead-ends.
 */
function buildDisk(v: number, r: number, k: number, pairs: PairCounts): number[][] {
  const chainCount = (v * r) / k;
  const remaining = new Array<number>(v).fill(r);
  const chains: number[][] = [];
  for (let c = 0; c < chainCount; c++) {
    const chainsLeft = chainCount - c;
    const members: number[] = [];
    for (let n = 0; n < v; n++) if (remaining[n] === chainsLeft) members.push(n);
    if (members.length > k) {
      throw new ThreeFsError(
        'INTERNAL',
        `placement: ${members.length} nodes must join one chain of ${k}`,
      );
    }
    while (members.length < k) {
      let best = -1;
      let bestWorst = Infinity;
      let bestSum = Infinity;
      for (let n = 0; n < v; n++) {
        if ((remaining[n] as number) === 0 || members.includes(n)) continue;
        let worst = 0;
        let sum = 0;
        for (const m of members) {
          const count = pairs.get(n, m);
          sum += count;
          if (count > worst) worst = count;
        }
        // Prefer low worst pair, then low total, then nodes with more slots left (keeps options open).
        if (
          worst < bestWorst ||
          (worst === bestWorst && sum < bestSum) ||
          (worst === bestWorst &&
            sum === bestSum &&
            (remaining[n] as number) > (remaining[best] as number))
        ) {
          best = n;
          bestWorst = worst;
          bestSum = sum;
        }
      }
      if (best < 0) throw new ThreeFsError('INTERNAL', 'placement: no node left for a chain');
      members.push(best);
    }
    for (const m of members) remaining[m] = (remaining[m] as number) - 1;
    pairs.add(members, 1);
    chains.push(members);
  }
  return chains;
}

/** The cost of a pair count: squares punish the worst pairs most, so sums of it even things out. */
function cost(count: number): number {
  return count * count;
}

/**
 * Local search: move a node of an over-shared pair into another chain of the same disk index in
 * exchange for one of that chain's nodes, when the swap lowers the total squared co-occurrence.
 * Bounded by passes and by time, so large clusters still generate in seconds.
 */
function improve(disks: number[][][], pairs: PairCounts, deadline: number): void {
  const swapDelta = (chainA: number[], a: number, chainB: number[], b: number): number => {
    let delta = 0;
    for (const m of chainA) {
      if (m === a) continue;
      delta +=
        cost(pairs.get(b, m) + 1) -
        cost(pairs.get(b, m)) +
        cost(pairs.get(a, m) - 1) -
        cost(pairs.get(a, m));
    }
    for (const m of chainB) {
      if (m === b) continue;
      delta +=
        cost(pairs.get(a, m) + 1) -
        cost(pairs.get(a, m)) +
        cost(pairs.get(b, m) - 1) -
        cost(pairs.get(b, m));
    }
    return 2 * delta; // the matrix is symmetric
  };
  for (let pass = 0; pass < 50 && Date.now() < deadline; pass++) {
    let improved = false;
    const target = pairs.max();
    for (const chains of disks) {
      for (const chainA of chains) {
        for (let ai = 0; ai < chainA.length; ai++) {
          const a = chainA[ai] as number;
          // Only nodes in a worst pair are worth moving.
          if (!chainA.some((m) => m !== a && pairs.get(a, m) >= target)) continue;
          for (const chainB of chains) {
            if (chainB === chainA || chainB.includes(a)) continue;
            for (let bi = 0; bi < chainB.length; bi++) {
              const b = chainB[bi] as number;
              if (chainA.includes(b)) continue;
              if (swapDelta(chainA, a, chainB, b) >= 0) continue;
              pairs.add(chainA, -1);
              pairs.add(chainB, -1);
              chainA[ai] = b;
              chainB[bi] = a;
              pairs.add(chainA, 1);
              pairs.add(chainB, 1);
              improved = true;
              break;
            }
            if (chainA[ai] !== a) break;
          }
        }
        if (Date.now() > deadline) return;
      }
    }
    if (!improved) return;
  }
}

/**
 * Rotates each chain so heads spread evenly over nodes: writes enter at the head, so a node that
 * heads many chains takes more client traffic.
 */
function balanceHeads(disks: number[][][], v: number): number[] {
  const heads = new Array<number>(v).fill(0);
  for (const chains of disks) {
    for (const chain of chains) {
      let bestIndex = 0;
      for (let i = 1; i < chain.length; i++) {
        if ((heads[chain[i] as number] as number) < (heads[chain[bestIndex] as number] as number))
          bestIndex = i;
      }
      const rotated = [...chain.slice(bestIndex), ...chain.slice(0, bestIndex)];
      chain.splice(0, chain.length, ...rotated);
      heads[chain[0] as number] = (heads[chain[0] as number] as number) + 1;
    }
  }
  return heads;
}

export function generatePlacement(input: PlacementInput, timeBudgetMs = 5_000): Placement {
  validate(input);
  const nodeIds = [...input.nodeIds].sort((a, b) => a - b);
  const v = nodeIds.length;
  const { disksPerNode: d, targetsPerDisk: r, replication: k } = input;
  const pairs = new PairCounts(v);
  const disks: number[][][] = [];
  for (let disk = 0; disk < d; disk++) disks.push(buildDisk(v, r, k, pairs));
  improve(disks, pairs, Date.now() + timeBudgetMs);
  const heads = balanceHeads(disks, v);

  const targets: PlacedTarget[] = [];
  const chains: PlacedChain[] = [];
  const nextSlot = new Map<string, number>();
  disks.forEach((diskChains, diskIndex) => {
    diskChains.forEach((members, index) => {
      const chainId = chainIdOf(diskIndex, index + 1);
      const targetIds = members.map((position) => {
        const nodeId = nodeIds[position] as number;
        const key = `${nodeId}/${diskIndex}`;
        const slot = nextSlot.get(key) ?? 0;
        nextSlot.set(key, slot + 1);
        const targetId = targetIdOf(nodeId, diskIndex, slot);
        targets.push({ targetId, nodeId, diskIndex, chainId });
        return targetId;
      });
      chains.push({ chainId, targetIds });
    });
  });
  targets.sort((a, b) => a.targetId - b.targetId);

  // Table order interleaves disk indices so consecutive chains of a file's stripe use different disks.
  const chainsPerDisk = (v * r) / k;
  const chainIds: number[] = [];
  for (let index = 1; index <= chainsPerDisk; index++) {
    for (let disk = 0; disk < d; disk++) chainIds.push(chainIdOf(disk, index));
  }

  return {
    targets,
    chains,
    chainTable: { chainTableId: input.chainTableId ?? 1, chainIds },
    stats: {
      maxPairCooccurrence: pairs.max(),
      lowerBound: placementLowerBound(v, d, r, k),
      maxHeads: Math.max(...heads),
      minHeads: Math.min(...heads),
    },
  };
}
