// A transaction's uncommitted writes, kept in key order so reads can see them (read-your-writes)
// and commit can apply them. Two kinds of entries: point mutations (set, clear, add) and cleared
// ranges. A clearRange drops the point mutations it covers, so applying "ranges first, then points"
// at commit reproduces the order the caller made the calls in.
import { ThreeFsError } from '../errors.js';
import { applyAdd } from './atomic.js';
import { compareKeys } from './keys.js';

export type Mutation =
  | { kind: 'set'; value: Buffer }
  | { kind: 'clear' }
  /** Deltas summed (mod 2^64) on a base value that only the commit will read. */
  | { kind: 'add'; delta: bigint };

export interface PointWrite {
  key: Buffer;
  mutation: Mutation;
}

export interface KeyRange {
  begin: Buffer;
  end: Buffer;
}

/** Map key: latin1 maps each byte to one UTF-16 unit, so string order equals byte order. */
function mapKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

export class WriteOverlay {
  private readonly points = new Map<string, PointWrite>();
  /** Disjoint, non-adjacent, sorted ranges. */
  private readonly cleared: KeyRange[] = [];
  private sorted: PointWrite[] | undefined;
  private charged = 0;

  /** At least the bytes of keys and values written (overwrites count again): bounds batches. */
  get bytes(): number {
    return this.charged;
  }

  /** Point mutations plus cleared ranges: what a commit applies one by one. */
  get ops(): number {
    return this.points.size + this.cleared.length;
  }

  get isEmpty(): boolean {
    return this.points.size === 0 && this.cleared.length === 0;
  }

  set(key: Buffer, value: Buffer): void {
    this.charged += value.length;
    this.put(key, { kind: 'set', value });
  }

  clear(key: Buffer): void {
    this.put(key, { kind: 'clear' });
  }

  add(key: Buffer, delta: bigint): void {
    const prior = this.points.get(mapKey(key))?.mutation;
    if (prior?.kind === 'set') {
      this.put(key, { kind: 'set', value: applyAdd(prior.value, delta) });
    } else if (prior?.kind === 'clear' || (prior === undefined && this.isRangeCleared(key))) {
      // The base is known to be absent, so the result is known too.
      this.put(key, { kind: 'set', value: applyAdd(undefined, delta) });
    } else if (prior?.kind === 'add') {
      this.put(key, { kind: 'add', delta: BigInt.asIntN(64, prior.delta + delta) });
    } else {
      this.put(key, { kind: 'add', delta: BigInt.asIntN(64, delta) });
    }
  }

  clearRange(begin: Buffer, end: Buffer): void {
    if (compareKeys(begin, end) >= 0) return;
    this.charged += begin.length + end.length;
    for (const [name, write] of this.points) {
      if (compareKeys(write.key, begin) >= 0 && compareKeys(write.key, end) < 0) {
        this.points.delete(name);
        this.sorted = undefined;
      }
    }
    // Merge with every range it overlaps or touches, then insert in order.
    let newBegin = begin;
    let newEnd = end;
    let first = 0;
    while (
      first < this.cleared.length &&
      compareKeys((this.cleared[first] as KeyRange).end, begin) < 0
    ) {
      first++;
    }
    let last = first;
    while (
      last < this.cleared.length &&
      compareKeys((this.cleared[last] as KeyRange).begin, end) <= 0
    ) {
      const range = this.cleared[last] as KeyRange;
      if (compareKeys(range.begin, newBegin) < 0) newBegin = range.begin;
      if (compareKeys(range.end, newEnd) > 0) newEnd = range.end;
      last++;
    }
    this.cleared.splice(first, last - first, { begin: newBegin, end: newEnd });
  }

  /** The pending mutation of exactly this key, if any. */
  pointAt(key: Uint8Array): Mutation | undefined {
    return this.points.get(mapKey(key))?.mutation;
  }

  /** Whether a clearRange covers the key (a later point mutation of the key still wins). */
  isRangeCleared(key: Uint8Array): boolean {
    let low = 0;
    let high = this.cleared.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const range = this.cleared[mid] as KeyRange;
      if (compareKeys(range.end, key) <= 0) low = mid + 1;
      else high = mid;
    }
    const range = this.cleared[low];
    return range !== undefined && compareKeys(range.begin, key) <= 0;
  }

  /** Point writes with begin <= key < end, in ascending key order. */
  pointsIn(begin: Uint8Array, end: Uint8Array): PointWrite[] {
    const all = this.sortedPoints();
    let low = 0;
    let high = all.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareKeys((all[mid] as PointWrite).key, begin) < 0) low = mid + 1;
      else high = mid;
    }
    const out: PointWrite[] = [];
    for (let i = low; i < all.length; i++) {
      const write = all[i] as PointWrite;
      if (compareKeys(write.key, end) >= 0) break;
      out.push(write);
    }
    return out;
  }

  clearedRanges(): readonly KeyRange[] {
    return this.cleared;
  }

  /** Every point write, ascending: the order commit applies them in. */
  sortedPoints(): readonly PointWrite[] {
    if (this.sorted === undefined) {
      this.sorted = [...this.points.values()].sort((a, b) => compareKeys(a.key, b.key));
    }
    return this.sorted;
  }

  private put(key: Buffer, mutation: Mutation): void {
    this.charged += key.length + (mutation.kind === 'add' ? 8 : 0);
    const name = mapKey(key);
    const existing = this.points.get(name);
    if (existing !== undefined) {
      existing.mutation = mutation;
      return;
    }
    if (key.length !== name.length) {
      throw new ThreeFsError('INTERNAL', 'overlay key encoding lost bytes');
    }
    this.points.set(name, { key, mutation });
    this.sorted = undefined;
  }
}
