import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkLocks } from '../../daemons/storage/chunk-locks.js';
import { UpdateChannels } from '../../daemons/storage/update-channels.js';

const tag = (seqnum: number, channelId = 1) => ({ clientId: 'c1', chainId: 7, channelId, seqnum });

describe('update channels (exactly-once)', () => {
  it('runs a new update once; a retry of it gets the cached result', () => {
    const channels = new UpdateChannels<string>();
    const first = channels.begin(tag(1), 0);
    assert.equal(first.kind, 'run');
    if (first.kind === 'run') first.finish('ok-1');
    assert.deepEqual(channels.begin(tag(1), 1), { kind: 'cached', result: 'ok-1' });
    const second = channels.begin(tag(2), 2);
    assert.equal(second.kind, 'run');
  });

  it('a retry while the update still runs is told to come back; an older seqnum is a duplicate', () => {
    const channels = new UpdateChannels<string>();
    const run = channels.begin(tag(5), 0);
    assert.throws(
      () => channels.begin(tag(5), 1),
      (err: Error & { code?: string }) => err.code === 'UNAVAILABLE',
    );
    assert.throws(() => channels.begin(tag(6), 1), /busy/);
    if (run.kind === 'run') run.finish('done');
    assert.throws(() => channels.begin(tag(4), 2), /duplicate update/);
  });

  it('a failed update runs again on retry; channels are independent', () => {
    const channels = new UpdateChannels<string>();
    const run = channels.begin(tag(1), 0);
    if (run.kind === 'run') run.fail();
    assert.equal(channels.begin(tag(1), 1).kind, 'run');
    assert.equal(channels.begin(tag(1, 2), 1).kind, 'run');
  });

  it('records outcomes of forwarded updates without blocking, and never moves a channel back', () => {
    const channels = new UpdateChannels<string>();
    channels.record(tag(3), 'forwarded-3', 0);
    assert.deepEqual(
      channels.begin(tag(3), 1),
      { kind: 'cached', result: 'forwarded-3' },
      'a client retry here gets it once',
    );
    channels.record(tag(2), 'older', 2);
    assert.deepEqual(channels.begin(tag(3), 3), { kind: 'cached', result: 'forwarded-3' });
  });

  it('a re-sync transfer on a chain retires the outcomes remembered for it, and only for it', () => {
    const channels = new UpdateChannels<string>();
    // Recorded as the last replica of a chain, then a re-sync took the chunk back to an older
    // version (the chain never acknowledged it): a client retrying here must run again.
    channels.record(tag(5), 'committed v7', 0);
    channels.record({ ...tag(3), chainId: 8 }, 'other chain', 0);
    channels.forgetChain(7);
    const rerun = channels.begin(tag(5), 1);
    assert.equal(rerun.kind, 'run');
    // Outcomes after the transfer count again.
    if (rerun.kind === 'run') rerun.finish('committed v8');
    assert.deepEqual(channels.begin(tag(5), 2), { kind: 'cached', result: 'committed v8' });
    assert.deepEqual(channels.begin({ ...tag(3), chainId: 8 }, 2), {
      kind: 'cached',
      result: 'other chain',
    });
    // An older seqnum is no longer a duplicate of an outcome that no longer holds.
    const again = new UpdateChannels<string>();
    again.record(tag(5), 'committed v7', 0);
    again.forgetChain(7);
    assert.equal(again.begin(tag(4), 1).kind, 'run');
  });

  it('is bounded: idle finished entries are evicted, and when all are busy new ones are refused', () => {
    const channels = new UpdateChannels<string>(2, 10);
    for (const ch of [1, 2]) {
      const r = channels.begin(tag(1, ch), 0);
      if (r.kind === 'run') r.finish('x');
    }
    assert.equal(channels.begin(tag(1, 3), 100).kind, 'run');
    assert.ok(channels.size <= 2);
    channels.begin(tag(1, 4), 100);
    assert.throws(() => channels.begin(tag(1, 5), 100), /all busy/);
  });
});

describe('chunk locks', () => {
  it('serializes tasks on one chunk, in order, and lets other chunks run', async () => {
    const locks = new ChunkLocks();
    const order: string[] = [];
    const slow = (name: string, ms: number) => async () => {
      order.push(`${name}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${name}-`);
    };
    await Promise.all([
      locks.with('a', slow('a1', 20)),
      locks.with('a', slow('a2', 1)),
      locks.with('b', slow('b1', 1)),
    ]);
    assert.deepEqual(
      order.filter((s) => s.startsWith('a')),
      ['a1+', 'a1-', 'a2+', 'a2-'],
    );
    assert.ok(order.indexOf('b1-') < order.indexOf('a1-'), 'b did not wait for a');
    assert.equal(locks.lockedCount, 0);
  });

  it('releases on failure and bounds the waiters', async () => {
    const locks = new ChunkLocks(1);
    await assert.rejects(
      locks.with('a', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    let release!: () => void;
    const held = locks.with('a', () => new Promise<void>((r) => (release = r)));
    const waiting = locks.with('a', async () => 'second');
    await assert.rejects(
      locks.with('a', async () => 'third'),
      /already wait/,
    );
    release();
    await held;
    assert.equal(await waiting, 'second');
  });
});
