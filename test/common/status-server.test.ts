import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { Counter } from 'prom-client';
import { createLogger } from '../../daemons/common/log.js';
import { createMetricsRegistry, startStatusServer } from '../../daemons/common/status-server.js';

describe('status server', () => {
  it('serves /metrics with default and custom metrics, and /healthz from the health callback', async () => {
    const registry = createMetricsRegistry('test');
    const counter = new Counter({
      name: 'threefs_test_events_total',
      help: 'events',
      registers: [registry],
    });
    counter.inc(3);
    let ok = true;
    const status = await startStatusServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      health: () => ({ ok, detail: { chains: 4 } }),
    });
    try {
      const metrics = await fetch(`${status.url}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /threefs_test_events_total\{role="test"\} 3/);
      assert.match(text, /threefs_process_cpu_user_seconds_total/);

      const healthy = await fetch(`${status.url}/healthz`);
      assert.equal(healthy.status, 200);
      assert.deepEqual(await healthy.json(), { ok: true, detail: { chains: 4 } });
      ok = false;
      assert.equal((await fetch(`${status.url}/healthz`)).status, 503);
      assert.equal((await fetch(`${status.url}/nope`)).status, 404);
      assert.equal((await fetch(`${status.url}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await status.close();
    }
  });
});

describe('logger', () => {
  it('writes one JSON line per event with role, node and child ids', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const log = createLogger({ role: 'storage', nodeId: 7, destination: sink });
    log.child({ target: 101, chain: 3 }).info({ bytes: 4096 }, 'chunk written');
    assert.equal(lines.length, 1);
    const event = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(event.role, 'storage');
    assert.equal(event.node, 7);
    assert.equal(event.target, 101);
    assert.equal(event.chain, 3);
    assert.equal(event.level, 'info');
    assert.equal(event.msg, 'chunk written');
  });
});
