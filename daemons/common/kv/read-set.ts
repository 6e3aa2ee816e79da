// What a transaction's non-snapshot reads saw, and the commit-time check that it is still so.
// Optimistic concurrency by value: if every key and range a transaction read holds the same rows
// at its commit point as in its snapshot, the transaction could have run entirely at the commit
// point, so committing it there is serializable (docs/kv.md explains why).
import { compareKeys } from './keys.js';
import type { KeyValue } from './types.js';

/** Reads of the current committed state, used inside the commit's write transaction. */
export interface StoredReader {
  get(key: Buffer): Buffer | undefined;
  /** Rows with begin <= key < end, ascending. */
  scan(begin: Buffer, end: Buffer): Iterator<KeyValue>;
}

export type ReadRecord =
  | { kind: 'point'; key: Buffer; value: Buffer | undefined }
  | { kind: 'range'; begin: Buffer; end: Buffer; rows: KeyValue[] };

export class ReadSet {
  readonly records: ReadRecord[] = [];

  recordPoint(key: Buffer, value: Buffer | undefined): void {
    this.records.push({ kind: 'point', key, value });
  }

  recordRange(begin: Buffer, end: Buffer, rows: KeyValue[]): void {
    if (compareKeys(begin, end) >= 0) return;
    this.records.push({ kind: 'range', begin, end, rows });
  }

  get isEmpty(): boolean {
    return this.records.length === 0;
  }
}

function sameValue(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.equals(b);
}

/** The first record whose rows changed, or undefined when the whole read set still holds. */
export function findConflict(readSet: ReadSet, current: StoredReader): ReadRecord | undefined {
  for (const record of readSet.records) {
    if (record.kind === 'point') {
      if (!sameValue(record.value, current.get(record.key))) return record;
      continue;
    }
    const now = current.scan(record.begin, record.end);
    try {
      if (!sameRows(record.rows, now)) return record;
    } finally {
      now.return?.(); // releases the engine's cursor when the scan stopped early
    }
  }
  return undefined;
}

function sameRows(expected: readonly KeyValue[], now: Iterator<KeyValue>): boolean {
  for (const row of expected) {
    const next = now.next();
    if (next.done === true) return false;
    if (!next.value.key.equals(row.key) || !next.value.value.equals(row.value)) return false;
  }
  return now.next().done === true;
}
