// 3FS's formal model of chain replication with failures (brief §3.4: one, two and three clients;
// failure detector delays; short chains), as deterministic simulation: the real storage protocol
// code under seeded schedules of message delays and crashes. A failing seed replays exactly:
// SIM_SEED=<seed> narrows the run to it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulate } from './simulation/sim-cluster.js';

const only = process.env.SIM_SEED ? Number(process.env.SIM_SEED) : undefined;
const seeds = only !== undefined ? [only] : [1, 2, 3, 4, 5, 6];

describe('CRAQ under failures: deterministic simulation', () => {
  for (const chainLength of [1, 2, 3]) {
    for (const clients of [1, 2, 3]) {
      for (const detectorMs of [150, 1_000]) {
        it(`chain ${chainLength}, ${clients} client(s), failure detector ${detectorMs} ms`, async () => {
          for (const seed of seeds) {
            const result = await simulate({
              seed: seed * 1_000 + chainLength * 100 + clients * 10 + (detectorMs > 500 ? 1 : 0),
              chainLength,
              clients,
              detectorMs,
              opsPerClient: 60,
              maxCrashes: 4,
            });
            const where = `seed ${seed * 1_000 + chainLength * 100 + clients * 10 + (detectorMs > 500 ? 1 : 0)}`;
            assert.deepEqual(result.bugs, [], `${where}: handlers threw non-protocol errors`);
            assert.deepEqual(
              result.violations,
              [],
              `${where}: ${result.acks} acks, ${result.crashes} crashes`,
            );
            assert.ok(result.acks > 0, `${where}: some writes were acknowledged`);
            // Nothing here corrupts data, so re-sync must never find an inconsistency: a false
            // one takes a healthy replica offline and restarts its recovery.
            assert.equal(result.inconsistencies, 0, `${where}: re-sync declared an inconsistency`);
          }
        });
      }
    }
  }

  it('is deterministic: the same seed gives the same run', async () => {
    const spec = {
      seed: 777,
      chainLength: 3,
      clients: 2,
      detectorMs: 300,
      opsPerClient: 20,
      maxCrashes: 2,
    };
    assert.deepEqual(await simulate(spec), await simulate(spec));
  });
});
