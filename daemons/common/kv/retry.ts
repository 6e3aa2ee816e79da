// The retry loop behind KvStore.run: a transaction that lost a conflict is run again from scratch
// after a short jittered pause, up to a bound in attempts and in time; then the conflict is thrown.
// Any other error is thrown at once (size and age limits fail the same way on every attempt).
import { hasCode, ThreeFsError } from '../errors.js';
import type { Transaction } from './types.js';

export interface RetryBounds {
  maxRetries: number;
  timeoutMs: number;
}

const BACKOFF_BASE_MS = 1;
const BACKOFF_CAP_MS = 64;

/** "Full jitter": uniform in [0, min(cap, base * 2^attempt)] so colliding writers spread out. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return random() * ceiling;
}

export function checkRetryBounds(bounds: RetryBounds): void {
  if (!Number.isInteger(bounds.maxRetries) || bounds.maxRetries < 0) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `maxRetries ${bounds.maxRetries} is not an integer >= 0`,
    );
  }
  if (!(bounds.timeoutMs > 0)) {
    throw new ThreeFsError('INVALID_ARGUMENT', `timeoutMs ${bounds.timeoutMs} is not > 0`);
  }
}

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export async function runWithRetry<T>(
  begin: () => Promise<Transaction>,
  fn: (tx: Transaction) => Promise<T>,
  bounds: RetryBounds,
  clock: RetryClock = realClock,
): Promise<T> {
  checkRetryBounds(bounds);
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    const tx = await begin();
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } catch (err) {
      tx.abort(); // releases the snapshot and the slot before any pause
      if (!hasCode(err, 'TXN_CONFLICT')) throw err;
      const elapsed = clock.now() - started;
      if (attempt > bounds.maxRetries || elapsed >= bounds.timeoutMs) {
        throw new ThreeFsError(
          'TXN_CONFLICT',
          `transaction still conflicting after ${attempt} attempts in ${elapsed} ms ` +
            `(bounds: kv.maxRetries=${bounds.maxRetries}, kv.retryTimeoutMs=${bounds.timeoutMs}): ` +
            (err as Error).message,
          { attempts: attempt, elapsedMs: elapsed },
        );
      }
      await clock.sleep(backoffMs(attempt));
    }
  }
}
