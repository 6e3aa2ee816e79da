import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplyBuffers } from '../../daemons/fuse/reply-buffers.js';

describe('read reply buffers', () => {
  it('reuses a large Buffer of the same power-of-two capacity once it is given back', () => {
    const pool = new ReplyBuffers(2);
    const a = pool.take(100_000);
    assert.equal(a.buffer.length, 131_072);
    assert.equal(a.shared, undefined);
    pool.give(a);
    assert.equal(pool.take(70_000).buffer, a.buffer, 'same capacity class: reused');
    assert.notEqual(pool.take(70_000).buffer, a.buffer, 'taken again: a fresh one');
  });

  it('keeps at most maxPerSize free Buffers per capacity and never pools small ones', () => {
    const pool = new ReplyBuffers(1);
    const [a, b] = [pool.take(1 << 20), pool.take(1 << 20)];
    pool.give(a);
    pool.give(b); // over the bound: dropped
    assert.equal(pool.take(1 << 20).buffer, a.buffer);
    assert.notEqual(pool.take(1 << 20).buffer, b.buffer);
    const small = pool.take(4096);
    assert.equal(small.buffer.length, 4096);
    pool.give(small);
    assert.notEqual(pool.take(4096).buffer, small.buffer, 'small Buffers are not kept');
  });

  it('serves from shared slots first, says where each lies, and falls back when they run out', () => {
    const data = Buffer.alloc(3 * 1024);
    const region = { path: '/proc/1/fd/9', bytes: data.length };
    const pool = new ReplyBuffers(4, { region, data, slotBytes: 1024 });
    const taken = [pool.take(100), pool.take(1024), pool.take(1000)];
    assert.deepEqual(
      taken.map((m) => m.shared?.offset),
      [0, 1024, 2048],
    );
    for (const m of taken) {
      assert.equal(m.shared?.region, region);
      assert.equal(m.buffer.buffer, data.buffer, 'a view of the region');
      assert.equal(m.buffer.byteOffset - data.byteOffset, m.shared?.offset);
    }
    assert.equal(pool.take(10).shared, undefined, 'every slot is busy: ordinary memory');
    assert.equal(pool.take(2048).shared, undefined, 'larger than a slot: ordinary memory');
    pool.give(taken[1]!);
    assert.equal(pool.take(500).shared?.offset, 1024, 'a slot given back is used again');
  });
});
