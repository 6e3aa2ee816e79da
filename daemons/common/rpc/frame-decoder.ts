// Turns a byte stream (socket chunks of any size) into frames. Pull-based: push() chunks, then call
// next() while it returns frames; the caller stops pulling when it wants backpressure, so the
// decoder never runs ahead of the handlers. A segment lying inside one chunk is handed out as a view
// of that chunk (no copy); a segment spanning chunks is assembled once into its own Buffer.
import { ThreeFsError } from '../errors.js';
import { type Frame, type FrameHeader, HEADER_BYTES, parseHeader, verifyDataCrc } from './frame.js';

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private offset = 0;
  private buffered = 0;
  private header: FrameHeader | undefined;
  private readonly headerScratch = Buffer.allocUnsafe(HEADER_BYTES);
  private failed: ThreeFsError | undefined;

  constructor(private readonly maxFrameBytes: number) {
    if (!(maxFrameBytes > 0)) throw new ThreeFsError('INTERNAL', 'maxFrameBytes must be positive');
  }

  /** Bytes received but not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Whether a frame has been started but not finished (a stream ending now was truncated). */
  get midFrame(): boolean {
    return this.buffered > 0 || this.header !== undefined;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete, CRC-checked frame, or undefined when more bytes are needed. Throws a
   * ThreeFsError (PROTOCOL_ERROR or HANDSHAKE_REFUSED) on a broken stream; once it has thrown it
   * keeps throwing, because the frame boundaries are lost.
   */
  next(): Frame | undefined {
    if (this.failed) throw this.failed;
    try {
      return this.decodeOne();
    } catch (err) {
      this.failed =
        err instanceof ThreeFsError
          ? err
          : new ThreeFsError('INTERNAL', `frame decoder: ${(err as Error).message}`);
      this.chunks.length = 0;
      this.buffered = 0;
      throw this.failed;
    }
  }

  private decodeOne(): Frame | undefined {
    if (this.header === undefined) {
      if (this.buffered < HEADER_BYTES) return undefined;
      this.header = parseHeader(this.take(HEADER_BYTES, this.headerScratch), this.maxFrameBytes);
    }
    const header = this.header;
    if (this.buffered < header.bodyLength + header.payloadLength) return undefined;
    this.header = undefined;
    const body = this.take(header.bodyLength);
    const hasPayload = header.payloadLength > 0 || (header.flags & 1) !== 0;
    const payload = hasPayload ? this.take(header.payloadLength) : undefined;
    verifyDataCrc(header, body, payload);
    return { header, body, payload };
  }

  /** Removes `length` buffered bytes: a view when they lie in one chunk, else one copy. */
  private take(length: number, into?: Buffer): Buffer {
    if (length > this.buffered) throw new ThreeFsError('INTERNAL', 'take past buffered bytes');
    this.buffered -= length;
    const first = this.chunks[0];
    if (length === 0 || first === undefined) return into ?? Buffer.alloc(0);
    if (into === undefined && first.length - this.offset >= length) {
      const view = first.subarray(this.offset, this.offset + length);
      this.advance(length);
      return view;
    }
    const target = into ?? Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      if (chunk === undefined) throw new ThreeFsError('INTERNAL', 'decoder ran out of chunks');
      const n = Math.min(length - filled, chunk.length - this.offset);
      chunk.copy(target, filled, this.offset, this.offset + n);
      filled += n;
      this.advance(n);
    }
    return target;
  }

  private advance(n: number): void {
    this.offset += n;
    const first = this.chunks[0];
    if (first !== undefined && this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}
