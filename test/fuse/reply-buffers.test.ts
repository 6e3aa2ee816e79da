import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplyBuffers } from '../../daemons/fuse/reply-buffers.js';

describe('read reply buffers', () => {
  it('reuses a large Buffer of the same power-of-two capacity once it is given back', () => {
    const pool = new ReplyBuffers(2);
    const a = pool.take(100_000);
    assert.equal(a.length, 131_072);
    pool.give(a);
    assert.equal(pool.take(70_000), a, 'same capacity class: reused');
    assert.notEqual(pool.take(70_000), a, 'taken again: a fresh one');
  });

  it('keeps at most maxPerSize free Buffers per capacity and never pools small ones', () => {
    const pool = new ReplyBuffers(1);
    const [a, b] = [pool.take(1 << 20), pool.take(1 << 20)];
    pool.give(a);
    pool.give(b); // over the bound: dropped
    assert.equal(pool.take(1 << 20), a);
    assert.notEqual(pool.take(1 << 20), b);
    const small = pool.take(4096);
    assert.equal(small.length, 4096);
    pool.give(small);
    assert.notEqual(pool.take(4096), small, 'small Buffers are not kept');
  });
});
