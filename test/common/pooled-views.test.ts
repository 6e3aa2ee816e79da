import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isPooled, PooledViews, retire, slice } from '../../daemons/common/pooled-views.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage until `done()` or a bounded number of rounds; FinalizationRegistry callbacks run between rounds. */
async function collectUntil(done: () => boolean): Promise<void> {
  for (let round = 0; round < 20 && !done(); round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('pooled views', () => {
  it('releases a block only once every view and slice of it is collected', async () => {
    const released: number[] = [];
    const pool = new PooledViews((block) => released.push(block));
    const memory = new ArrayBuffer(64 * 1024);
    let view: Buffer | undefined = pool.view(7, memory, 4096, 8192);
    view.fill(0x5a);
    let part: Buffer | undefined = slice(view, 100, 200);
    assert.ok(isPooled(part));
    assert.equal(part.byteOffset, 4096 + 100);
    assert.equal(part.length, 100);
    view = undefined; // the slice alone must keep the block
    await collectUntil(() => released.length > 0);
    assert.deepEqual(released, []);
    assert.equal(part[0], 0x5a);
    part = undefined;
    await collectUntil(() => released.length > 0);
    assert.deepEqual(released, [7]);
    assert.equal(pool.blocksInUse, 0);
  });

  it('a slice of the whole view is the view itself (one registration for a whole read)', () => {
    const pool = new PooledViews(() => undefined);
    const view = pool.view(3, new ArrayBuffer(65_536), 0, 4096);
    assert.equal(slice(view, 0), view);
    assert.equal(slice(view, 0, 4096), view);
    assert.notEqual(slice(view, 0, 4095), view);
  });

  it('slices plain Buffers as subarrays and clamps ranges', () => {
    const plain = Buffer.from('abcdef');
    const part = slice(plain, 2, 99);
    assert.equal(part.toString(), 'cdef');
    assert.equal(part.buffer, plain.buffer);
    assert.ok(!isPooled(part));
    assert.equal(slice(plain, 5, 2).length, 0);
  });

  it('refuses views outside the block, and stops releasing once closed', async () => {
    const released: number[] = [];
    const pool = new PooledViews((block) => released.push(block));
    const memory = new ArrayBuffer(4096);
    assert.throws(() => pool.view(1, memory, 4000, 200), /outside/);
    assert.throws(() => pool.view(0, memory, 0, 1), /block id/);
    let view: Buffer | undefined = pool.view(3, memory, 0, 10);
    assert.equal(view.length, 10);
    pool.close();
    view = undefined;
    await collectUntil(() => false);
    assert.deepEqual(released, []);
  });

  it('retire hands a block back at once, exactly once, and waits for live slices', async () => {
    const released: number[] = [];
    const pool = new PooledViews((block) => released.push(block));
    const memory = new ArrayBuffer(64 * 1024);
    let view: Buffer | undefined = pool.view(5, memory, 0, 4096);
    retire(view);
    assert.deepEqual(released, [5]); // no collection needed
    retire(view); // a second retire, and later the view's collection, release nothing more
    view = undefined;
    await collectUntil(() => released.length > 1);
    assert.deepEqual(released, [5]);

    let whole: Buffer | undefined = pool.view(6, memory, 0, 4096);
    let part: Buffer | undefined = slice(whole, 10, 20);
    assert.equal(part.byteOffset, 10);
    retire(whole);
    assert.deepEqual(released, [5]); // the slice still reads the block
    whole = undefined;
    part = undefined;
    await collectUntil(() => released.length > 1);
    assert.deepEqual(released, [5, 6]);
    assert.equal(pool.blocksInUse, 0);
  });

  it('retire of a plain Buffer, or of nothing, does nothing', () => {
    const plain = Buffer.from('abc');
    retire(plain);
    retire(undefined);
    assert.equal(plain.toString(), 'abc');
  });
});
