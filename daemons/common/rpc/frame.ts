// The wire frame: a fixed 40-byte little-endian header, then the body (schema-encoded fields), then
// the payload (raw bulk bytes that never pass through the body encoder). These are the pure rules
// for writing and checking a header; streaming and sockets live elsewhere. Layout, by byte offset:
//
//    0 u32 magic          'TFSR'; garbage on the wire fails here first
//    4 u8  version        protocol version; offsets 0..4 never move, so any version can refuse another
//    5 u8  kind           FrameKind
//    6 u16 flags          FrameFlags; unknown bits are ignored (append-only)
//    8 u16 service id
//   10 u16 method id
//   12 u32 request id (low 32 bits)
//   16 u32 request id (high 21 bits; ids stay below 2^53 so they are plain numbers)
//   20 u32 timeout ms     the caller's remaining budget; 0 = none
//   24 u32 body length
//   28 u32 payload length
//   32 u32 data CRC32C    over body then payload (chained, never concatenated)
//   36 u32 header CRC32C  over bytes 0..36, so a corrupt length is caught before we wait for or
//                         allocate the bytes it promises
import { crc32c } from '../crc32c.js';
import { crc32cCombine } from '../crc32c-combine.js';
import { ThreeFsError } from '../errors.js';

export const FRAME_MAGIC = 0x52534654; // 'TFSR' as bytes on the wire
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 40;
/** Default cap on body + payload of one frame. 3FS allows 512 MiB; our payloads are chunks (≤ 64 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * Default socket write high-water mark: write() reports "wait for drain" past this many buffered
 * bytes. Node's 16 KiB default would stall a 1 MiB payload stream after every frame.
 */
export const DEFAULT_WRITE_HIGH_WATER_MARK = 4 * 1024 * 1024;
const MAX_REQUEST_ID = Number.MAX_SAFE_INTEGER;

export const FrameKind = {
  Handshake: 1,
  Request: 2,
  Response: 3,
  Error: 4,
  Cancel: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FrameFlags = {
  /** The frame carries a payload segment (distinguishes an empty payload from none). */
  HasPayload: 1 << 0,
} as const;

export interface FrameHeader {
  version: number;
  kind: FrameKind;
  flags: number;
  serviceId: number;
  methodId: number;
  requestId: number;
  timeoutMs: number;
  bodyLength: number;
  payloadLength: number;
  dataCrc: number;
}

/** A decoded frame. body and payload may be views into a received socket chunk. */
export interface Frame {
  header: FrameHeader;
  body: Buffer;
  payload: Buffer | undefined;
}

export function isFrameKind(value: number): value is FrameKind {
  return value >= FrameKind.Handshake && value <= FrameKind.Cancel;
}

function assertUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new ThreeFsError('INTERNAL', `frame header ${name} out of range: ${value}`);
  }
}

/**
 * Writes a header for a frame with these segments into `target` at `offset`, computing both CRCs.
 * The caller passes the real segments so the lengths and data CRC can never disagree with them.
 * A caller that already holds the payload's CRC32C (a chunk's checksum, verified or computed
 * once) passes it as `payloadCrc`: the data CRC is then combined from it rather than read from
 * the payload's bytes again. A wrong one makes the receiver reject the frame, never accept bytes.
 */
export function writeHeader(
  target: Buffer,
  offset: number,
  fields: Omit<FrameHeader, 'bodyLength' | 'payloadLength' | 'dataCrc' | 'flags' | 'version'> & {
    version?: number;
    payloadCrc?: number | undefined;
  },
  body: Uint8Array,
  payload: Uint8Array | undefined,
): void {
  assertUint('serviceId', fields.serviceId, 0xffff);
  assertUint('methodId', fields.methodId, 0xffff);
  assertUint('requestId', fields.requestId, MAX_REQUEST_ID);
  assertUint('timeoutMs', fields.timeoutMs, 0xffffffff);
  const version = fields.version ?? PROTOCOL_VERSION;
  assertUint('version', version, 0xff);
  let dataCrc = crc32c(body);
  if (payload !== undefined && payload.length > 0) {
    dataCrc =
      fields.payloadCrc === undefined
        ? crc32c(payload, dataCrc)
        : crc32cCombine(dataCrc, fields.payloadCrc, payload.length);
  }
  target.writeUInt32LE(FRAME_MAGIC, offset);
  target.writeUInt8(version, offset + 4);
  target.writeUInt8(fields.kind, offset + 5);
  target.writeUInt16LE(payload === undefined ? 0 : FrameFlags.HasPayload, offset + 6);
  target.writeUInt16LE(fields.serviceId, offset + 8);
  target.writeUInt16LE(fields.methodId, offset + 10);
  target.writeUInt32LE(fields.requestId % 0x100000000, offset + 12);
  target.writeUInt32LE(Math.floor(fields.requestId / 0x100000000), offset + 16);
  target.writeUInt32LE(fields.timeoutMs, offset + 20);
  target.writeUInt32LE(body.length, offset + 24);
  target.writeUInt32LE(payload?.length ?? 0, offset + 28);
  target.writeUInt32LE(dataCrc, offset + 32);
  target.writeUInt32LE(crc32c(target.subarray(offset, offset + 36)), offset + 36);
}

/**
 * Builds the bytes to send for one frame: header and body share one small allocation (bodies are
 * small, one copy is cheaper than one more write), the payload stays its own Buffer, never copied.
 */
export function encodeFrame(
  fields: Parameters<typeof writeHeader>[2],
  body: Uint8Array,
  payload?: Uint8Array,
): [Buffer, Uint8Array | undefined] {
  const head = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  head.set(body, HEADER_BYTES);
  writeHeader(head, 0, fields, body, payload);
  return [head, payload];
}

function protocolError(message: string, details?: Record<string, unknown>): ThreeFsError {
  return new ThreeFsError('PROTOCOL_ERROR', message, details);
}

/**
 * Reads and checks a 40-byte header: magic, version, header CRC, kind and the length limit, in
 * that order, before anything is allocated for the segments. Throws PROTOCOL_ERROR (or
 * HANDSHAKE_REFUSED for a version we do not speak) naming what was wrong.
 */
export function parseHeader(header: Buffer, maxFrameBytes: number): FrameHeader {
  if (header.length !== HEADER_BYTES) {
    throw new ThreeFsError(
      'INTERNAL',
      `parseHeader needs ${HEADER_BYTES} bytes, got ${header.length}`,
    );
  }
  const magic = header.readUInt32LE(0);
  if (magic !== FRAME_MAGIC) {
    throw protocolError(`bad frame magic 0x${magic.toString(16).padStart(8, '0')}`);
  }
  const version = header.readUInt8(4);
  if (version !== PROTOCOL_VERSION) {
    throw new ThreeFsError(
      'HANDSHAKE_REFUSED',
      `protocol version mismatch: this peer speaks ${PROTOCOL_VERSION}, the other sent ${version}`,
      { expected: PROTOCOL_VERSION, received: version },
    );
  }
  const headerCrc = header.readUInt32LE(36);
  const actualCrc = crc32c(header.subarray(0, 36));
  if (headerCrc !== actualCrc) throw protocolError('bad frame header CRC32C');
  const kind = header.readUInt8(5);
  if (!isFrameKind(kind)) throw protocolError(`unknown frame kind ${kind}`);
  const bodyLength = header.readUInt32LE(24);
  const payloadLength = header.readUInt32LE(28);
  if (bodyLength + payloadLength > maxFrameBytes) {
    throw protocolError(
      `frame of ${bodyLength + payloadLength} bytes is over the limit of ${maxFrameBytes}`,
      { bodyLength, payloadLength, maxFrameBytes },
    );
  }
  const flags = header.readUInt16LE(6);
  if (payloadLength > 0 && (flags & FrameFlags.HasPayload) === 0) {
    throw protocolError('frame has payload bytes but no payload flag');
  }
  const requestIdHigh = header.readUInt32LE(16);
  if (requestIdHigh > 0x1fffff) throw protocolError('request id above 2^53');
  return {
    version,
    kind,
    flags,
    serviceId: header.readUInt16LE(8),
    methodId: header.readUInt16LE(10),
    requestId: requestIdHigh * 0x100000000 + header.readUInt32LE(12),
    timeoutMs: header.readUInt32LE(20),
    bodyLength,
    payloadLength,
    dataCrc: header.readUInt32LE(32),
  };
}

/** The error for a frame whose data CRC does not match its segments. */
export function dataCrcError(header: FrameHeader): ThreeFsError {
  return protocolError('bad frame data CRC32C', {
    serviceId: header.serviceId,
    methodId: header.methodId,
    requestId: header.requestId,
  });
}

/** Checks the data CRC of a fully received frame. */
export function verifyDataCrc(
  header: FrameHeader,
  body: Buffer,
  payload: Buffer | undefined,
): void {
  let crc = crc32c(body);
  if (payload !== undefined && payload.length > 0) crc = crc32c(payload, crc);
  if (crc !== header.dataCrc) throw dataCrcError(header);
}
