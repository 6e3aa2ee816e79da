// The close-behind queue on its own (its `send` is a recording function): sessions leave in
// batches of at most `batch`, after at most `delayMs`, all of them on flush; at most `maxPending`
// wait; a failed batch is tried again up to `maxRounds` times and then given up, never sent twice
// once meta took it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseBehind, type SessionToClose } from '../../daemons/client/close-behind.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const session = (i: number): SessionToClose => ({ inode: i + 1, sessionId: `s${i}` });

function recorder(failFirst = 0) {
  const batches: SessionToClose[][] = [];
  let failures = failFirst;
  return {
    batches,
    send: async (sessions: SessionToClose[]) => {
      await sleep(1);
      if (failures > 0) {
        failures--;
        throw new Error('meta is away');
      }
      batches.push(sessions);
    },
  };
}

describe('close-behind', () => {
  it('sends a full batch at once, the rest after the delay, each session once', async () => {
    const r = recorder();
    const q = new CloseBehind({
      send: r.send,
      delayMs: 50,
      batch: 4,
      maxPending: 16,
      maxRounds: 2,
    });
    for (let i = 0; i < 6; i++) await q.add(session(i));
    await sleep(10);
    assert.deepEqual(
      r.batches.map((b) => b.length),
      [4],
      'the full batch went, the other two wait',
    );
    await sleep(80);
    assert.deepEqual(
      r.batches.map((b) => b.length),
      [4, 2],
    );
    assert.deepEqual(r.batches.flat(), [0, 1, 2, 3, 4, 5].map(session), 'in order, once each');
    assert.equal(q.queued, 0);
  });

  it('flush sends everything now, in batches of at most `batch`', async () => {
    const r = recorder();
    const q = new CloseBehind({
      send: r.send,
      delayMs: 60_000,
      batch: 3,
      maxPending: 8,
      maxRounds: 1,
    });
    for (let i = 0; i < 7; i++) await q.add(session(i));
    await q.flush();
    assert.deepEqual(r.batches.flat(), [0, 1, 2, 3, 4, 5, 6].map(session));
    assert.ok(r.batches.every((b) => b.length <= 3));
  });

  it('never holds more than maxPending: a close over it waits for a batch to go', async () => {
    let release: (() => void) | undefined;
    const sent: number[] = [];
    const q = new CloseBehind({
      send: async (sessions) => {
        await new Promise<void>((resolve) => (release = resolve));
        sent.push(sessions.length);
      },
      delayMs: 60_000,
      batch: 2,
      maxPending: 4,
      maxRounds: 1,
    });
    await q.add(session(0));
    await q.add(session(1)); // a full batch: sending, held by `release`
    await q.add(session(2));
    await q.add(session(3));
    await q.add(session(4));
    await q.add(session(5));
    assert.equal(q.queued, 4, 'two in flight, four queued');
    let added = false;
    const adding = q.add(session(6)).then(() => (added = true));
    await sleep(20);
    assert.equal(added, false, 'the seventh waits');
    assert.ok(q.queued <= 4);
    for (let i = 0; i < 10 && !added; i++) {
      release?.();
      await sleep(5);
    }
    await adding;
    assert.ok(q.queued <= 4);
    const flushing = q.flush();
    for (let i = 0; i < 10 && q.queued + (release ? 1 : 0) > 0; i++) {
      release?.();
      await sleep(5);
    }
    await flushing;
    assert.equal(
      sent.reduce((a, b) => a + b, 0),
      7,
    );
  });

  it('a failed batch is tried again, then given up after maxRounds', async () => {
    const r = recorder(1);
    const q = new CloseBehind({ send: r.send, delayMs: 10, batch: 8, maxPending: 8, maxRounds: 2 });
    await q.add(session(0));
    await q.add(session(1));
    await sleep(60);
    assert.deepEqual(r.batches, [[session(0), session(1)]], 'the second round went through');
    assert.equal(q.givenUp, 0);

    const never = new CloseBehind({
      send: () => Promise.reject(new Error('refused')),
      delayMs: 5,
      batch: 8,
      maxPending: 8,
      maxRounds: 3,
    });
    await never.add(session(0));
    await never.flush();
    assert.equal(never.givenUp, 1);
    assert.equal(never.queued, 0, 'nothing waits forever');
  });

  it('refuses bounds that cannot work', () => {
    const send = () => Promise.resolve();
    assert.throws(
      () => new CloseBehind({ send, delayMs: 1, batch: 8, maxPending: 4, maxRounds: 1 }),
      /inconsistent/,
    );
    assert.throws(
      () => new CloseBehind({ send, delayMs: 1, batch: 0, maxPending: 4, maxRounds: 1 }),
      /inconsistent/,
    );
  });
});
