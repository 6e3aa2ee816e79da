// Behaviour specific to the embedded engine: LMDB's own key limit, snapshots of forgotten
// transactions being reclaimed, the bound on open transactions, clear errors on bad setup, and
// durability through the write-ahead log: rebuilding after an operating-system crash (acted out
// by a new boot id and a destroyed LMDB file), a record whose writer died before LMDB committed
// it, and a store written before the log existed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { openKvStore } from '../../../daemons/common/kv/open.js';
import { LmdbKvStore } from '../../../daemons/common/kv/lmdb-store.js';
import { WriteAheadLog } from '../../../daemons/common/kv/wal.js';
import { WalRecordBuilder } from '../../../daemons/common/kv/wal-record.js';
import { open as openLmdb } from 'lmdb';
import type { KvStore } from '../../../daemons/common/kv/types.js';

const root = mkdtempSync(path.join(tmpdir(), 'threefs-kv-embedded-'));
after(() => rmSync(root, { recursive: true, force: true }));
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

  it('a commit made in the loop turn after another joins its group commit', async () => {
    const store = (await openKvStore(freshConfig())) as LmdbKvStore;
    try {
      const before = store.lastCommitId();
      const commitOne = (key: string, value: string) => {
        const tx = store.createTransaction();
        tx.set(Buffer.from(key), Buffer.from(value));
        return tx.commit(); // queued before it returns
      };
      const first = commitOne('a', '1');
      // Queued after the first commit's batch was scheduled: without the turn a batch waits,
      // that batch runs before this resolves and the second commit needs a group of its own.
      await new Promise((resolve) => setImmediate(resolve));
      const second = commitOne('b', '2');
      await Promise.all([first, second]);
      assert.equal(store.lastCommitId() - before, 1, 'one LMDB transaction for both');
      assert.equal(store.logPosition().lsn, 1, 'one log record for both');
      const [a, b] = await store.run(async (tx) => [
        await tx.get(Buffer.from('a')),
        await tx.get(Buffer.from('b')),
      ]);
      assert.equal(`${a?.toString()}${b?.toString()}`, '12');
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

  it('rebuilds every acknowledged commit from checkpoint and log after a crash of the machine', async () => {
    const config = freshConfig({ checkpointEveryBytes: 1 << 20, walSegmentBytes: 64 << 10 });
    const model = new Map<string, string>();
    const store = await LmdbKvStore.open(config, { bootId: 'boot-a' });
    try {
      for (let round = 0; round < 300; round++) {
        await store.run(async (tx) => {
          const k = `k${String(round % 97).padStart(3, '0')}`;
          tx.set(Buffer.from(k), Buffer.from(`v${round}`.repeat(400)));
          tx.add(Buffer.from('counter'), 1n);
          if (round % 50 === 49) tx.clearRange(Buffer.from('k000'), Buffer.from('k010'));
        });
        const k = `k${String(round % 97).padStart(3, '0')}`;
        model.set(k, `v${round}`.repeat(400));
        if (round % 50 === 49)
          for (const key of [...model.keys()]) if (key < 'k010') model.delete(key);
        if (round === 150) await store.checkpoint(); // a restore point in the middle
      }
    } finally {
      await store.close();
    }
    const logDir = path.join(config.path, 'wal');
    // The machine crashed: LMDB's file (never fsynced) is garbage; the log and checkpoint are not.
    writeFileSync(path.join(config.path, 'data.mdb'), Buffer.alloc(8_192, 0xee));
    // Half-made files of the crashed boot: a checkpoint copy and a segment being zero-filled.
    const leftovers = [
      path.join(config.path, 'checkpoint.tmp-1-0'),
      path.join(logDir, '0000000000009999.log.tmp-1'),
    ];
    mkdirSync(leftovers[0] as string);
    writeFileSync(leftovers[1] as string, 'partial');
    const reopened = await LmdbKvStore.open(config, { bootId: 'boot-b' });
    try {
      assert.equal(reopened.logPosition().lsn, 300);
      for (const leftover of leftovers) assert.ok(!existsSync(leftover), leftover);
      await checkContents(reopened, model, 300n);
      // The log before the checkpoint was deleted; the rest was kept.
      assert.ok(!existsSync(path.join(logDir, '0000000000000001.log')));
      assert.ok(readdirSync(logDir).some((n) => n.endsWith('.log')));
      assert.equal(readdirSync(config.path).filter((n) => n.startsWith('checkpoint-')).length, 1);
      // And the store goes on.
      await reopened.run(async (tx) => tx.set(Buffer.from('after'), Buffer.from('reboot')));
    } finally {
      await reopened.close();
    }
    const third = await LmdbKvStore.open(config, { bootId: 'boot-b' }); // same boot: no rebuild
    try {
      assert.equal((await third.run((tx) => tx.get(Buffer.from('after'))))?.toString(), 'reboot');
    } finally {
      await third.close();
    }
  });

  it('applies a logged record whose writer died before LMDB committed it', async () => {
    const config = freshConfig();
    const store = await LmdbKvStore.open(config, { bootId: 'boot-a' });
    let position;
    try {
      await store.run(async (tx) => tx.set(Buffer.from('first'), Buffer.from('1')));
      position = store.logPosition();
    } finally {
      await store.close();
    }
    // What a writer killed between its log write and its LMDB commit leaves behind (the log
    // holds user keys; the engine adds its tag byte when applying).
    const record = new WalRecordBuilder();
    record.push({ kind: 'set', key: Buffer.from('second'), value: Buffer.from('2') });
    new WriteAheadLog(path.join(config.path, 'wal'), config.walSegmentBytes).append(
      position,
      record,
    );
    const reopened = await LmdbKvStore.open(config, { bootId: 'boot-a' });
    try {
      assert.equal(reopened.logPosition().lsn, position.lsn + 1);
      assert.equal((await reopened.run((tx) => tx.get(Buffer.from('second'))))?.toString(), '2');
      assert.equal((await reopened.run((tx) => tx.get(Buffer.from('first'))))?.toString(), '1');
    } finally {
      await reopened.close();
    }
  });

  it('opens a store written before the log existed, and takes its first checkpoint', async () => {
    const config = freshConfig();
    const legacy = openLmdb<Buffer, Buffer>({
      path: config.path,
      keyEncoding: 'binary',
      encoding: 'binary',
      overlappingSync: false,
    });
    await legacy.put(Buffer.from('uold'), Buffer.from('kept')); // 'u' is the user key tag
    await legacy.close();
    const store = await LmdbKvStore.open(config, { bootId: 'boot-a' });
    try {
      assert.equal((await store.run((tx) => tx.get(Buffer.from('old'))))?.toString(), 'kept');
      assert.ok(existsSync(path.join(config.path, 'checkpoint-0000000000000000.mdb')));
    } finally {
      await store.close();
    }
    // A crash right after: the first checkpoint alone brings the data back.
    rmSync(path.join(config.path, 'data.mdb'));
    const again = await LmdbKvStore.open(config, { bootId: 'boot-b' });
    try {
      assert.equal((await again.run((tx) => tx.get(Buffer.from('old'))))?.toString(), 'kept');
    } finally {
      await again.close();
    }
  });
});

async function checkContents(store: KvStore, model: Map<string, string>, counter: bigint) {
  const rows = await store.run((tx) => tx.getRange(Buffer.from('k'), Buffer.from('l')));
  assert.deepEqual(
    rows.map((r) => [r.key.toString(), r.value.toString()]),
    [...model].sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  const value = await store.run((tx) => tx.get(Buffer.from('counter')));
  assert.equal(value?.readBigInt64LE(0), counter);
}
