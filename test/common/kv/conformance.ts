// The KV conformance suite, written once and run against every engine present (see
// conformance-embedded.test.ts and conformance-fdb.test.ts). Every key lives under a random prefix
// so runs against a shared FoundationDB cluster do not see each other; the suite clears it after.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { hasCode, ThreeFsError } from '../../../daemons/common/errors.js';
import { decodeInt64LE } from '../../../daemons/common/kv/atomic.js';
import { kvConfig, type KvConfig } from '../../../daemons/common/kv/config.js';
import { encodeKey, keyAfter, prefixRange, strinc } from '../../../daemons/common/kv/keys.js';
import { openKvStore } from '../../../daemons/common/kv/open.js';
import type { KvStore, Transaction } from '../../../daemons/common/kv/types.js';
import { commitLoopKilledAfter, doctorKey, spawnKvChild } from './harness.js';

export interface EngineUnderTest {
  name: string;
  /** Why the engine cannot run here, or false when it can. */
  skip: string | false;
  /** A config for a store; `fresh` asks for one that shares nothing with earlier ones. */
  config(input: Parameters<typeof kvConfig>[0], fresh?: boolean): KvConfig;
}

const ON = Buffer.from([1]);
const OFF = Buffer.from([0]);

function assertCode(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ThreeFsError, `expected ThreeFsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

const text = (rows: Array<{ key: Buffer; value: Buffer }>, prefix: Buffer) =>
  rows.map((row) => `${row.key.subarray(prefix.length).toString('hex')}=${row.value.toString()}`);

export function conformanceSuite(engine: EngineUnderTest): void {
  describe(`KV conformance: ${engine.name}`, { skip: engine.skip }, () => {
    const prefix = encodeKey('conformance/', randomBytes(8));
    const base = engine.config({ maxRetries: 100 }, true);
    let store: KvStore;
    let section = 0;
    /** A fresh sub-prefix per test, so tests never see each other's keys. */
    const space = () => encodeKey(prefix, `s${section++}/`);

    before(async () => {
      store = await openKvStore(base);
    });

    after(async () => {
      const { begin, end } = prefixRange(prefix);
      await store.run(async (tx) => tx.clearRange(begin, end));
      await store.close();
    });

    const fill = async (entries: Array<[Buffer, string]>) =>
      store.run(async (tx) => {
        for (const [key, value] of entries) tx.set(key, Buffer.from(value));
      });

    it('orders keys byte-wise: prefixes first, 0x00 and 0xff bytes', async () => {
      const ns = space();
      const names = [
        '',
        '\x00',
        '\x00\x00',
        'a',
        'a\x00',
        'a\xff',
        'ab',
        'b',
        '\x7f',
        '\x80',
        '\xff',
        '\xff\xff',
      ];
      const keys = names.map((name) => Buffer.concat([ns, Buffer.from(name, 'latin1')]));
      await fill([...keys].reverse().map((key, i) => [key, String(i)]));
      const rows = await store.run((tx) => tx.getRange(ns, strinc(ns)));
      const sorted = [...keys].sort(Buffer.compare);
      assert.deepEqual(
        rows.map((row) => row.key.toString('hex')),
        sorted.map((key) => key.toString('hex')),
      );
      assert.equal(Buffer.compare(sorted[0] as Buffer, ns), 0, 'the bare prefix sorts first');
      const reversed = await store.run((tx) => tx.getRange(ns, strinc(ns), { reverse: true }));
      assert.deepEqual(
        reversed.map((row) => row.key),
        [...sorted].reverse(),
      );
    });

    it('getRange edges: empty, begin == end, inverted, limits, reverse with limit', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      assert.deepEqual(await store.run((tx) => tx.getRange(ns, strinc(ns))), [], 'empty range');
      await fill(['a', 'b', 'c', 'd', 'e'].map((name) => [key(name), name]));
      await store.run(async (tx) => {
        assert.deepEqual(await tx.getRange(key('c'), key('c')), [], 'begin == end');
        assert.deepEqual(await tx.getRange(key('d'), key('b')), [], 'inverted range');
        assert.deepEqual(
          text(await tx.getRange(key('b'), key('d')), ns),
          ['62=b', '63=c'],
          'end excluded',
        );
        assert.deepEqual(text(await tx.getRange(ns, strinc(ns), { limit: 2 }), ns), [
          '61=a',
          '62=b',
        ]);
        assert.deepEqual(
          text(await tx.getRange(ns, strinc(ns), { limit: 2, reverse: true }), ns),
          ['65=e', '64=d'],
          'reverse with a limit gives the last rows',
        );
        assert.deepEqual(
          text(await tx.getRange(key('b'), key('e'), { reverse: true }), ns),
          ['64=d', '63=c', '62=b'],
          'reverse excludes end, includes begin',
        );
        assert.equal((await tx.getRange(ns, strinc(ns), { limit: 100 })).length, 5);
        assert.deepEqual(
          text(await tx.getRange(key('bb'), key('cc')), ns),
          ['63=c'],
          'bounds between keys',
        );
        await assert.rejects(
          tx.getRange(ns, strinc(ns), { limit: 0 }),
          assertCode('INVALID_ARGUMENT'),
        );
        await assert.rejects(
          tx.getRange(ns, strinc(ns), { limit: 1.5 }),
          assertCode('INVALID_ARGUMENT'),
        );
      });
    });

    it('reads its own writes, including in ranges over its sets, clears and clearRanges', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      await fill(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => [key(name), name]));
      const tx = store.createTransaction();
      try {
        tx.set(key('b'), Buffer.from('B'));
        tx.set(key('bb'), Buffer.from('new'));
        tx.clear(key('c'));
        tx.clearRange(key('d'), key('f'));
        tx.set(key('e'), Buffer.from('E')); // after the clearRange: it wins
        tx.add(key('g'), 5n);
        assert.equal((await tx.get(key('b')))?.toString(), 'B');
        assert.equal(await tx.get(key('c')), undefined);
        assert.equal(await tx.get(key('d')), undefined);
        assert.equal((await tx.get(key('e')))?.toString(), 'E');
        assert.equal(decodeInt64LE(await tx.get(key('g'))), 5n);
        const all = await tx.getRange(ns, strinc(ns));
        assert.deepEqual(
          all.map((row) => row.key.subarray(ns.length).toString()),
          ['a', 'b', 'bb', 'e', 'f', 'g'],
        );
        assert.equal(all[1]?.value.toString(), 'B');
        assert.deepEqual(
          (await tx.getRange(ns, strinc(ns), { limit: 3, reverse: true })).map((row) =>
            row.key.subarray(ns.length).toString(),
          ),
          ['g', 'f', 'e'],
        );
        assert.deepEqual(
          (await tx.getRange(key('b'), key('f'), { limit: 2 })).map((row) =>
            row.key.subarray(ns.length).toString(),
          ),
          ['b', 'bb'],
        );
        // Another transaction sees none of it before commit.
        const other = await store.run((peek) => peek.getRange(ns, strinc(ns)));
        assert.equal(other.length, 6);
        await tx.commit();
      } finally {
        tx.abort();
      }
      const committed = await store.run((peek) => peek.getRange(ns, strinc(ns)));
      assert.deepEqual(
        committed.map((row) => row.key.subarray(ns.length).toString()),
        ['a', 'b', 'bb', 'e', 'f', 'g'],
      );
    });

    it('reads back values of every size as copies of their own, in and out of a snapshot', async () => {
      const ns = space();
      // Sizes around LMDB's page and overflow thresholds up to the largest value allowed; the
      // engine reads through a buffer it reuses, so every value must stay intact after later reads.
      const sizes = [0, 1, 100, 2_000, 4_096, 4_097, 20_000, base.limits.maxValueBytes];
      const value = (size: number) => Buffer.alloc(size, size % 251);
      await store.run(async (tx) => {
        for (const size of sizes) tx.set(encodeKey(ns, size), value(size));
      });
      for (const reads of ['transaction', 'snapshot'] as const) {
        const got = await store.run(async (tx) => {
          const view = reads === 'snapshot' ? tx.snapshot : tx;
          const out: Array<Buffer | undefined> = [];
          for (const size of sizes) out.push(await view.get(encodeKey(ns, size)));
          return out;
        });
        // Compared with equals(): a failing deepEqual of 100 KB buffers would diff them for minutes.
        sizes.forEach((size, i) =>
          assert.ok(
            value(size).equals(got[i] ?? Buffer.alloc(1)),
            `${reads}: ${size} bytes differ`,
          ),
        );
      }
    });

    it('clearRange removes [begin, end) and nothing else; empty values survive', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      await fill(['a', 'b', 'c', 'd'].map((name) => [key(name), name]));
      await store.run(async (tx) => tx.set(key('empty'), Buffer.alloc(0)));
      await store.run(async (tx) => tx.clearRange(key('b'), key('d')));
      const rows = await store.run((tx) => tx.getRange(ns, strinc(ns)));
      assert.deepEqual(text(rows, ns), ['61=a', '64=d', '656d707479=']);
      assert.deepEqual(await store.run((tx) => tx.get(key('empty'))), Buffer.alloc(0));
      assert.throws(
        () => store.createTransaction().clearRange(key('d'), key('a')),
        assertCode('INVALID_ARGUMENT'),
      );
    });

    it('a transaction reads one consistent snapshot while others commit', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      await fill([
        [key('x'), '1'],
        [key('y'), '1'],
      ]);
      const reader = store.createTransaction();
      try {
        assert.equal((await reader.get(key('x')))?.toString(), '1');
        await fill([
          [key('x'), '2'],
          [key('y'), '2'],
          [key('z'), '2'],
        ]);
        assert.equal((await reader.get(key('y')))?.toString(), '1', 'no later commit is visible');
        assert.equal((await reader.getRange(ns, strinc(ns))).length, 2);
        await reader.commit(); // read-only: commits at its snapshot without conflict
      } finally {
        reader.abort();
      }
    });

    it('atomic add: concurrent adds never conflict and never lose an increment', async () => {
      const ns = space();
      const counter = Buffer.concat([ns, Buffer.from('counter')]);
      const writers = 16;
      const rounds = 5;
      for (let round = 0; round < rounds; round++) {
        const txs: Transaction[] = [];
        for (let i = 0; i < writers; i++) {
          const tx = store.createTransaction();
          await tx.get(Buffer.concat([ns, Buffer.from(`other${i}`)])); // a read of something else
          tx.add(counter, BigInt(i + 1));
          txs.push(tx);
        }
        await Promise.all(txs.map((tx) => tx.commit())); // any TXN_CONFLICT fails the test
      }
      const total = decodeInt64LE(await store.run((tx) => tx.get(counter)));
      assert.equal(total, BigInt(rounds * ((writers * (writers + 1)) / 2)));
      await store.run(async (tx) => tx.add(counter, -total - 1n));
      const wrapped = await store.run((tx) => tx.get(counter));
      assert.equal(wrapped?.toString('hex'), 'ffffffffffffffff', 'wraps like two’s complement');
      assert.equal(decodeInt64LE(wrapped), -1n);
    });

    it('a read that changed before commit fails with TXN_CONFLICT; a snapshot read does not', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      await fill([[key('watched'), 'v1']]);
      for (const viaSnapshot of [false, true]) {
        const tx = store.createTransaction();
        try {
          const view = viaSnapshot ? tx.snapshot : tx;
          assert.equal((await view.get(key('watched')))?.toString(), viaSnapshot ? 'v2' : 'v1');
          await fill([[key('watched'), viaSnapshot ? 'v3' : 'v2']]);
          tx.set(key(`out-${viaSnapshot}`), ON);
          if (viaSnapshot) await tx.commit();
          else await assert.rejects(tx.commit(), assertCode('TXN_CONFLICT'));
        } finally {
          tx.abort();
        }
      }
    });

    it('range reads conflict on inserts inside the range read (phantoms), not past a limit', async () => {
      const ns = space();
      const key = (name: string) => Buffer.concat([ns, Buffer.from(name)]);
      await fill([
        [key('a'), 'a'],
        [key('m'), 'm'],
      ]);
      const phantom = store.createTransaction();
      const limited = store.createTransaction();
      try {
        assert.equal((await phantom.getRange(key('b'), key('l'))).length, 0);
        assert.equal((await limited.getRange(key('a'), strinc(ns), { limit: 1 })).length, 1);
        await fill([
          [key('c'), 'c'],
          [key('z'), 'z'],
        ]); // c is inside the first; z past the limit
        phantom.set(key('p'), ON);
        limited.set(key('q'), ON);
        await assert.rejects(phantom.commit(), assertCode('TXN_CONFLICT'));
        await limited.commit();
      } finally {
        phantom.abort();
        limited.abort();
      }
    });

    it('run() retries a conflicting transaction, and gives up after maxRetries', async () => {
      const ns = space();
      const key = Buffer.concat([ns, Buffer.from('n')]);
      await fill([[key, '0']]);
      let attempts = 0;
      const result = await store.run(async (tx) => {
        attempts++;
        const value = Number((await tx.get(key))?.toString());
        if (attempts === 1) await fill([[key, '10']]); // someone else commits meanwhile
        tx.set(key, Buffer.from(String(value + 1)));
        return value + 1;
      });
      assert.equal(attempts, 2);
      assert.equal(result, 11);
      let hopeless = 0;
      await assert.rejects(
        store.run(
          async (tx) => {
            hopeless++;
            await tx.get(key);
            await fill([[key, String(hopeless)]]);
            tx.set(Buffer.concat([ns, Buffer.from('never')]), ON);
          },
          { maxRetries: 3 },
        ),
        assertCode('TXN_CONFLICT', /after 4 attempts/),
      );
      assert.equal(hopeless, 4);
      assert.equal(
        await store.run((tx) => tx.get(Buffer.concat([ns, Buffer.from('never')]))),
        undefined,
      );
    });

    it('read-modify-write under contention loses no update (run() retries the losers)', async () => {
      const ns = space();
      const clients = 8;
      const each = 5;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (let i = 0; i < each; i++) {
            await store.run(async (tx) => {
              const value = Number((await tx.get(ns))?.toString() ?? '0');
              tx.set(ns, Buffer.from(String(value + 1)));
            });
          }
        }),
      );
      assert.equal((await store.run((tx) => tx.get(ns)))?.toString(), String(clients * each));
    });

    it('a transaction is unusable after commit or abort', async () => {
      const ns = space();
      const tx = store.createTransaction();
      tx.set(ns, ON);
      await tx.commit();
      assert.throws(() => tx.set(ns, OFF), assertCode('FAILED_PRECONDITION'));
      await assert.rejects(tx.get(ns), assertCode('FAILED_PRECONDITION'));
      const aborted = store.createTransaction();
      aborted.abort();
      await assert.rejects(aborted.commit(), assertCode('FAILED_PRECONDITION'));
    });

    it('enforces key, value, transaction size and age limits with clear errors', async () => {
      const limited = await openKvStore(
        engine.config(
          {
            limits: {
              maxKeyBytes: 100,
              maxValueBytes: 1_000,
              maxTxnBytes: 5_000,
              maxTxnAgeMs: 300,
            },
          },
          true,
        ),
      );
      try {
        const ns = space();
        const tx = limited.createTransaction();
        const bigKey = Buffer.concat([ns, Buffer.alloc(101 - ns.length, 0x61)]);
        assert.throws(
          () => tx.set(bigKey, ON),
          assertCode('INVALID_ARGUMENT', /key of 101 bytes exceeds the limit of 100/),
        );
        await assert.rejects(tx.get(bigKey), assertCode('INVALID_ARGUMENT'));
        assert.throws(
          () => tx.set(ns, Buffer.alloc(1_001)),
          assertCode('INVALID_ARGUMENT', /value of 1001 bytes exceeds the limit of 1000/),
        );
        tx.set(ns, Buffer.alloc(1_000)); // exactly at the limits is fine
        assert.throws(
          () => {
            for (let i = 0; i < 10; i++) tx.set(encodeKey(ns, i), Buffer.alloc(1_000));
          },
          assertCode('TXN_TOO_LARGE', /over the limit of 5000 bytes/),
        );
        tx.abort();

        const old = limited.createTransaction();
        await old.get(ns);
        await sleep(400);
        await assert.rejects(old.get(ns), assertCode('TXN_TOO_OLD', /over the limit of 300 ms/));
        await assert.rejects(old.commit(), assertCode('TXN_TOO_OLD'));
        old.abort();
        await assert.rejects(
          limited.run(async (slow) => {
            await sleep(400);
            slow.set(ns, ON);
          }),
          assertCode('TXN_TOO_OLD'),
          'run() does not retry a transaction that is too slow',
        );
      } finally {
        await limited.close();
      }
    });

    it('prevents write skew between two processes (doctors on call)', async () => {
      const ns = space();
      const rounds = 15;
      await store.run(async (tx) => {
        for (let round = 0; round < rounds; round++) {
          tx.set(doctorKey(ns, round, 0), ON);
          tx.set(doctorKey(ns, round, 1), ON);
        }
      });
      const doctors = [0, 1].map((doctor) =>
        spawnKvChild({ mode: 'skew', config: base, prefix: ns, doctor, rounds }),
      );
      let conflicts = 0;
      try {
        for (let round = 0; round < rounds; round++) {
          // Both read before either writes: without serializable isolation both would go off call.
          await Promise.all(doctors.map((child) => child.waitFor(new RegExp(`^read ${round}$`))));
          for (const child of doctors) child.send(`go ${round}`);
          const outcomes = await Promise.all(
            doctors.map((child) => child.waitFor(new RegExp(`^(committed|conflict) ${round}$`))),
          );
          conflicts += outcomes.filter((line) => line.startsWith('conflict')).length;
          for (const child of doctors) child.send(`next ${round}`);
        }
        const codes = await Promise.all(doctors.map((child) => child.exited));
        assert.deepEqual(codes, [0, 0], doctors.map((child) => child.stderr()).join('\n'));
      } finally {
        for (const child of doctors) child.proc.kill('SIGKILL');
      }
      const onCall = await store.run(async (tx) => {
        const counts: number[] = [];
        for (let round = 0; round < rounds; round++) {
          const a = await tx.get(doctorKey(ns, round, 0));
          const b = await tx.get(doctorKey(ns, round, 1));
          counts.push((a?.[0] ?? 0) + (b?.[0] ?? 0));
        }
        return counts;
      });
      assert.deepEqual(
        onCall,
        Array.from({ length: rounds }, () => 1),
        'exactly one doctor stays on call',
      );
      assert.equal(conflicts, rounds, 'every round, the second commit conflicted');
    });

    it('names a snapshot by a version that only a commit, in any process, moves', async () => {
      const ns = space();
      const versionNow = () => {
        const tx = store.createTransaction();
        try {
          return tx.snapshotVersion();
        } finally {
          tx.abort();
        }
      };
      const first = versionNow();
      if (first === undefined) {
        assert.equal(versionNow(), undefined, 'an engine without versions never has one');
        return;
      }
      assert.equal(versionNow(), first, 'no commit between two snapshots: the same version');
      const reader = store.createTransaction();
      assert.equal(reader.snapshotVersion(), first);
      await store.run(async (tx) => tx.set(ns, ON));
      assert.equal(reader.snapshotVersion(), first, 'an open snapshot keeps its version');
      reader.abort();
      const afterOwn = versionNow();
      assert.notEqual(afterOwn, first, 'moved by a commit of this process');
      await store.run(async (tx) => void (await tx.get(ns))); // read-only: commits nothing
      assert.equal(versionNow(), afterOwn, 'a read-only transaction does not move it');
      await commitLoopKilledAfter(base, ns, 0);
      assert.notEqual(versionNow(), afterOwn, "moved by another process's commit");
    });

    it('keeps what a process committed before SIGKILL, all-or-nothing per transaction', async () => {
      const ns = space();
      const child = await commitLoopKilledAfter(base, ns, 20);
      const acknowledged = child.lines().filter((line) => line.startsWith('committed ')).length;
      const rows = await store.run((tx) =>
        tx.getRange(encodeKey(ns, 'loop'), strinc(encodeKey(ns, 'loop'))),
      );
      assert.ok(
        rows.length >= acknowledged * 3,
        `${rows.length} rows for ${acknowledged} acknowledged commits`,
      );
      assert.equal(rows.length % 3, 0, 'no transaction is half applied');
      assert.equal(
        (
          await store.run(async (tx) => {
            tx.set(keyAfter(ns), ON); // the store still takes writes after a writer was killed
            return tx.get(keyAfter(ns));
          })
        )?.[0],
        1,
      );
    });

    it('shows a transaction every commit another process acknowledged before it began', async () => {
      const ns = space();
      const child = spawnKvChild({ mode: 'commit-loop', config: base, prefix: ns });
      const range = [encodeKey(ns, 'loop'), strinc(encodeKey(ns, 'loop'))] as const;
      try {
        await child.waitFor(/^committed 0$/);
        const until = Date.now() + 5_000;
        let seen = 0;
        // Read as fast as possible while the child commits: a reused (stale) read snapshot would
        // miss commits whose acknowledgement this process has already received.
        for (let round = 0; round < 20_000 && seen < 60 && Date.now() < until; round++) {
          // A fast disk makes the store sync inline, so a read could resolve without ever giving
          // the loop a turn: yield one, or the child's acknowledgements are never read at all.
          await yieldToLoop();
          seen = child.lines().filter((line) => line.startsWith('committed ')).length;
          const rows = await store.run((tx) => tx.getRange(range[0], range[1]));
          assert.ok(
            rows.length >= seen * 3,
            `round ${round}: ${rows.length} rows after ${seen} acknowledged commits`,
          );
        }
        assert.ok(seen >= 10, `only ${seen} commits seen`);
      } finally {
        child.proc.kill('SIGKILL');
        await child.exited;
      }
    });

    it('leaves nothing of a transaction whose process was killed before commit', async () => {
      const ns = space();
      const child = spawnKvChild({ mode: 'stage', config: base, prefix: ns });
      try {
        await child.waitFor(/^staged$/);
      } finally {
        child.proc.kill('SIGKILL');
      }
      assert.equal(await child.exited, 'SIGKILL');
      const rows = await store.run((tx) => tx.getRange(ns, strinc(ns)));
      assert.deepEqual(rows, []);
    });

    it('gives every error a status code, never a crash, on bad arguments', async () => {
      const tx = store.createTransaction();
      try {
        assert.throws(
          () => tx.set('text' as unknown as Buffer, ON),
          assertCode('INVALID_ARGUMENT'),
        );
        assert.throws(
          () => tx.set(prefix, 'text' as unknown as Buffer),
          assertCode('INVALID_ARGUMENT'),
        );
        assert.throws(() => tx.add(prefix, 1 as unknown as bigint), assertCode('INVALID_ARGUMENT'));
        assert.throws(() => tx.add(prefix, 1n << 63n), assertCode('INVALID_ARGUMENT'));
        assert.ok(
          hasCode(
            await tx.get(null as unknown as Buffer).catch((err: unknown) => err),
            'INVALID_ARGUMENT',
          ),
        );
      } finally {
        tx.abort();
      }
    });
  });
}
