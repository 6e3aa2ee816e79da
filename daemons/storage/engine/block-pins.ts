// Readers pin the block they read, so a commit that moves a chunk to a new block frees the old
// one only when the last read of it has finished (a reader of an old version is never handed a
// block that is being rewritten for someone else).
import { ThreeFsError } from '../../common/errors.js';
import type { BlockRef } from './chunk-record.js';

const keyOf = (b: BlockRef) => `${b.cls}/${b.file}/${b.block}`;

export class BlockPins {
  private readonly pins = new Map<string, number>();
  private readonly deferred = new Map<string, BlockRef>();

  constructor(private readonly free: (block: BlockRef) => void) {}

  pin(block: BlockRef): void {
    const key = keyOf(block);
    if (this.deferred.has(key)) {
      throw new ThreeFsError('INTERNAL', `pin of block ${key} after it was released`);
    }
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
  }

  unpin(block: BlockRef): void {
    const key = keyOf(block);
    const count = this.pins.get(key);
    if (count === undefined) throw new ThreeFsError('INTERNAL', `unpin of unpinned block ${key}`);
    if (count > 1) {
      this.pins.set(key, count - 1);
      return;
    }
    this.pins.delete(key);
    const waiting = this.deferred.get(key);
    if (waiting) {
      this.deferred.delete(key);
      this.free(waiting);
    }
  }

  /** Frees the block now, or when its last reader unpins it. */
  release(block: BlockRef): void {
    const key = keyOf(block);
    if (this.pins.has(key)) this.deferred.set(key, block);
    else this.free(block);
  }

  get pinnedCount(): number {
    return this.pins.size;
  }
}
