// The embedded engine's write-ahead log records (docs/kv.md, "Durability"). One record holds the
// mutations of one LMDB write transaction, in the order they were applied, so replaying records in
// log order onto the state they were first applied to rebuilds the same state. Adds are logged as
// the value they produced, clearRange as the range: both replay deterministically.
//
// Record: a 24-byte header, then the payload.
//   magic u32 | payload bytes u32 | lsn u64 | crc32c u32 | reserved u32 (0)
// The CRC covers header bytes [4, 16) (length and lsn) and the payload, so a torn or stale record
// never reads as valid. Payload: ops, each a kind byte then length-prefixed (u32) byte strings:
//   1 set        key, value
//   2 clear      key
//   3 clearRange begin, end
import { crc32c } from '../crc32c.js';
import { ThreeFsError } from '../errors.js';

export type WalOp =
  | { kind: 'set'; key: Buffer; value: Buffer }
  | { kind: 'clear'; key: Buffer }
  | { kind: 'clearRange'; begin: Buffer; end: Buffer };

export const RECORD_HEADER_BYTES = 24;
const MAGIC = 0x4c415754; // "TWAL" little-endian
const KIND_CODES = { set: 1, clear: 2, clearRange: 3 } as const;
/** No record is larger than this (a batch is bounded far below it; see lmdb-store.ts). */
export const MAX_RECORD_PAYLOAD_BYTES = 1 << 30;

/** An op's byte strings in the order they are stored (each u32-length-prefixed). */
function fieldsOf(op: WalOp): Buffer[] {
  switch (op.kind) {
    case 'set':
      return [op.key, op.value];
    case 'clear':
      return [op.key];
    case 'clearRange':
      return [op.begin, op.end];
  }
}

/** Collects the ops of one record as they are applied, then encodes them in one buffer. */
export class WalRecordBuilder {
  private readonly ops: WalOp[] = [];
  private bytes = 0;

  get isEmpty(): boolean {
    return this.ops.length === 0;
  }

  /** Payload bytes so far. */
  get payloadBytes(): number {
    return this.bytes;
  }

  push(op: WalOp): void {
    this.ops.push(op);
    this.bytes += 1;
    for (const field of fieldsOf(op)) this.bytes += 4 + field.length;
  }

  encode(lsn: number): Buffer {
    if (this.bytes > MAX_RECORD_PAYLOAD_BYTES) {
      throw new ThreeFsError('INTERNAL', `a WAL record of ${this.bytes} bytes is over the limit`);
    }
    const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + this.bytes);
    let at = RECORD_HEADER_BYTES;
    for (const op of this.ops) {
      out[at++] = KIND_CODES[op.kind];
      for (const field of fieldsOf(op)) {
        out.writeUInt32LE(field.length, at);
        field.copy(out, at + 4);
        at += 4 + field.length;
      }
    }
    writeHeader(out, lsn);
    return out;
  }
}

function writeHeader(record: Buffer, lsn: number): void {
  record.writeUInt32LE(MAGIC, 0);
  record.writeUInt32LE(record.length - RECORD_HEADER_BYTES, 4);
  record.writeUInt32LE(lsn % 2 ** 32, 8);
  record.writeUInt32LE(Math.floor(lsn / 2 ** 32), 12);
  record.writeUInt32LE(0, 20);
  record.writeUInt32LE(recordCrc(record), 16);
}

function recordCrc(record: Buffer): number {
  return crc32c(record.subarray(RECORD_HEADER_BYTES), crc32c(record.subarray(4, 16)));
}

export interface RecordHeader {
  lsn: number;
  payloadBytes: number;
}

/** The header at the start of `bytes` if it is one (magic, sane length); the CRC is checked later. */
export function parseHeader(bytes: Buffer, maxPayloadBytes: number): RecordHeader | undefined {
  if (bytes.length < RECORD_HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const payloadBytes = bytes.readUInt32LE(4);
  if (payloadBytes > maxPayloadBytes || bytes.readUInt32LE(20) !== 0) return undefined;
  const lsn = bytes.readUInt32LE(8) + bytes.readUInt32LE(12) * 2 ** 32;
  return { lsn, payloadBytes };
}

/** Whether `record` (header and payload) is intact. */
export function recordIntact(record: Buffer): boolean {
  return record.readUInt32LE(16) === recordCrc(record);
}

/** The ops of an intact record's payload; a payload that does not parse is corruption. */
export function decodeOps(payload: Buffer): WalOp[] {
  const ops: WalOp[] = [];
  let at = 0;
  const takeBytes = (): Buffer => {
    if (at + 4 > payload.length) throw corrupt();
    const n = payload.readUInt32LE(at);
    if (at + 4 + n > payload.length) throw corrupt();
    const bytes = payload.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return bytes;
  };
  while (at < payload.length) {
    const kind = payload[at++];
    if (kind === KIND_CODES.set) ops.push({ kind: 'set', key: takeBytes(), value: takeBytes() });
    else if (kind === KIND_CODES.clear) ops.push({ kind: 'clear', key: takeBytes() });
    else if (kind === KIND_CODES.clearRange) {
      ops.push({ kind: 'clearRange', begin: takeBytes(), end: takeBytes() });
    } else throw corrupt();
  }
  return ops;
}

function corrupt(): ThreeFsError {
  return new ThreeFsError('INTERNAL', 'a WAL record passed its checksum but does not parse');
}
