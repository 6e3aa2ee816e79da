// Buffers that view blocks of a native memory pool (the RPC transport's received payloads, the
// chunk engine's read destinations). A block's ArrayBuffer lives as long as the pool, so handing
// out a view costs no new external memory (a fresh ArrayBuffer per payload would, and V8 answers
// every 64 MiB of that with a full mark-compact). A block goes back to its pool once every view of
// it has been collected.
//
// The rule that keeps this safe: a pooled Buffer is sliced with `slice()` here, never with
// `subarray()`. A subarray references the ArrayBuffer, not the view it came from, so the view
// could be collected, the block reused for other bytes, and the subarray would silently read
// them. `slice()` makes a new registered view of the same block instead.
import { markAsUntransferable } from 'node:worker_threads';
import { ThreeFsError } from './errors.js';

interface Owner {
  pool: PooledViews;
  block: number;
}

/** Which pool and block each live pooled view belongs to. */
const owners = new WeakMap<Uint8Array, Owner>();
/** Pool ArrayBuffers already marked untransferable (transferring one would detach a block). */
const marked = new WeakSet<ArrayBuffer>();

export class PooledViews {
  /** Live views per block; the block is released when its count reaches zero. */
  private readonly views = new Map<number, number>();
  private readonly registry = new FinalizationRegistry<number>((block) => this.drop(block));
  private closed = false;

  /** `release(block)` hands a block back to its native pool. */
  constructor(private readonly release: (block: number) => void) {}

  /** A Buffer over [offset, offset + length) of a pool block's ArrayBuffer. */
  view(block: number, buffer: ArrayBuffer, offset: number, length: number): Buffer {
    if (!Number.isInteger(block) || block <= 0) {
      throw new ThreeFsError('INTERNAL', `pool block id ${block}`);
    }
    if (offset < 0 || length < 0 || offset + length > buffer.byteLength) {
      throw new ThreeFsError(
        'INTERNAL',
        `view [${offset}, ${offset + length}) outside a ${buffer.byteLength}-byte block`,
      );
    }
    if (!marked.has(buffer)) {
      markAsUntransferable(buffer);
      marked.add(buffer);
    }
    const view = Buffer.from(buffer, offset, length);
    this.views.set(block, (this.views.get(block) ?? 0) + 1);
    this.registry.register(view, block, view); // the view is its own unregister token (see retire)
    owners.set(view, { pool: this, block });
    return view;
  }

  /** Blocks with live views (for tests and metrics). */
  get blocksInUse(): number {
    return this.views.size;
  }

  /** Stops releasing: the native pool is gone (its memory now belongs to the ArrayBuffers). */
  close(): void {
    this.closed = true;
    this.views.clear();
  }

  /** `view` of `block` is retired (the module's retire()): it no longer counts. */
  retire(view: Uint8Array, block: number): void {
    this.registry.unregister(view);
    this.drop(block);
  }

  private drop(block: number): void {
    const left = (this.views.get(block) ?? 0) - 1;
    if (left > 0) {
      this.views.set(block, left);
      return;
    }
    this.views.delete(block);
    if (!this.closed) this.release(block);
  }
}

/**
 * Bytes [start, end) of `data` as a Buffer that keeps their memory valid for as long as it lives:
 * a new registered view when `data` views a pool block, a plain subarray otherwise.
 */
export function slice(data: Buffer, start: number, end: number = data.length): Buffer {
  const owner = owners.get(data);
  const from = Math.max(0, Math.min(start, data.length));
  const to = Math.max(from, Math.min(end, data.length));
  if (owner === undefined) return data.subarray(from, to);
  // All of it: the view itself keeps its block (no second registration, the common whole-read case).
  if (from === 0 && to === data.length) return data;
  return owner.pool.view(
    owner.block,
    data.buffer as ArrayBuffer,
    data.byteOffset + from,
    to - from,
  );
}

/**
 * Hands the block `data` views back now rather than when the collector finds the view dead, which
 * for a view that outlived a young-generation collection is the next full GC: a storage server
 * receiving writes at hundreds of MiB/s otherwise keeps its whole pool in use between full GCs,
 * falls back to one-off allocations and provokes about two full GCs a second. For the one owner
 * of a payload once it is done with it; the caller must not read `data` again. Slices made with
 * slice() are views of their own and keep the block until they are collected or retired too
 * (slice() of the whole range returns `data` itself). A send of `data` still queued in the
 * transport holds the block natively until written. No-op for a Buffer that is no pooled view, or
 * a view already retired.
 */
export function retire(data: Uint8Array | undefined): void {
  if (data === undefined) return;
  const owner = owners.get(data);
  if (owner === undefined) return;
  owners.delete(data);
  owner.pool.retire(data, owner.block);
}

/** Whether `data` views a pool block (it must then be sliced with `slice()`). */
export function isPooled(data: Uint8Array): boolean {
  return owners.has(data);
}
