// Types of the USRBIO ring addon (native/src/usrbio), shared by the program side
// (daemons/client/usrbio.ts) and the FUSE daemon (daemons/fuse/usrbio-session.ts). Op codes and
// the row layout of take() mirror native/src/usrbio/{ring_layout.h,usrbio_addon.cc}.
import { loadAddon } from './native.js';

export const UsrbioOp = { read: 1, write: 2 } as const;
export type UsrbioOpName = keyof typeof UsrbioOp;

/** Numbers per SQE in DaemonRing.take(): op, file, fileOffset, length, bufOffset, userData, error. */
export const TAKEN_FIELDS = 7;

/** Where a ring's data area sits in its whole shared file (header and rings come first). */
export interface RegionShape {
  /** Bytes of the whole memfd. */
  readonly regionBytes: number;
  /** Offset of the data area in it. */
  readonly dataOffset: number;
}

export interface ProgramRing extends RegionShape {
  /** The memfd holding the region (the daemon opens it through /proc/<pid>/fd). */
  readonly fd: number;
  /** The data area: one Buffer over the shared mapping. */
  readonly data: Buffer;
  /** Queues one SQE (invisible to the daemon until submit); false when the SQ is full. */
  prepare(
    op: number,
    file: number,
    fileOffset: number,
    length: number,
    bufOffset: number,
    userData: number,
  ): boolean;
  /** Publishes the prepared SQEs; returns how many. */
  submit(): number;
  /** Published SQEs the daemon has not taken yet. */
  unconsumed(): number;
  /** Up to `max` completions as [userData, result, ...]. */
  reap(max: number): Float64Array;
  /**
   * Asks the daemon to ring with its next completions, then looks again: true when completions
   * are already there (reap them; nobody rang for them).
   */
  armWakeup(): boolean;
  /** Withdraws armWakeup's request. */
  disarmWakeup(): void;
}

/** What DaemonRing.complete() did (DaemonEnd::Posted in native/src/usrbio/rings.h). */
export const Posted = { noRoom: 0, quiet: 1, wake: 2 } as const;

export interface DaemonRing extends RegionShape {
  readonly data: Buffer;
  /** The daemon's own descriptor of the region (/proc/<daemon pid>/fd/<fd> names it). */
  readonly fd: number;
  /** Up to `max` SQEs, TAKEN_FIELDS numbers each; null when the program broke its ring. */
  take(max: number): Float64Array | null;
  /** Free completion slots, or -1 when the program broke its ring. */
  cqSpace(): number;
  /**
   * Publishes completions [userData, result, ...]: Posted.noRoom (nothing written) when they do
   * not fit, Posted.wake when the program waits for a doorbell (its request is used up).
   */
  complete(pairs: Float64Array): number;
}

interface UsrbioAddon {
  ProgramRing: new (entries: number, dataBytes: number) => ProgramRing;
  DaemonRing: new (
    pid: number,
    fd: number,
    entries: number,
    dataBytes: number,
    maxIoBytes: number,
  ) => DaemonRing;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /**
   * A sealed memfd mapped shared: `data` views all of it, and the descriptor stays open while
   * `data` or any slice of it lives (storage servers on this host map it by /proc path).
   */
  sharedRegion(bytes: number): { fd: number; data: Buffer };
  entriesLimit: number;
}

let addon: UsrbioAddon | undefined;
export function usrbioAddon(): UsrbioAddon {
  addon ??= loadAddon<UsrbioAddon>('threefs_usrbio');
  return addon;
}
