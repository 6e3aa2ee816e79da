// A slow handler with a low concurrency limit: the server stops reading instead of queueing
// requests in memory, and never runs more handlers than the limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoreService } from '../../../daemons/common/rpc/index.js';
import { newClient, startServer, TestService } from './helpers.js';

describe('backpressure', () => {
  it('never runs more handlers per connection than the limit, and still answers every call', async () => {
    const fixture = await startServer({ maxConcurrentPerConnection: 4 });
    const client = newClient(fixture.server.address, { maxInFlight: 64, maxQueued: 1000 });
    try {
      const calls = Array.from({ length: 200 }, (_, i) =>
        client.call(TestService.methods.sleep, { ms: 5, tag: i }),
      );
      assert.ok(client.inFlightCalls <= 64);
      let peak = 0;
      const probe = setInterval(() => (peak = Math.max(peak, fixture.server.peakConcurrency)), 2);
      const replies = await Promise.all(calls);
      clearInterval(probe);
      assert.deepEqual(
        replies.map((r) => r.body.tag),
        Array.from({ length: 200 }, (_, i) => i),
      );
      assert.equal(fixture.server.peakConcurrency, 4, 'the limit was reached and never passed');
    } finally {
      await client.close();
      await fixture.close();
    }
  });

  it('bounds memory when a client floods 1 MiB payloads at a slow server', async () => {
    const fixture = await startServer({ maxConcurrentPerConnection: 2 });
    const client = newClient(fixture.server.address, { maxInFlight: 16 });
    try {
      const payload = Buffer.alloc(1024 * 1024, 1);
      const before = process.memoryUsage().arrayBuffers;
      let peakExtra = 0;
      const probe = setInterval(() => {
        peakExtra = Math.max(peakExtra, process.memoryUsage().arrayBuffers - before);
      }, 5);
      const calls = Array.from({ length: 64 }, () =>
        client.call(CoreService.methods.echo, {}, { payload }),
      );
      await Promise.all(calls);
      clearInterval(probe);
      // In flight: 16 requests plus their echoes plus socket buffers; nowhere near 64 × 2 MiB.
      assert.ok(peakExtra < 100 * 1024 * 1024, `array buffers grew by ${peakExtra} bytes`);
      assert.ok(fixture.server.peakConcurrency <= 2);
    } finally {
      await client.close();
      await fixture.close();
    }
  });
});
