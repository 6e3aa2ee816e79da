// The RPC latency histogram must scrape exactly as the prom-client Histogram it replaced: same
// buckets (a value on a bound counts in that bucket), cumulative bucket lines, +Inf, _sum and
// _count, the registry's default labels. Checked line by line against a prom-client Histogram fed
// the same observations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { RPC_LATENCY_BUCKETS, LatencyHistogram } from '../../daemons/common/latency-histogram.js';

const NAME = 'threefs_test_latency_seconds';

function reference(observations: Array<[string, number]>): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role: 'test' });
  const h = new Histogram({
    name: NAME,
    help: 'latency',
    labelNames: ['side', 'service', 'method'],
    buckets: [...RPC_LATENCY_BUCKETS],
    registers: [registry],
  });
  for (const [method, seconds] of observations)
    h.observe({ side: 'server', service: 'Meta', method }, seconds);
  return registry;
}

function ours(observations: Array<[string, number]>): {
  registry: Registry;
  histogram: LatencyHistogram;
} {
  const registry = new Registry();
  registry.setDefaultLabels({ role: 'test' });
  const histogram = LatencyHistogram.of(registry, NAME, 'latency', RPC_LATENCY_BUCKETS);
  for (const [method, seconds] of observations)
    histogram.seriesOf({ side: 'server', service: 'Meta', method }).observe(seconds);
  return { registry, histogram };
}

describe('rpc latency histogram', () => {
  it('scrapes as prom-client does, bounds and beyond the last bucket included', async () => {
    const observations: Array<[string, number]> = [
      ...RPC_LATENCY_BUCKETS.map((b): [string, number] => ['stat', b]), // exactly on each bound
      ['stat', 0],
      ['stat', 0.00007],
      ['stat', 0.003],
      ['stat', 7], // past 5 s: +Inf only
      ['create', 0.0004],
      ['create', 0.0004],
    ];
    const expected = await reference(observations).metrics();
    const got = await ours(observations).registry.metrics();
    const lines = (text: string) => text.split('\n').sort();
    assert.deepEqual(lines(got), lines(expected));
  });

  it('is one metric per registry, and reset zeroes every series', async () => {
    const { registry, histogram } = ours([['stat', 0.001]]);
    assert.equal(LatencyHistogram.of(registry, NAME, 'latency', RPC_LATENCY_BUCKETS), histogram);
    histogram.reset();
    const text = await registry.metrics();
    assert.match(
      text,
      /threefs_test_latency_seconds_count\{role="test",side="server",service="Meta",method="stat"\} 0/,
    );
    assert.match(
      text,
      /threefs_test_latency_seconds_bucket\{le="\+Inf",role="test",side="server",service="Meta",method="stat"\} 0/,
    );
  });

  it('refuses buckets that do not ascend', () => {
    for (const buckets of [
      [0.1, 0.1],
      [1, 0.5],
      [0.1, Number.NaN],
    ])
      assert.throws(() => new LatencyHistogram(NAME, 'latency', buckets), /ascend/);
  });
});
