// The namespace against Linux. Seeded random sequences of namespace operations (mkdir, create,
// unlink, rmdir, rename, link, symlink, stat, lstat, readdir) go to a directory through meta's RPC
// and to a directory on the local disk; every result, success or errno, must be the same, and so
// must the whole tree (names, types, symlink targets, which names are hard links of one file, file
// link counts), compared every few operations and at the end. Linux is the reference, so the test
// holds meta to POSIX as the kernel implements it rather than to our reading of the standard.
// The operations and the comparison are in test/helpers/namespace-ops.ts. A failure prints its
// seed and the operations up to it; THREEFS_NS_SEED=<n> replays one, THREEFS_NS_OPS=<n> runs
// longer sequences.
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import { testDir } from '../helpers/cluster.js';
import { compareWithLinux, DirectorySide } from '../helpers/namespace-ops.js';
import { Rng } from '../helpers/rng.js';
import { MetaTestCluster } from './meta-cluster.js';
import { MetaSide } from './meta-side.js';

const OPS_PER_SEED = Number(process.env.THREEFS_NS_OPS ?? 300);
const COMPARE_TREES_EVERY = 20;
const SEEDS = process.env.THREEFS_NS_SEED ? [Number(process.env.THREEFS_NS_SEED)] : [1, 2, 3, 4];

describe('the namespace against Linux (seeded random operations)', () => {
  const cluster = new MetaTestCluster('meta-vs-linux');
  let meta: MetaClient;

  before(async () => {
    await cluster.start();
    const server = await cluster.startServer(11);
    meta = cluster.client({ uid: 0, gid: 0 }, [server.address]);
  });
  after(() => cluster.stop());

  for (const seed of SEEDS) {
    it(`seed ${seed}: ${OPS_PER_SEED} operations give Linux's results and tree`, async () => {
      const { attrs } = await meta.call('mkdirs', { at: { path: `/vs-linux-${seed}` } });
      await compareWithLinux(
        new Rng(seed),
        OPS_PER_SEED,
        COMPARE_TREES_EVERY,
        new DirectorySide(testDir(`vs-linux-${seed}`)),
        new MetaSide(meta, attrs.id),
      );
    });
  }
});
