// A deferred counter prints what prom-client's own Counter would for the same increments, keeps
// one entry per label set however many callers ask for it (RPC clients come and go), and hands
// each increment over exactly once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { DeferredCounter } from '../../daemons/common/deferred-counter.js';

const NAME = 'threefs_test_things_total';

describe('deferred counter', () => {
  it('shares one entry per label set and reports each sum once', async () => {
    const registry = new Registry();
    const counter = DeferredCounter.of(registry, NAME, 'things', ['side', 'code']);
    assert.equal(DeferredCounter.of(registry, NAME, 'things', ['side', 'code']), counter);
    const a = counter.entry({ side: 'client', code: 'OK' });
    const b = counter.entry({ side: 'client', code: 'OK' });
    assert.equal(a, b, 'a second caller gets the same entry');
    const idle = counter.entry({ side: 'server', code: 'OK' });
    a.count += 2;
    b.count += 3;
    let text = await registry.metrics();
    assert.match(text, /threefs_test_things_total\{side="client",code="OK"\} 5/);
    assert.match(text, /threefs_test_things_total\{side="server",code="OK"\} 0/);
    assert.equal(a.count, 0, 'the scrape took the count');
    idle.count++;
    text = await registry.metrics();
    assert.match(text, /threefs_test_things_total\{side="client",code="OK"\} 5/);
    assert.match(text, /threefs_test_things_total\{side="server",code="OK"\} 1/);
  });
});
