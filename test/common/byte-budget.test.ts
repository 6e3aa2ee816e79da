// ByteBudget rows: grants in arrival order, waits until bytes fit, lets an oversized request
// through alone, refuses bad counts, and bounds its waiters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteBudget } from '../../daemons/common/byte-budget.js';

describe('byte budget', () => {
  it('grants while bytes fit, then in arrival order as they are released', async () => {
    const budget = new ByteBudget(10);
    await budget.acquire(6);
    const order: string[] = [];
    const big = budget.acquire(8).then(() => order.push('big'));
    const small = budget.acquire(1).then(() => order.push('small'));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [], 'the small one waits behind the big one: first come, first served');
    budget.release(6);
    await Promise.all([big, small]);
    assert.deepEqual(order, ['big', 'small']);
    assert.equal(budget.inUse, 9);
  });

  it('a request larger than the budget goes through alone', async () => {
    const budget = new ByteBudget(4);
    await budget.acquire(100);
    assert.equal(budget.inUse, 100);
    let next = false;
    const waiting = budget.acquire(1).then(() => (next = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(next, false);
    budget.release(100);
    await waiting;
  });

  it('refuses bad counts, over-release and too many waiters', async () => {
    assert.throws(() => new ByteBudget(0), /positive/);
    const budget = new ByteBudget(1, 1);
    await assert.rejects(budget.acquire(-1), { code: 'INVALID_ARGUMENT' });
    await budget.acquire(1);
    void budget.acquire(1);
    await assert.rejects(budget.acquire(1), { code: 'RESOURCE_EXHAUSTED' });
    budget.release(1);
    budget.release(1);
    assert.throws(() => budget.release(1), { code: 'INTERNAL' });
  });
});
