// Size and age limits of one transaction, enforced the same way on every engine so a daemon sees
// the same clear error on the embedded store and on FoundationDB. Sizes are checked when a call
// is made (the stack then points at the offending set), age on every read and at commit.
import { ThreeFsError } from '../errors.js';
import type { KvLimits } from './config.js';

export function checkKey(key: Uint8Array, limits: KvLimits, engineMaxKeyBytes = Infinity): void {
  if (!(key instanceof Uint8Array)) {
    throw new ThreeFsError('INVALID_ARGUMENT', 'a key must be a Buffer or Uint8Array');
  }
  if (key.length > limits.maxKeyBytes) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `key of ${key.length} bytes exceeds the limit of ${limits.maxKeyBytes} bytes ` +
        '(kv.limits.maxKeyBytes)',
    );
  }
  if (key.length > engineMaxKeyBytes) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `key of ${key.length} bytes exceeds the embedded engine's limit of ` +
        `${engineMaxKeyBytes} bytes (LMDB's key size for its page size)`,
    );
  }
}

export function checkValue(value: Uint8Array, limits: KvLimits): void {
  if (!(value instanceof Uint8Array)) {
    throw new ThreeFsError('INVALID_ARGUMENT', 'a value must be a Buffer or Uint8Array');
  }
  if (value.length > limits.maxValueBytes) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `value of ${value.length} bytes exceeds the limit of ${limits.maxValueBytes} bytes ` +
        '(kv.limits.maxValueBytes)',
    );
  }
}

export function checkDelta(delta: bigint): void {
  if (typeof delta !== 'bigint') {
    throw new ThreeFsError('INVALID_ARGUMENT', 'an atomic add delta must be a bigint');
  }
}

/** Bytes a transaction has written and read, and its age: the budget of one attempt. */
export class TxnBudget {
  private writtenBytes = 0;
  private readBytes = 0;
  readonly startedAt: number;

  constructor(
    private readonly limits: KvLimits,
    now: number = Date.now(),
  ) {
    this.startedAt = now;
  }

  /** Counts a mutation's bytes (FoundationDB counts every mutation, even overwritten ones). */
  chargeWrite(bytes: number): void {
    this.writtenBytes += bytes;
    if (this.writtenBytes > this.limits.maxTxnBytes) {
      throw new ThreeFsError(
        'TXN_TOO_LARGE',
        `transaction writes ${this.writtenBytes} bytes, over the limit of ` +
          `${this.limits.maxTxnBytes} bytes (kv.limits.maxTxnBytes): split it into smaller ones`,
      );
    }
  }

  /** Counts bytes a read returned: they are kept until commit to check for conflicts. */
  chargeRead(bytes: number): void {
    this.readBytes += bytes;
    if (this.readBytes > this.limits.maxReadBytes) {
      throw new ThreeFsError(
        'TXN_TOO_LARGE',
        `transaction read ${this.readBytes} bytes, over the limit of ` +
          `${this.limits.maxReadBytes} bytes (kv.limits.maxReadBytes): read in smaller pieces`,
      );
    }
  }

  checkAge(now: number = Date.now()): void {
    const age = now - this.startedAt;
    if (age > this.limits.maxTxnAgeMs) {
      throw new ThreeFsError(
        'TXN_TOO_OLD',
        `transaction is ${age} ms old, over the limit of ${this.limits.maxTxnAgeMs} ms ` +
          '(kv.limits.maxTxnAgeMs): keep transactions short, do slow work outside them',
      );
    }
  }

  get bytesWritten(): number {
    return this.writtenBytes;
  }
}
