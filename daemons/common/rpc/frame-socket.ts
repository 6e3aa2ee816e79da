// One connection speaking frames, as the client and server connections see it: frames in (one at
// a time, while reading is not paused), frames out (payload Buffers passed through untouched),
// backpressure and close. Two transports implement it: NodeFrameSocket over a net.Socket, and
// NativeFrameSocket over the native I/O thread (see docs/rpc.md for why both exist).
import { ThreeFsError } from '../errors.js';
import type { Frame, FrameKind } from './frame.js';

export interface FrameSocketEvents {
  /** A complete, CRC-checked frame. */
  onFrame(frame: Frame): void;
  /** The stream broke the protocol (bad magic, CRC, length, truncation); the socket is closing. */
  onProtocolError(err: ThreeFsError): void;
  /** The socket is gone; `reason` says why when it was not a clean close. */
  onClose(reason: ThreeFsError | undefined): void;
}

export interface OutgoingFrame {
  kind: FrameKind;
  serviceId: number;
  methodId: number;
  requestId: number;
  timeoutMs: number;
  /** CRC32C of the payload when the sender already has it (see writeHeader). */
  payloadCrc?: number | undefined;
}

/** How long a closing socket may take to flush its last frame before it is destroyed. */
export const LINGER_MS = 1000;

export type RpcTransportKind = 'native' | 'node';

/** The transport used when options do not name one: THREEFS_RPC_TRANSPORT, else native. */
export function defaultTransport(): RpcTransportKind {
  const named = process.env.THREEFS_RPC_TRANSPORT;
  if (named === undefined || named === '' || named === 'native') return 'native';
  if (named === 'node') return 'node';
  throw new ThreeFsError(
    'INVALID_ARGUMENT',
    `THREEFS_RPC_TRANSPORT must be 'native' or 'node', got '${named}'`,
  );
}

export interface FrameSocket {
  readonly peer: string;
  readonly isClosed: boolean;
  /** Whether more than the write high-water mark is queued: wait for drain before sending more. */
  readonly needsDrain: boolean;
  /** Runs once when an outgoing connection is established. */
  onceConnected(callback: () => void): void;
  whenClosed(): Promise<void>;
  waitDrain(): Promise<void>;
  /** Sends one frame; returns false when the caller should wait for drain before the next. */
  send(frame: OutgoingFrame, body: Uint8Array, payload?: Uint8Array): boolean;
  /** Stops handing out frames and stops reading the socket (backpressure on the peer). */
  pauseReading(): void;
  resumeReading(): void;
  /** Closes after flushing what was written; destroys the socket if the peer does not let it flush. */
  close(reason?: ThreeFsError): void;
  /** Closes at once, dropping unsent frames. */
  destroy(reason?: ThreeFsError): void;
}
