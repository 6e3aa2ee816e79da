// Behaviour specific to the embedded engine: LMDB's own key limit, snapshots of forgotten
// transactions being reclaimed, the bound on open transactions, and clear errors on bad setup.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { openKvStore } from '../../../daemons/common/kv/open.js';

const root = mkdtempSync(path.join(tmpdir(), 'threefs-kv-embedded-'));
let count = 0;
const freshConfig = (input: Parameters<typeof kvConfig>[0] = {}) =>
  kvConfig({ ...input, engine: 'embedded', path: path.join(root, `store-${count++}`) });

const hasCode = (code: string, pattern?: RegExp) => (err: unknown) =>
  err instanceof ThreeFsError &&
  err.code === code &&
  (pattern === undefined || pattern.test(err.message));

describe('kv embedded engine', () => {
  it('rejects keys over LMDB’s own limit with an error naming it', async () => {
    const store = await openKvStore(freshConfig());
    try {
      const tx = store.createTransaction();
      tx.set(Buffer.alloc(1_977, 0x61), Buffer.from('ok')); // the largest key that fits
      assert.throws(
        () => tx.set(Buffer.alloc(1_978, 0x61), Buffer.from('no')),
        hasCode('INVALID_ARGUMENT', /embedded engine's limit of 1977/),
      );
      await tx.commit();
      assert.equal((await store.run((t) => t.get(Buffer.alloc(1_977, 0x61))))?.toString(), 'ok');
    } finally {
      await store.close();
    }
  });

  it('bounds open transactions and reclaims forgotten ones after their age limit', async () => {
    const store = await openKvStore(
      freshConfig({ maxOpenTransactions: 2, limits: { maxTxnAgeMs: 100 } }),
    );
    try {
      const forgotten = [store.createTransaction(), store.createTransaction()];
      for (const tx of forgotten) await tx.get(Buffer.from('k')); // each pins a snapshot
      assert.throws(
        () => store.createTransaction(),
        hasCode('RESOURCE_EXHAUSTED', /maxOpenTransactions/),
      );
      const waiting = store.run(async (tx) => tx.get(Buffer.from('k'))); // waits for a slot
      await sleep(400); // the sweeper ends both forgotten transactions
      assert.equal(await waiting, undefined);
      await assert.rejects(
        (forgotten[0] as { get(k: Buffer): Promise<unknown> }).get(Buffer.from('k')),
        hasCode('TXN_TOO_OLD'),
      );
      store.createTransaction().abort();
    } finally {
      await store.close();
    }
  });

  it('fails clearly when the directory cannot be used, and after close', async () => {
    const file = path.join(root, 'not-a-directory');
    writeFileSync(file, 'x');
    await assert.rejects(
      openKvStore(kvConfig({ path: file })),
      hasCode('FAILED_PRECONDITION', /cannot open the embedded KV store/),
    );
    const store = await openKvStore(freshConfig());
    await store.close();
    assert.throws(() => store.createTransaction(), hasCode('UNAVAILABLE', /closed/));
    await assert.rejects(
      store.run(async () => 1),
      hasCode('UNAVAILABLE'),
    );
  });
});
