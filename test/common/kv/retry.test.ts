import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { backoffMs, runWithRetry, type RetryClock } from '../../../daemons/common/kv/retry.js';
import { TxnSlots } from '../../../daemons/common/kv/slots.js';
import type { Transaction } from '../../../daemons/common/kv/types.js';

/** A stand-in transaction for the loop's pure logic: only commit and abort are used. */
function fakeTransaction(commit: () => Promise<void>, log: string[]): Transaction {
  return {
    commit,
    abort: () => log.push('abort'),
  } as unknown as Transaction;
}

function fakeClock(): RetryClock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += 10; // a fixed step keeps the timeout rows deterministic
    },
  };
}

const conflict = () => new ThreeFsError('TXN_CONFLICT', 'lost');

describe('kv retry loop', () => {
  it('backoff is jittered within a capped exponential ceiling', () => {
    assert.equal(
      backoffMs(1, () => 1),
      2,
    );
    assert.equal(
      backoffMs(3, () => 1),
      8,
    );
    assert.equal(
      backoffMs(30, () => 1),
      64,
      'capped',
    );
    assert.equal(
      backoffMs(5, () => 0),
      0,
    );
  });

  it('retries conflicts until the commit succeeds, aborting each failed attempt', async () => {
    const log: string[] = [];
    let commits = 0;
    const clock = fakeClock();
    const result = await runWithRetry(
      async () =>
        fakeTransaction(async () => {
          commits++;
          if (commits < 3) throw conflict();
        }, log),
      async () => 'done',
      { maxRetries: 5, timeoutMs: 10_000 },
      clock,
    );
    assert.equal(result, 'done');
    assert.equal(commits, 3);
    assert.deepEqual(log, ['abort', 'abort']);
    assert.equal(clock.slept.length, 2);
  });

  it('gives up after maxRetries or the timeout, with the attempts in the error', async () => {
    for (const [bounds, attempts] of [
      [{ maxRetries: 2, timeoutMs: 10_000 }, 3],
      [{ maxRetries: 100, timeoutMs: 25 }, 4], // elapsed 0, 10, 20 retry; 30 gives up
      [{ maxRetries: 0, timeoutMs: 10_000 }, 1],
    ] as const) {
      let tries = 0;
      await assert.rejects(
        runWithRetry(
          async () => fakeTransaction(async () => undefined, []),
          async () => {
            tries++;
            throw conflict();
          },
          bounds,
          fakeClock(),
        ),
        (err: unknown) =>
          err instanceof ThreeFsError &&
          err.code === 'TXN_CONFLICT' &&
          err.details?.attempts === attempts,
      );
      assert.equal(tries, attempts, JSON.stringify(bounds));
    }
  });

  it('does not retry other errors, and rejects bad bounds', async () => {
    let tries = 0;
    await assert.rejects(
      runWithRetry(
        async () => fakeTransaction(async () => undefined, []),
        async () => {
          tries++;
          throw new ThreeFsError('TXN_TOO_OLD', 'slow');
        },
        { maxRetries: 5, timeoutMs: 1_000 },
        fakeClock(),
      ),
      /slow/,
    );
    assert.equal(tries, 1);
    await assert.rejects(
      runWithRetry(
        async () => fakeTransaction(async () => undefined, []),
        async () => 1,
        { maxRetries: -1, timeoutMs: 1 },
      ),
      (err: unknown) => err instanceof ThreeFsError && err.code === 'INVALID_ARGUMENT',
    );
  });
});

describe('kv transaction slots', () => {
  it('bounds open transactions and queues a bounded number of waiters in order', async () => {
    const slots = new TxnSlots(2, 1);
    assert.ok(slots.tryAcquire());
    await slots.acquire();
    assert.equal(slots.tryAcquire(), false);
    const order: string[] = [];
    const waiting = slots.acquire().then(() => order.push('waiter'));
    await assert.rejects(
      slots.acquire(),
      (err: unknown) => err instanceof ThreeFsError && err.code === 'RESOURCE_EXHAUSTED',
    );
    slots.release(); // handed to the waiter
    await waiting;
    assert.deepEqual(order, ['waiter']);
    assert.equal(slots.inUse, 2);
    slots.release();
    slots.release();
    assert.equal(slots.inUse, 0);
    assert.throws(
      () => slots.release(),
      (err: unknown) => err instanceof ThreeFsError && err.code === 'INTERNAL',
    );
  });
});
