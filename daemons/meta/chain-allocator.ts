// Chain allocation at create (brief §2.3, docs/layout.md "Allocation"): a directory's layout names
// a chain table, a chunk size and a stripe; a new file gets `stripe` consecutive table positions
// from a round-robin base index plus a random seed for the frozen shuffle. The counter is per meta
// server and per (table id, table version, stripe), and starts at a random multiple of the stripe
// so servers that start together do not all begin at position 1.
import { randomInt } from 'node:crypto';
import { ThreeFsError } from '../common/errors.js';
import type { Layout } from '../common/layout.js';
import type { ChainTableVersion } from '../common/routing.js';

/** Largest seed: seeds are safe integers so they travel in any message format without BigInt. */
const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** The stripe a file gets: the directory's, capped at the table size (more would repeat chains). */
export function effectiveStripe(stripeSize: number, tableLength: number): number {
  if (tableLength < 1) throw new ThreeFsError('FAILED_PRECONDITION', 'the chain table is empty');
  return Math.min(stripeSize, tableLength);
}

/** 1-based base index for counter value `counter` over a table of `tableLength` chains. */
export function baseIndexFor(counter: number, tableLength: number): number {
  return (counter % tableLength) + 1;
}

/** Initial dynamic stripe (brief: 16, doubling on demand up to the file's stripe). */
export const DYN_STRIPE_INITIAL = 16;

export function initialDynStripe(stripe: number): number {
  return Math.min(DYN_STRIPE_INITIAL, stripe);
}

/** The smallest dynStripe ≥ wanted reachable by doubling from `current`, capped at the stripe. */
export function grownDynStripe(current: number, wanted: number, stripe: number): number {
  let next = Math.max(1, current);
  while (next < wanted && next < stripe) next *= 2;
  return Math.min(Math.max(next, current), stripe);
}

export class ChainAllocator {
  private readonly counters = new Map<string, number>();

  constructor(
    private readonly random: (max: number) => number = (max) => randomInt(max),
    private readonly randomSeed: () => number = () => randomInt(2 ** 47) * 64 + randomInt(64), // randomInt's bound is < 2^48: compose 53 bits
  ) {}

  /** A file layout from a directory's default layout and the table version it names. */
  allocate(dirLayout: Layout, table: ChainTableVersion): Layout {
    const tableLength = table.chainIds.length;
    const stripe = effectiveStripe(dirLayout.stripeSize, tableLength);
    const key = `${table.chainTableId}/${table.version}/${stripe}`;
    let counter = this.counters.get(key);
    if (counter === undefined)
      counter = this.random(Math.max(1, Math.ceil(tableLength / stripe))) * stripe;
    const baseIndex = baseIndexFor(counter, tableLength);
    this.counters.set(key, (counter + stripe) % (tableLength * stripe));
    const seed = Math.min(this.randomSeed(), MAX_SEED);
    return {
      chainTableId: table.chainTableId,
      chainTableVersion: table.version,
      chunkSize: dirLayout.chunkSize,
      stripeSize: stripe,
      chains: { kind: 'range', baseIndex, shuffle: 'mt64-fy-v1', seed },
    };
  }
}
