// What the engine stores per chunk in its metadata store, and its binary encoding. The record is
// the single source of truth for a chunk: its committed version, its pending version (at most one,
// brief §3.1), and the blocks both occupy; allocation state is rebuilt from these records at open,
// so a block no record names is free, whatever the disk holds.
import { endianness } from 'node:os';
import { ThreeFsError } from '../../common/errors.js';
import { CLASS_COUNT } from './size-classes.js';

// Granule CRCs are copied between records and Uint32Arrays as raw memory (one copy, not 256
// reads), which is the little-endian encoding only on a little-endian host.
if (endianness() !== 'LE') throw new Error('the chunk engine needs a little-endian host');

/** A block: class index, data file number within the class, block number within the file. */
export interface BlockRef {
  cls: number;
  file: number;
  block: number;
}

/** One version's content: its length, CRC32C, per-granule CRC32Cs and where it lives. */
export interface ContentRef {
  length: number;
  checksum: number;
  /** null only for empty content, which needs no block. */
  block: BlockRef | null;
  /** CRC32C of each granule of the content (granule size set by the block's class). */
  crcs: Uint32Array;
}

export interface PendingVersion extends ContentRef {
  updateVer: number;
  chainVer: number;
  /** The pending update removes the chunk: committing it deletes the record. */
  remove: boolean;
}

export interface ChunkRecord {
  commitVer: number;
  chainVer: number;
  committed: ContentRef;
  pending: PendingVersion | null;
  /** Request id of the last update, as the service passed it (0 when none). */
  lastRequestId: number;
}

const FORMAT = 1;
const FLAG_PENDING = 1;
const FLAG_PENDING_REMOVE = 2;
const FLAG_COMMITTED_BLOCK = 4;
const FLAG_PENDING_BLOCK = 8;
const MAX_U32 = 0xffff_ffff;
const MAX_CRCS = 0xffff;

function contentBytes(content: ContentRef): number {
  return 4 + 4 + (content.block ? 1 + 2 + 4 : 0) + 2 + 4 * content.crcs.length;
}

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new ThreeFsError('INTERNAL', `chunk record field ${name}=${value} is not a u32`);
  }
}

function writeContent(out: Buffer, at: number, content: ContentRef): number {
  checkU32('length', content.length);
  checkU32('checksum', content.checksum);
  if (content.crcs.length > MAX_CRCS) {
    throw new ThreeFsError('INTERNAL', `${content.crcs.length} granule checksums in one chunk`);
  }
  at = out.writeUInt32LE(content.length, at);
  at = out.writeUInt32LE(content.checksum, at);
  if (content.block) {
    at = out.writeUInt8(content.block.cls, at);
    at = out.writeUInt16LE(content.block.file, at);
    at = out.writeUInt32LE(content.block.block, at);
  }
  at = out.writeUInt16LE(content.crcs.length, at);
  const crcBytes = new Uint8Array(
    content.crcs.buffer,
    content.crcs.byteOffset,
    content.crcs.byteLength,
  );
  out.set(crcBytes, at);
  return at + crcBytes.length;
}

export function encodeRecord(record: ChunkRecord): Buffer {
  const pending = record.pending;
  checkU32('commitVer', record.commitVer);
  checkU32('chainVer', record.chainVer);
  let size = 1 + 1 + 4 + 4 + 8 + contentBytes(record.committed);
  if (pending) size += 4 + 4 + contentBytes(pending);
  const out = Buffer.allocUnsafe(size);
  let flags = 0;
  if (pending) flags |= FLAG_PENDING;
  if (pending?.remove) flags |= FLAG_PENDING_REMOVE;
  if (record.committed.block) flags |= FLAG_COMMITTED_BLOCK;
  if (pending?.block) flags |= FLAG_PENDING_BLOCK;
  let at = out.writeUInt8(FORMAT, 0);
  at = out.writeUInt8(flags, at);
  at = out.writeUInt32LE(record.commitVer, at);
  at = out.writeUInt32LE(record.chainVer, at);
  at = out.writeDoubleLE(record.lastRequestId, at);
  at = writeContent(out, at, record.committed);
  if (pending) {
    checkU32('updateVer', pending.updateVer);
    checkU32('pendingChainVer', pending.chainVer);
    at = out.writeUInt32LE(pending.updateVer, at);
    at = out.writeUInt32LE(pending.chainVer, at);
    at = writeContent(out, at, pending);
  }
  if (at !== size)
    throw new ThreeFsError('INTERNAL', `chunk record encoded ${at} of ${size} bytes`);
  return out;
}

class Reader {
  at = 0;
  constructor(private readonly bytes: Buffer) {}
  need(n: number): void {
    if (this.at + n > this.bytes.length) {
      throw new ThreeFsError('INTERNAL', 'stored chunk record is truncated');
    }
  }
  u8(): number {
    this.need(1);
    return this.bytes.readUInt8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.bytes.readUInt16LE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.bytes.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  /** `count` u32s as a fresh Uint32Array (raw copy: little-endian host). */
  u32s(count: number): Uint32Array {
    this.need(4 * count);
    const out = new Uint32Array(count);
    new Uint8Array(out.buffer).set(this.bytes.subarray(this.at, this.at + 4 * count));
    this.at += 4 * count;
    return out;
  }
  f64(): number {
    this.need(8);
    const v = this.bytes.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }
  done(): boolean {
    return this.at === this.bytes.length;
  }
}

function readContent(r: Reader, hasBlock: boolean): ContentRef {
  const length = r.u32();
  const checksum = r.u32();
  let block: BlockRef | null = null;
  if (hasBlock) {
    block = { cls: r.u8(), file: r.u16(), block: r.u32() };
    if (block.cls >= CLASS_COUNT) {
      throw new ThreeFsError('INTERNAL', `stored chunk record names size class ${block.cls}`);
    }
  }
  const crcs = r.u32s(r.u16());
  return { length, checksum, block, crcs };
}

export function decodeRecord(bytes: Buffer): ChunkRecord {
  const r = new Reader(bytes);
  const format = r.u8();
  if (format !== FORMAT) {
    throw new ThreeFsError('INTERNAL', `stored chunk record has unknown format ${format}`);
  }
  const flags = r.u8();
  const commitVer = r.u32();
  const chainVer = r.u32();
  const lastRequestId = r.f64();
  const committed = readContent(r, (flags & FLAG_COMMITTED_BLOCK) !== 0);
  let pending: PendingVersion | null = null;
  if (flags & FLAG_PENDING) {
    const updateVer = r.u32();
    const pendingChainVer = r.u32();
    const content = readContent(r, (flags & FLAG_PENDING_BLOCK) !== 0);
    pending = {
      ...content,
      updateVer,
      chainVer: pendingChainVer,
      remove: (flags & FLAG_PENDING_REMOVE) !== 0,
    };
  }
  if (!r.done()) throw new ThreeFsError('INTERNAL', 'stored chunk record has trailing bytes');
  return { commitVer, chainVer, committed, pending, lastRequestId };
}

export function sameBlock(a: BlockRef | null, b: BlockRef | null): boolean {
  return a !== null && b !== null && a.cls === b.cls && a.file === b.file && a.block === b.block;
}

/** Blocks a record references (committed, and pending when it lives elsewhere). */
export function blocksOf(record: ChunkRecord | undefined): BlockRef[] {
  if (!record) return [];
  const out: BlockRef[] = [];
  if (record.committed.block) out.push(record.committed.block);
  const pendingBlock = record.pending?.block ?? null;
  if (pendingBlock && !sameBlock(pendingBlock, record.committed.block)) out.push(pendingBlock);
  return out;
}

/** Blocks `before` referenced that `after` no longer does: free once no reader holds them. */
export function releasedBlocks(
  before: ChunkRecord | undefined,
  after: ChunkRecord | undefined,
): BlockRef[] {
  const kept = blocksOf(after);
  return blocksOf(before).filter((block) => !kept.some((k) => sameBlock(k, block)));
}
