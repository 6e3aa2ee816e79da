// How an update turns the committed content into the pending content, decided as a pure function
// so each rule can be tested row by row. Copy-on-write is the rule: the pending version goes to a
// new block, and readers of the committed block are never torn. The exception is an append (or a
// zero-extending truncate) that fits in the committed block while nothing is pending: it writes in
// place past the committed length, which committed readers never read. Shrinking needs no data
// write at all: the pending version is a shorter view of the same block.
import { ThreeFsError } from '../../common/errors.js';
import type { ContentRef } from './chunk-record.js';
import { alignDown, classBytes, classFor, granuleOf, MAX_CHUNK_SIZE } from './size-classes.js';

/** A run of the new content: old bytes [start, end), the request's data, or zeros. */
export type Segment =
  | { from: 'old'; start: number; end: number }
  | { from: 'data' }
  | { from: 'zeros'; length: number };

export type UpdatePlan =
  | { kind: 'remove' }
  /** New block of class `cls` (null: empty content, no block); segments cover [0, newLength). */
  | { kind: 'cow'; newLength: number; cls: number | null; segments: Segment[] }
  /**
   * Same block; segments cover [writeFrom, newLength). writeFrom is the granule boundary at or
   * below the committed length, so the tail granule is rewritten whole (its old bytes unchanged).
   */
  | { kind: 'in-place'; newLength: number; writeFrom: number; segments: Segment[] }
  /** Same block, shorter: only the new last granule's checksum must be computed. */
  | { kind: 'shrink'; newLength: number };

export interface PlanRequest {
  kind: 'write' | 'truncate' | 'remove';
  offset: number;
  dataLength: number;
  /** truncate: the new length. */
  length: number;
  /** The chunk's capacity limit (its file's chunk size). */
  chunkSize: number;
  syncing: boolean;
}

function bad(message: string): ThreeFsError {
  return new ThreeFsError('INVALID_ARGUMENT', message);
}

function checkLength(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_CHUNK_SIZE) {
    throw bad(`${name} ${value} outside [0, ${MAX_CHUNK_SIZE}]`);
  }
}

export function checkPlanRequest(request: PlanRequest): void {
  checkLength('chunkSize', request.chunkSize);
  if (request.chunkSize === 0) throw bad('chunkSize must be positive');
  checkLength('offset', request.offset);
  checkLength('data length', request.dataLength);
  if (request.kind === 'truncate') checkLength('truncate length', request.length);
  if (request.kind === 'write' && request.syncing && request.offset !== 0) {
    throw bad('a syncing write replaces the whole chunk: offset must be 0');
  }
}

/** Segments of old content [0, oldLength) with `middle` replacing [from, to). */
function splice(oldLength: number, from: number, to: number, middle: Segment[]): Segment[] {
  const out: Segment[] = [];
  const keepHead = Math.min(from, oldLength);
  if (keepHead > 0) out.push({ from: 'old', start: 0, end: keepHead });
  if (from > oldLength) out.push({ from: 'zeros', length: from - oldLength });
  out.push(...middle);
  if (to < oldLength) out.push({ from: 'old', start: to, end: oldLength });
  return out;
}

export function planUpdate(
  committed: ContentRef,
  hasPending: boolean,
  request: PlanRequest,
): UpdatePlan {
  checkPlanRequest(request);
  if (request.kind === 'remove') return { kind: 'remove' };
  const oldLength = committed.length;
  let newLength: number;
  let segments: Segment[];
  if (request.kind === 'write') {
    const end = request.offset + request.dataLength;
    if (request.syncing) {
      newLength = request.dataLength;
      segments = [{ from: 'data' }];
    } else {
      newLength = Math.max(oldLength, end);
      segments = splice(oldLength, request.offset, end, [{ from: 'data' }]);
    }
  } else {
    newLength = request.length;
    segments =
      newLength <= oldLength
        ? newLength > 0
          ? [{ from: 'old', start: 0, end: newLength }]
          : []
        : splice(oldLength, oldLength, oldLength, [
            { from: 'zeros', length: newLength - oldLength },
          ]);
  }
  if (newLength > request.chunkSize) {
    throw bad(
      `update makes the chunk ${newLength} bytes, over its chunk size ${request.chunkSize}`,
    );
  }
  const block = committed.block;
  const inPlaceAllowed = !request.syncing && !hasPending && block !== null;
  if (inPlaceAllowed && newLength <= classBytes(block.cls)) {
    if (request.kind === 'truncate' && newLength < oldLength) return { kind: 'shrink', newLength };
    const appendOnly = request.kind === 'truncate' || request.offset >= oldLength;
    if (appendOnly) {
      const writeFrom = alignDown(oldLength, granuleOf(block.cls));
      const tail: Segment[] = [];
      if (writeFrom < oldLength) tail.push({ from: 'old', start: writeFrom, end: oldLength });
      tail.push(...segments.filter((s) => s.from !== 'old'));
      return { kind: 'in-place', newLength, writeFrom, segments: tail };
    }
  }
  return { kind: 'cow', newLength, cls: newLength === 0 ? null : classFor(newLength), segments };
}

/** Bytes of the old content a plan reads: [0, n) for copy-on-write, [n0, n1) in place. */
export function oldBytesNeeded(plan: UpdatePlan): { start: number; end: number } | null {
  if (plan.kind !== 'cow' && plan.kind !== 'in-place') return null;
  let start = Infinity;
  let end = 0;
  for (const s of plan.segments) {
    if (s.from !== 'old') continue;
    start = Math.min(start, s.start);
    end = Math.max(end, s.end);
  }
  return end > 0 ? { start, end } : null;
}
