// Block allocation within the preallocated data files: per size class, `filesPerClass` files, each
// a growing run of blocks with a bitmap (one bit per block, set = in use). Free blocks already
// preallocated are reused before a file grows; growth reserves a contiguous extent with fallocate
// (up to a group of 256 blocks at once, capped in bytes) so chunks do not fragment. The state is
// in memory only: at open it is rebuilt from the chunk records (markUsed), so a block no record
// names is free after a crash, and nothing can disagree with the records.
import { ThreeFsError } from '../../common/errors.js';
import type { BlockRef } from './chunk-record.js';
import { CLASS_COUNT, classBytes } from './size-classes.js';

export const BLOCKS_PER_GROUP = 256;

/** Grows data file `file` of class `cls` from `fromBlock` by `count` blocks (fallocate). */
export type ExtendFile = (
  cls: number,
  file: number,
  fromBlock: number,
  count: number,
) => Promise<void>;

class FileSpace {
  bits = new Uint8Array(0);
  /** Blocks preallocated on disk. */
  extent = 0;
  used = 0;
  /** No free block below this index. */
  hint = 0;

  isUsed(block: number): boolean {
    return ((this.bits[block >> 3] ?? 0) & (1 << (block & 7))) !== 0;
  }

  setExtent(blocks: number): void {
    if (blocks > this.bits.length * 8) {
      const grown = new Uint8Array(Math.max(Math.ceil(blocks / 8), this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.extent = Math.max(this.extent, blocks);
  }

  set(block: number, used: boolean): void {
    const i = block >> 3;
    const mask = 1 << (block & 7);
    const byte = this.bits[i] ?? 0;
    this.bits[i] = used ? byte | mask : byte & ~mask;
  }

  takeFree(): number {
    for (let block = this.hint; block < this.extent; block++) {
      if ((this.bits[block >> 3] ?? 0) === 0xff) {
        block |= 7; // a full byte: the loop's ++ moves on to the next one
        continue;
      }
      if (!this.isUsed(block)) {
        this.set(block, true);
        this.used++;
        this.hint = block + 1;
        return block;
      }
    }
    throw new ThreeFsError('INTERNAL', 'file space reported free blocks but has none');
  }
}

export interface AllocatorOptions {
  filesPerClass: number;
  /** Most bytes one growth of a file reserves (a group of 256 blocks, or fewer when larger). */
  extendBytes: number;
}

export class BlockAllocator {
  private readonly classes: FileSpace[][];
  private readonly growing = new Map<number, Promise<void>>();
  private nextFile: number[];

  constructor(
    private readonly options: AllocatorOptions,
    private readonly extendFile: ExtendFile,
  ) {
    if (!Number.isInteger(options.filesPerClass) || options.filesPerClass < 1) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'filesPerClass must be a positive integer');
    }
    this.classes = Array.from({ length: CLASS_COUNT }, () =>
      Array.from({ length: options.filesPerClass }, () => new FileSpace()),
    );
    this.nextFile = new Array<number>(CLASS_COUNT).fill(0);
  }

  private space(cls: number, file: number): FileSpace {
    const space = this.classes[cls]?.[file];
    if (!space) throw new ThreeFsError('INTERNAL', `no data file ${cls}/${file}`);
    return space;
  }

  /** At open: blocks already preallocated in a data file. */
  setExtent(cls: number, file: number, blocks: number): void {
    this.space(cls, file).setExtent(blocks);
  }

  /** At open: a block a chunk record references. */
  markUsed(ref: BlockRef): void {
    const space = this.space(ref.cls, ref.file);
    if (ref.block >= space.extent) {
      throw new ThreeFsError(
        'INTERNAL',
        `a chunk record references block ${ref.block} of data file ${ref.cls}/${ref.file}, ` +
          `which holds only ${space.extent} blocks`,
      );
    }
    if (space.isUsed(ref.block)) {
      throw new ThreeFsError(
        'INTERNAL',
        `block ${ref.cls}/${ref.file}/${ref.block} referenced twice`,
      );
    }
    space.set(ref.block, true);
    space.used++;
  }

  /** A free block of class `cls`, growing a data file when none is left. */
  async allocate(cls: number): Promise<BlockRef> {
    // Bounded: each round either finds a block or grows a file (or waits for a growth); growth
    // failing with NO_SPACE ends the loop.
    for (let round = 0; round < 64; round++) {
      const found = this.takeFree(cls);
      if (found) return found;
      const inFlight = this.growing.get(cls);
      if (inFlight) {
        await inFlight.catch(() => undefined);
        continue;
      }
      const growth = this.grow(cls);
      this.growing.set(cls, growth);
      try {
        await growth;
      } finally {
        this.growing.delete(cls);
      }
    }
    throw new ThreeFsError('RESOURCE_EXHAUSTED', `could not allocate a block of class ${cls}`);
  }

  free(ref: BlockRef): void {
    const space = this.space(ref.cls, ref.file);
    if (!space.isUsed(ref.block)) {
      throw new ThreeFsError(
        'INTERNAL',
        `double free of block ${ref.cls}/${ref.file}/${ref.block}`,
      );
    }
    space.set(ref.block, false);
    space.used--;
    space.hint = Math.min(space.hint, ref.block);
  }

  isUsed(ref: BlockRef): boolean {
    return this.space(ref.cls, ref.file).isUsed(ref.block);
  }

  /** Preallocated bytes that hold no chunk: free for the engine though the file system counts them used. */
  freePreallocatedBytes(): number {
    let bytes = 0;
    this.classes.forEach((files, cls) => {
      for (const space of files) bytes += (space.extent - space.used) * classBytes(cls);
    });
    return bytes;
  }

  usedBlocks(cls: number): number {
    return (this.classes[cls] ?? []).reduce((sum, space) => sum + space.used, 0);
  }

  extentBlocks(cls: number): number {
    return (this.classes[cls] ?? []).reduce((sum, space) => sum + space.extent, 0);
  }

  private takeFree(cls: number): BlockRef | undefined {
    const files = this.classes[cls];
    if (!files) throw new ThreeFsError('INTERNAL', `no size class ${cls}`);
    // Round-robin over files with free blocks spreads chunks (and I/O) over the files.
    const start = this.nextFile[cls] ?? 0;
    for (let i = 0; i < files.length; i++) {
      const file = (start + i) % files.length;
      const space = files[file] as FileSpace;
      if (space.used < space.extent) {
        this.nextFile[cls] = (file + 1) % files.length;
        return { cls, file, block: space.takeFree() };
      }
    }
    return undefined;
  }

  private async grow(cls: number): Promise<void> {
    const files = this.classes[cls] as FileSpace[];
    // Grow the smallest file, so files stay about even.
    let file = 0;
    files.forEach((space, i) => {
      if (space.extent < (files[file] as FileSpace).extent) file = i;
    });
    const space = files[file] as FileSpace;
    const step = Math.max(
      1,
      Math.min(BLOCKS_PER_GROUP, Math.floor(this.options.extendBytes / classBytes(cls))),
    );
    try {
      await this.extendFile(cls, file, space.extent, step);
      space.setExtent(space.extent + step);
    } catch (err) {
      // Near a full disk a whole group may not fit when one block still does.
      if (step === 1 || !(err instanceof ThreeFsError) || err.code !== 'NO_SPACE') throw err;
      await this.extendFile(cls, file, space.extent, 1);
      space.setExtent(space.extent + 1);
    }
  }
}
