// getRange with read-your-writes: the stored rows of a range merged with the transaction's own
// uncommitted writes, in one pass that stops at the limit. Also reports which stored rows the
// result depended on, so the embedded engine can re-check exactly those at commit.
import { ThreeFsError } from '../errors.js';
import { applyAdd } from './atomic.js';
import { compareKeys, keyAfter } from './keys.js';
import type { KeyRange, WriteOverlay } from './overlay.js';
import type { KeyValue } from './types.js';

export interface MergedRange {
  rows: KeyValue[];
  /**
   * The part of [begin, end) the result depends on: all of it, or when the limit cut the scan,
   * up to and including the last row returned (FoundationDB's read-conflict range works the same).
   */
  depends: KeyRange;
  /** Stored rows inside `depends`, ascending: what a commit-time re-read must find unchanged. */
  stored: KeyValue[];
}

/**
 * `storedRows` yields the stored rows of [begin, end) in scan order (descending when reverse) and
 * is consumed lazily, so a limited scan of a huge range reads only what it needs.
 */
export function mergeRange(
  storedRows: Iterator<KeyValue>,
  overlay: WriteOverlay,
  begin: Buffer,
  end: Buffer,
  limit: number | undefined,
  reverse: boolean,
): MergedRange {
  const points = overlay.pointsIn(begin, end);
  if (reverse) points.reverse();
  const order = reverse
    ? (a: Uint8Array, b: Uint8Array) => compareKeys(b, a)
    : (a: Uint8Array, b: Uint8Array) => compareKeys(a, b);

  const rows: KeyValue[] = [];
  const stored: KeyValue[] = [];
  let nextStored = pull(storedRows, begin, end);
  let pointIndex = 0;
  while (limit === undefined || rows.length < limit) {
    const point = points[pointIndex];
    if (nextStored === undefined && point === undefined) break;
    const cmp =
      nextStored === undefined ? 1 : point === undefined ? -1 : order(nextStored.key, point.key);
    if (cmp < 0) {
      const row = nextStored as KeyValue;
      stored.push(row);
      if (!overlay.isRangeCleared(row.key)) rows.push(row);
      nextStored = pull(storedRows, begin, end);
      continue;
    }
    const base = cmp === 0 ? (nextStored as KeyValue) : undefined;
    if (base !== undefined) {
      stored.push(base);
      nextStored = pull(storedRows, begin, end);
    }
    const { key, mutation } = point as {
      key: Buffer;
      mutation: (typeof points)[number]['mutation'];
    };
    if (mutation.kind === 'set') rows.push({ key, value: mutation.value });
    else if (mutation.kind === 'add')
      rows.push({ key, value: applyAdd(base?.value, mutation.delta) });
    pointIndex++;
  }

  const cut = limit !== undefined && rows.length >= limit ? rows[rows.length - 1] : undefined;
  const depends: KeyRange =
    cut === undefined
      ? { begin, end }
      : reverse
        ? { begin: cut.key, end }
        : { begin, end: keyAfter(cut.key) };
  if (reverse) stored.reverse();
  return { rows, depends, stored };
}

/** The next stored row, checking the engine kept to the range (a broken scan is a bug). */
function pull(rows: Iterator<KeyValue>, begin: Buffer, end: Buffer): KeyValue | undefined {
  const next = rows.next();
  if (next.done === true) return undefined;
  const row = next.value;
  if (compareKeys(row.key, begin) < 0 || compareKeys(row.key, end) >= 0) {
    throw new ThreeFsError('INTERNAL', 'storage engine returned a row outside the scanned range');
  }
  return row;
}
