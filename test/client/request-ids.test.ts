// Request ids sort in issue order (also within one millisecond and when the clock steps back)
// and differ between clients.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestIds } from '../../daemons/client/request-ids.js';

describe('request ids', () => {
  it('sort in the order they were issued, within a millisecond and across a clock step back', () => {
    const clock = [1000, 1000, 1000, 1001, 999, 999, 5000];
    let t = 0;
    const ids = new RequestIds(() => clock[Math.min(t++, clock.length - 1)]!);
    const issued = clock.map(() => ids.next());
    assert.deepEqual([...issued].sort(), issued);
    assert.equal(new Set(issued).size, issued.length);
    for (const id of issued) assert.match(id, /^[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{8}$/);
  });

  it('two clients issuing at the same moment get different ids', () => {
    const a = new RequestIds(() => 42);
    const b = new RequestIds(() => 42);
    assert.notEqual(a.next(), b.next());
  });
});
